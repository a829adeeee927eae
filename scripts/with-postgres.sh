#!/usr/bin/env bash
# Runs a command beside a throwaway PostgreSQL cluster on 127.0.0.1, then stops and deletes the
# cluster. Installs Debian's postgresql if it is missing. The command gets the cluster's URL in
# SLUICE_TEST_POSTGRES_URL.
#
#   scripts/with-postgres.sh swift test --skip-build
set -euo pipefail
PORT=${SLUICE_TEST_PGPORT:-$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")}

bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
  done
  return 1
}

if ! BIN=$(bindir); then
  echo "==> installing postgresql (Debian package)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  BIN=$(bindir)
fi

# initdb refuses to run as root: run the server as the postgres user then.
RUN=()
if [ "$(id -u)" -eq 0 ]; then RUN=(runuser -u postgres --); fi
DATA=$(mktemp -d /tmp/sluice-pgtest.XXXXXX)
[ "$(id -u)" -eq 0 ] && chown postgres "$DATA"

stop() {
  "${RUN[@]}" "$BIN/pg_ctl" -D "$DATA/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DATA"
}
trap stop EXIT
fail() { cat "$DATA/server.log" >&2 2>/dev/null; exit 1; }

"${RUN[@]}" "$BIN/initdb" -D "$DATA/data" -U postgres --auth=trust --no-sync -E UTF8 >/dev/null
"${RUN[@]}" "$BIN/pg_ctl" -D "$DATA/data" -l "$DATA/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$DATA -c fsync=off -c max_connections=200" start >/dev/null || fail
"$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres sluice_test

export SLUICE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PORT/sluice_test"
"$@"
