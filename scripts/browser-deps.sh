#!/usr/bin/env bash
# Debian's Chromium, for the dashboard's browser test (tests/e2e/test_dashboard.py drives it
# headless through Playwright, which the Python environment carries). Idempotent.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
echo "==> installing chromium (Debian)"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
