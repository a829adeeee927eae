#!/usr/bin/env python3
"""Judges and plots a soak (bench/soak.sh): after the warm-up tenth of the run, resident memory
and open descriptors must stay within ±5% of their median, and the audit-log backlog must not
grow. Writes soak.svg (RSS and descriptors over time) beside the samples; prints the verdict.

usage: soak_report.py OUT_DIR
"""
import statistics
import sys
from pathlib import Path

out = Path(sys.argv[1])
rows = [line.split() for line in (out / "samples.txt").read_text().splitlines()[1:] if line.strip()]
t = [int(r[0]) for r in rows]
rss = [int(r[1]) / 1024 for r in rows]
fds = [int(r[2]) for r in rows]
backlog = [float(r[3]) for r in rows]
requests = [float(r[4]) for r in rows]
if len(rows) < 4:
    sys.exit("too few samples to judge a soak")
warm = max(1, len(rows) // 10)


def band(values):
    m = statistics.median(values[warm:])
    return m, min(values[warm:]) / m - 1, max(values[warm:]) / m - 1


rss_m, rss_lo, rss_hi = band(rss)
fd_m, fd_lo, fd_hi = band(fds)
rate = (requests[-1] - requests[warm]) / max(1, t[-1] - t[warm])
half = len(backlog[warm:]) // 2
backlog_growing = statistics.mean(backlog[warm:][half:]) > 2 * max(statistics.mean(backlog[warm:][:half]), 64 * 1024)
flat = abs(rss_lo) <= 0.05 and rss_hi <= 0.05 and abs(fd_lo) <= 0.05 and fd_hi <= 0.05 and not backlog_growing
print(f"Soak: {t[-1]} s, {rate:,.0f} requests/s; after the first {t[warm]} s: RSS median {rss_m:.1f} MiB ({rss_lo:+.1%} / {rss_hi:+.1%}), "
      f"descriptors median {fd_m:.0f} ({fd_lo:+.1%} / {fd_hi:+.1%}), audit backlog max {max(backlog[warm:]) / 1024:.0f} KiB "
      f"({'growing' if backlog_growing else 'not growing'}) -> {'flat' if flat else 'NOT flat'}")

# The plot: two panels sharing the time axis, plain SVG (no plotting library needed).
W, H, PAD = 720, 200, 48


def panel(values, y0, label, color):
    lo, hi = min(values), max(values)
    span = (hi - lo) or max(hi * 0.1, 1)
    lo, hi = lo - span * 0.2, hi + span * 0.2
    x = lambda s: PAD + (W - 2 * PAD) * s / max(t[-1], 1)
    y = lambda v: y0 + H - (H - 20) * (v - lo) / (hi - lo) - 10
    points = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in zip(t, values))
    return (f'<rect x="{PAD}" y="{y0}" width="{W - 2 * PAD}" height="{H}" fill="none" stroke="#999"/>'
            f'<text x="{PAD}" y="{y0 - 6}" font-size="13">{label}</text>'
            f'<text x="{PAD - 4}" y="{y(hi - span * 0.2) + 4:.1f}" font-size="11" text-anchor="end">{hi - span * 0.2:.0f}</text>'
            f'<text x="{PAD - 4}" y="{y(lo + span * 0.2) + 4:.1f}" font-size="11" text-anchor="end">{lo + span * 0.2:.0f}</text>'
            f'<line x1="{x(t[warm]):.1f}" y1="{y0}" x2="{x(t[warm]):.1f}" y2="{y0 + H}" stroke="#ccc" stroke-dasharray="4"/>'
            f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{points}"/>')


svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{2 * H + 90}" font-family="sans-serif">'
       f'<rect width="100%" height="100%" fill="white"/>'
       + panel(rss, 24, f"Sluice resident memory (MiB), {rate:,.0f} requests/s, full pipeline", "#1f77b4")
       + panel(fds, H + 58, "open file descriptors", "#d62728")
       + f'<text x="{W / 2}" y="{2 * H + 84}" font-size="12" text-anchor="middle">seconds (dashed: end of warm-up); {t[-1]} s in all</text></svg>')
(out / "soak.svg").write_text(svg)
print(f"plot -> {out / 'soak.svg'}")
sys.exit(0 if flat else 1)
