#!/usr/bin/env python3
"""Prints the benchmark table from bench/out and the ratios the issue's targets are about."""
import json
import re
import sqlite3
import sys
from pathlib import Path

out = Path(sys.argv[1])
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse(path: Path):
    text = path.read_text()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        return float(m.group(1)) * UNITS[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {"rps": rps, "p50": pct(50), "p99": pct(99), "non2xx": int(errors.group(1)) if errors else 0}


TARGETS = ("direct", "nginx", "sluice", "sluice-bare", "sluice-auth", "sluice-full")
rows = {(t, c): parse(out / f"wrk-{t}-{c}.txt") for t in TARGETS for c in (32, 1)}
print()
print("| target | connections | requests/s | p50 (ms) | p99 (ms) |")
print("| --- | ---: | ---: | ---: | ---: |")
for c in (32, 1):
    for t in TARGETS:
        r = rows[(t, c)]
        bad = f" ({r['non2xx']} non-2xx!)" if r["non2xx"] else ""
        print(f"| {t} | {c} | {r['rps']:,.0f}{bad} | {r['p50']:.3f} | {r['p99']:.3f} |")

machine = out / "machine.txt"
if machine.exists():
    cpu, cores = machine.read_text().split("\n")[:2]
    print(f"\nMachine: {cpu}, {cores} CPUs")

s32, n32, d32 = rows[("sluice", 32)], rows[("nginx", 32)], rows[("direct", 32)]
s1, n1, d1 = rows[("sluice", 1)], rows[("nginx", 1)], rows[("direct", 1)]
print()
print(f"Sluice / nginx requests/s at 32 connections: {s32['rps'] / n32['rps']:.2f}x   (target >= 0.30x)")
print(f"Sluice / direct requests/s at 32 connections: {s32['rps'] / d32['rps']:.2f}x")
print(f"Added p50 at 1 connection: Sluice {s1['p50'] - d1['p50']:+.3f} ms, nginx {n1['p50'] - d1['p50']:+.3f} ms   (target <= 0.2 ms)")
b1 = rows[("sluice-bare", 1)]
print(f"Observability on / off, p50 at 1 connection: {s1['p50'] - b1['p50']:+.3f} ms, p99 {s1['p99'] - b1['p99']:+.3f} ms")
obs = out / "observability.txt"
if obs.exists():
    # name load round requests rps cpu_before cpu_after ticks_per_second
    runs = {}
    for line in obs.read_text().split("\n"):
        if line.strip():
            name, load, _, n, rps, before, after, hz = line.split()
            runs.setdefault((name, load), []).append((float(rps), (float(after) - float(before)) / float(hz) / int(n) * 1e6))
    med = lambda xs: sorted(xs)[len(xs) // 2]
    names = [("sluice", "all on"), ("sluice-nobodies", "audit log without bodies"), ("sluice-traced", "all on + tracing every request"),
             ("sluice-sampled", "all on + tracing 1 in 10"), ("sluice-bare", "all off")]
    for load, what in [("saturated", "32 connections flat out"), ("paced", "32 connections paced to the same load")]:
        cpu = {k: med([c for _, c in runs[(k, load)]]) for k, _ in names}
        rps = {k: med([x for x, _ in runs[(k, load)]]) for k, _ in names}
        rounds = len(runs[("sluice", load)])
        print(f"Observability, {what}, {rounds} interleaved rounds (medians): Sluice CPU per request and requests/s")
        for k, label in names:
            print(f"  {label:32s} {cpu[k]:6.1f} us ({cpu[k] / cpu['sluice-bare'] - 1:+6.1%} vs off)   {rps[k]:8,.0f}/s ({rps[k] / rps['sluice-bare']:.3f}x)")
a32, a1 = rows[("sluice-auth", 32)], rows[("sluice-auth", 1)]
print(f"Auth and limits on / off, requests/s at 32 connections: {a32['rps'] / s32['rps']:.2f}x; "
      f"p50 at 1 connection: {a1['p50'] - s1['p50']:+.3f} ms")

direct = [float(x) for x in (out / "ttft-direct.txt").read_text().split()]
sluice = [float(x) for x in (out / "ttft-sluice.txt").read_text().split()]
print(f"Stream, time to first event p50, new connection: direct {direct[0]:.3f} ms, Sluice {sluice[0]:.3f} ms (added {sluice[0] - direct[0]:+.3f} ms); "
      f"p99 direct {direct[1]:.3f} ms, Sluice {sluice[1]:.3f} ms")
kept = None
if (out / "ttft-sluice-keep.txt").exists():
    kept = ([float(x) for x in (out / "ttft-direct-keep.txt").read_text().split()],
            [float(x) for x in (out / "ttft-sluice-keep.txt").read_text().split()])
    print(f"Stream, time to first event p50, kept-alive connection: direct {kept[0][0]:.3f} ms, Sluice {kept[1][0]:.3f} ms "
          f"(added {kept[1][0] - kept[0][0]:+.3f} ms); p99 direct {kept[0][1]:.3f} ms, Sluice {kept[1][1]:.3f} ms")

db = Path("bench/out/sluice-bench.db")
if db.exists():
    with sqlite3.connect(db) as conn:
        n = conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    print(f"Audit-log rows written by Sluice during the run: {n:,}")

flow_rounds = sorted(out.glob("flow-run-*.txt"))
if flow_rounds:
    chat = [parse(out / f.name.replace("flow-run", "flow-chat")) for f in flow_rounds]
    runs = [parse(f) for f in flow_rounds]
    added = sorted(r["p50"] - c["p50"] for r, c in zip(runs, chat))
    bad = sum(r["non2xx"] for r in runs + chat)
    print(f"Flow run vs the same request as plain chat, 1 connection, {len(added)} interleaved rounds: "
          f"p50 added {added[len(added) // 2]:+.3f} ms (median of rounds; each: {', '.join(f'{a:+.3f}' for a in added)})   (target <= 0.05 ms)"
          + (f" ({bad} non-2xx!)" if bad else ""))

batches = out / "batches.json"
if batches.exists():
    b = json.loads(batches.read_text())
    alone, during = b["live_alone"], b["live_during_batch"]
    print(f"Batch of {b['lines']:,} lines (mock upstream): {b['lines_per_s']:,.0f} lines/s, {b['completed']:,} completed, {b['failed']} failed; "
          f"Sluice CPU {b['batch_cpu_us_per_line']:.0f} us per line against {b['live_cpu_us_per_request']:.0f} us per live request "
          f"({b['cpu_ratio']:.2f}x, target <= 1.5x)")
    print(f"Live p95 (4 connections, paced): {alone['p95_ms']:.3f} ms alone, {during['p95_ms']:.3f} ms with a batch running "
          f"({during['p95_ms'] - alone['p95_ms']:+.3f} ms; the batch ran throughout: {b['batch_ran_throughout']})"
          + (f" ({alone['non2xx'] + during['non2xx']} non-2xx!)" if alone["non2xx"] + during["non2xx"] else ""))

emb = out / "embeddings.txt"
if emb.exists():
    single, batched, rss = emb.read_text().split()
    print(f"Embeddings (all-MiniLM-L6-v2, in process): {float(single):.0f}/s one sentence per request, "
          f"{float(batched):.0f}/s in batches of 32; Sluice resident memory {float(rss):.0f} MiB")

local = out / "local-chat.json"
if local.exists():
    r = json.loads(local.read_text())
    d, s = r["direct"], r["sluice"]
    print(f"Local chat (Gemma 3 270M, llama-server), one stream of 128 tokens: direct {d['tokens_per_s_p50']:.1f} tokens/s, "
          f"Sluice {s['tokens_per_s_p50']:.1f} tokens/s ({r['ratio_tokens_per_s']:.3f}x); "
          f"time to first token p50 direct {d['ttft_ms_p50']:.1f} ms, Sluice {s['ttft_ms_p50']:.1f} ms ({r['added_ttft_ms']:+.1f} ms)")
    print(f"Local chat, 4 streams at once: direct {d['tokens_per_s_4_streams']:.1f} tokens/s, Sluice {s['tokens_per_s_4_streams']:.1f} tokens/s "
          f"({r['ratio_tokens_per_s_4_streams']:.3f}x)")

guard = out / "guardrails.txt"
if guard.exists():
    print()
    print("Guardrails (sluice eval guardrails):")
    print(guard.read_text().rstrip())

for name, title in (("routing.txt", "Complexity routing (sluice eval routing)"), ("cache.txt", "Semantic cache (sluice eval cache)"), ("retrieval.txt", "Retrieval (sluice eval retrieval, sluice eval grounding)")):
    f = out / name
    if f.exists():
        print()
        print(title + ":")
        print(f.read_text().rstrip())


# The server floors (bench/floor): bare Hummingbird and bare SwiftNIO on the chat route.
floor = out / "floor.txt"
if floor.exists():
    floors = {}
    for line in floor.read_text().split("\n"):
        parts = line.split()
        if len(parts) == 5:
            name, rps, requests, ticks, hz = parts
            floors[name] = (float(rps), int(ticks) / int(hz) * 1e6 / max(int(requests), 1))
    if "hummingbird" in floors and "nio" in floors:
        (h_rps, h_cpu), (n_rps, n_cpu) = floors["hummingbird"], floors["nio"]
        print(f"Server floor at 32 connections (a fixed answer, no upstream): bare Hummingbird {h_rps:,.0f}/s, {h_cpu:.1f} us CPU per request; "
              f"bare SwiftNIO {n_rps:,.0f}/s, {n_cpu:.1f} us ({h_cpu - n_cpu:+.1f} us for Hummingbird)")
        f = rows[("sluice-full", 32)]["rps"]
        print(f"  requests/s against nginx's {n32['rps']:,.0f}: Hummingbird floor {h_rps / n32['rps']:.2f}x, SwiftNIO floor {n_rps / n32['rps']:.2f}x, "
              f"sluice {rows[('sluice', 32)]['rps'] / n32['rps']:.2f}x, sluice-full {f / n32['rps']:.2f}x")

# The floors' latency beside direct's: what a server stack adds before Sluice does anything.
latency = out / "floor-latency.txt"
if latency.exists():
    first = {}
    for line in latency.read_text().split("\n"):
        parts = line.split()
        if len(parts) == 3:
            first[parts[0]] = (float(parts[1]), float(parts[2]))
    if {"direct", "hummingbird", "nio"} <= first.keys():
        at1 = {name: parse(out / f"floor-{name}-1.txt") for name in first}
        print("Server floors' latency over direct (a fixed answer, no upstream): p50 and p99 at 1 connection; first byte, new connection / kept-alive")
        for name in ("hummingbird", "nio"):
            print(f"  bare {'Hummingbird' if name == 'hummingbird' else 'SwiftNIO':12s} p50 {at1[name]['p50'] - at1['direct']['p50']:+.3f} ms, "
                  f"p99 {at1[name]['p99'] - at1['direct']['p99']:+.3f} ms; "
                  f"first byte {first[name][0] - first['direct'][0]:+.3f} / {first[name][1] - first['direct'][1]:+.3f} ms")

# Issue 28's targets, with the full default pipeline (sluice-full), measured in this run.
f32, f1 = rows[("sluice-full", 32)], rows[("sluice-full", 1)]
targets = [
    ("requests/s at 32 connections, full pipeline / nginx", f"{f32['rps'] / n32['rps']:.2f}x", ">= 0.5x", f32["rps"] / n32["rps"] >= 0.5),
    ("added p50 at 1 connection, full pipeline over direct", f"{f1['p50'] - d1['p50']:+.3f} ms", "<= +0.05 ms", f1["p50"] - d1["p50"] <= 0.05),
    ("added p99 at 1 connection, full pipeline over direct", f"{f1['p99'] - d1['p99']:+.3f} ms", "<= +0.2 ms", f1["p99"] - d1["p99"] <= 0.2),
    ("added time to first event, new connection (Sluice without auth)", f"{sluice[0] - direct[0]:+.3f} ms", "<= +0.1 ms", sluice[0] - direct[0] <= 0.1),
]
if kept:
    added = kept[1][0] - kept[0][0]
    targets.append(("added time to first event, kept-alive connection (Sluice without auth)", f"{added:+.3f} ms", "<= +0.1 ms", added <= 0.1))
allocations = out / "allocations.txt"
if allocations.exists():
    n, before, after = (int(x) for x in allocations.read_text().split())
    targets.append(("heap allocations per request, full pipeline", f"{(after - before) / max(n, 1):,.0f}", "tracked (docs/performance.md)", None))
enqueues = out / "enqueues.txt"
if enqueues.exists() and len(enqueues.read_text().split()) == 3:
    n, count, switches = (int(x) for x in enqueues.read_text().split())
    targets.append(("task enqueues per request at 1 connection, full pipeline", f"{count / max(n, 1):.1f}", "tracked (docs/performance.md)", None))
    targets.append(("executor switches (swift_task_switch) per request, full pipeline", f"{switches / max(n, 1):.1f}", "tracked (docs/performance.md)", None))
print()
print("| target | measured | aim | met |")
print("| --- | ---: | --- | --- |")
for name, value, aim, met in targets:
    print(f"| {name} | {value} | {aim} | {'yes' if met else 'no' if met is not None else '-'} |")
held = out / "streams.json"
if held.exists():
    h = json.loads(held.read_text())
    print(f"| {h['streams']:,} concurrent streams held open, peak RSS | {h['rss_peak_mib']:.0f} MiB, {h['dropped']} dropped "
          f"(ordinary p50 {h['ordinary_p50_ms_before']:.3f} ms before, {h['ordinary_p50_ms_during']:.3f} ms during) | 10,000 in <= 300 MB, none dropped | "
          f"{'yes' if h['streams'] >= 10000 and h['rss_peak_mib'] <= 300 and h['dropped'] == 0 else 'no'} |")
print("| 1-hour soak, RSS and descriptors flat | run by make soak, not make bench | flat within ±5% | - |")
