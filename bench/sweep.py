#!/usr/bin/env python3
"""The load sweep: one room, offered load from 10 k to 1 M deliveries/s, and for each load
the send->viewer p50/p99 and the server's CPU per delivery, drawn as one chart (latency
against load on the left, CPU per delivery against load on the right).

Run by ./dev bench (bench/run_suite.py) for build/chatorbit alone. Standalone, it can put
two builds side by side, each load run as an A-then-B pair on fresh servers (this
machine's speed drifts within minutes: only runs next to each other compare):

    bench/sweep.py --a /tmp/before/build/chatorbit --a-name before --b build/chatorbit --b-name after \\
        --out bench/results/sweep-before-after

writes OUT.json (every run), OUT.svg (the chart) and OUT.md (the table). Each server is
pinned to core 0 with one event loop, the bench to core 1, as in run_suite.py."""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_suite import SERVER, Server, fmt, probe_for, run_bench  # noqa: E402

# (viewers, messages/s): deliveries/s = viewers x messages/s, 10 k to 1 M. Four senders
# share the rate, as in the other fan-out scenarios.
LOADS = [(500, 20), (1000, 30), (2000, 50), (3000, 100), (6000, 100), (10000, 100)]
DURATION_S = 10
# The sides' colours, then the dash of each figure: p50 solid, p99 dashed.
COLOURS = ["#1f77b4", "#d62728"]


def run_load(binary: Path, env: dict[str, str], viewers: int, rate: int, duration: int, out_dir: Path) -> dict:
    args = ["fanout", "--viewers", str(viewers), "--senders", "4", "--rate", str(rate), "--duration", str(duration)]
    server = Server(binary=binary, env=env)
    try:
        _, data = run_bench(f"sweep-{viewers}x{rate}", args, server, out_dir=out_dir)
    finally:
        server.stop()
    data["offered_deliveries_per_s"] = viewers * rate
    return data


def run(sides: list[tuple[str, Path, dict[str, str]]], loads=LOADS, duration: int = DURATION_S) -> dict:
    """Every load on every side (in that order, back to back), and the `limit` probes the
    CPU figures are compared with. {"sides": [names], "runs": {name: [result per load]},
    "limits": [probe results]}."""
    out: dict = {"sides": [s[0] for s in sides], "runs": {s[0]: [] for s in sides}, "limits": []}
    with tempfile.TemporaryDirectory(prefix="chatorbit-sweep-") as tmp:
        for sockets in (1000, 9000):
            _, limit = run_bench(f"limit-{sockets}", ["limit", "--sockets", str(sockets), "--frame-bytes", "120",
                                                      "--coalesce", "1,2,4,10,32", "--duration", "1", "--rounds",
                                                      "3", "--sender-cpu", "0", "--receiver-cpu", "1"], None,
                                 out_dir=Path(tmp))
            out["limits"].append(limit)
        for viewers, rate in loads:
            for name, binary, env in sides:
                out["runs"][name].append(run_load(binary, env, viewers, rate, duration, Path(tmp)))
    return out


def x_probe(d: dict, limits: list[dict]) -> float | None:
    found = probe_for(d, limits)
    ns = d.get("server_cpu_ns_per_delivery")
    return ns / found[0] if found and ns else None


def markdown(sweep: dict) -> list[str]:
    lines = ["| side | offered deliveries/s | delivered/s | lost | p50 ms | p99 ms | CPU ns per delivery | "
             "frames per write | frames per read | x probe |", "|---|---|---|---|---|---|---|---|---|---|"]
    sides = sweep["sides"]
    for i in range(len(sweep["runs"][sides[0]])):
        for name in sides:
            d = sweep["runs"][name][i]
            ratio = x_probe(d, sweep["limits"])
            lines.append(f"| {name} | {fmt(d['offered_deliveries_per_s'])} | {fmt(d.get('deliveries_per_s'), 0)} | "
                         f"{fmt(d.get('lost'))} | {fmt(d.get('p50_ms'), 1)} | {fmt(d.get('p99_ms'), 1)} | "
                         f"{fmt(d.get('server_cpu_ns_per_delivery'), 0)} | {fmt(d.get('frames_per_write'), 1)} | "
                         f"{fmt(d.get('frames_per_read'), 1)} | "
                         f"{fmt(ratio, 2) if ratio else '–'} |")
    return lines


# --- the chart ---------------------------------------------------------------------------

W, H = 960, 420
PANEL_W, PANEL_H = 380, 300
LEFT, TOP = 70, 50
GAP = 110


def _log_scale(lo: float, hi: float, size: float, flip: bool = False):
    a, b = math.log10(lo), math.log10(hi)

    def f(v: float) -> float:
        t = (math.log10(max(v, lo)) - a) / (b - a)
        return (1 - t) * size if flip else t * size
    return f


def _decades(lo: float, hi: float) -> list[float]:
    out, v = [], 10 ** math.floor(math.log10(lo))
    while v <= hi * 1.0001:
        for m in (1, 2, 5):
            if lo <= v * m <= hi * 1.0001:
                out.append(v * m)
        v *= 10
    return out


def _label(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:g} M"
    if v >= 1e3:
        return f"{v / 1e3:g} k"
    return f"{v:g}"


def _panel(x0: float, title: str, ylabel: str, ylo: float, yhi: float, series: list[tuple[str, str, str, list]],
           xlo: float, xhi: float) -> list[str]:
    """A log-log panel at x0; series: (label, colour, dash, [(x, y)])."""
    sx = _log_scale(xlo, xhi, PANEL_W)
    sy = _log_scale(ylo, yhi, PANEL_H, flip=True)
    out = [f'<g transform="translate({x0},{TOP})">',
           f'<rect width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#999"/>',
           f'<text x="{PANEL_W / 2}" y="-18" text-anchor="middle" font-weight="bold">{title}</text>',
           f'<text x="{PANEL_W / 2}" y="{PANEL_H + 38}" text-anchor="middle">offered deliveries/s (one room)</text>',
           f'<text transform="translate(-52,{PANEL_H / 2}) rotate(-90)" text-anchor="middle">{ylabel}</text>']
    for v in _decades(xlo, xhi):
        x = sx(v)
        out += [f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{PANEL_H}" stroke="#eee"/>',
                f'<text x="{x:.1f}" y="{PANEL_H + 16}" text-anchor="middle" font-size="11">{_label(v)}</text>']
    for v in _decades(ylo, yhi):
        y = sy(v)
        out += [f'<line x1="0" y1="{y:.1f}" x2="{PANEL_W}" y2="{y:.1f}" stroke="#eee"/>',
                f'<text x="-6" y="{y + 4:.1f}" text-anchor="end" font-size="11">{_label(v)}</text>']
    for label, colour, dash, points in series:
        pts = [(sx(x), sy(y)) for x, y in points if y]
        if not pts:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2" '
                   f'stroke-dasharray="{dash}"/>')
        out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in pts]
    out.append("</g>")
    return out


def svg(sweep: dict) -> str:
    sides = sweep["sides"]
    xs = [d["offered_deliveries_per_s"] for d in sweep["runs"][sides[0]]]
    xlo, xhi = min(xs) / 1.3, max(xs) * 1.3
    lat, cpu = [], []
    for i, name in enumerate(sides):
        runs = sweep["runs"][name]
        colour = COLOURS[i % len(COLOURS)]
        lat.append((f"{name} p50", colour, "", [(d["offered_deliveries_per_s"], d.get("p50_ms")) for d in runs]))
        lat.append((f"{name} p99", colour, "6,4", [(d["offered_deliveries_per_s"], d.get("p99_ms")) for d in runs]))
        cpu.append((f"{name} server", colour, "",
                    [(d["offered_deliveries_per_s"], d.get("server_cpu_ns_per_delivery")) for d in runs]))
    # The kernel's own cost at each run's coalescing: the `limit` probe, for the first side.
    probe = []
    for d in sweep["runs"][sides[0]]:
        found = probe_for(d, sweep["limits"])
        probe.append((d["offered_deliveries_per_s"], found[0] if found else None))
    cpu.append((f"limit probe at {sides[0]}'s coalescing", "#555", "2,3", probe))
    lat_values = [y for _, _, _, pts in lat for _, y in pts if y]
    cpu_values = [y for _, _, _, pts in cpu for _, y in pts if y]
    body = _panel(LEFT, "send -> viewer latency", "ms", max(0.5, min(lat_values) / 1.5), max(lat_values) * 1.5, lat,
                  xlo, xhi)
    body += _panel(LEFT + PANEL_W + GAP, "server CPU per delivery", "ns", min(cpu_values) / 1.5,
                   max(cpu_values) * 1.5, cpu, xlo, xhi)
    legend, x = [], LEFT
    for label, colour, dash, _ in lat[:len(sides) * 2] + cpu[len(sides):]:
        legend += [f'<line x1="{x}" y1="{H - 18}" x2="{x + 24}" y2="{H - 18}" stroke="{colour}" stroke-width="2" '
                   f'stroke-dasharray="{dash}"/>',
                   f'<text x="{x + 30}" y="{H - 14}" font-size="12">{label}</text>']
        x += 40 + 7 * len(label)
    return "\n".join([f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
                      f'font-family="sans-serif" font-size="13">',
                      f'<rect width="{W}" height="{H}" fill="white"/>', *body, *legend, "</svg>", ""])


def write(sweep: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(sweep, indent=1))
    out.with_suffix(".svg").write_text(svg(sweep))
    out.with_suffix(".md").write_text("\n".join(markdown(sweep)) + "\n")


def parse_env(items: list[str]) -> dict[str, str]:
    env = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep:
            raise SystemExit(f"--*-env wants K=V, got {item!r}")
        env[k] = v
    return env


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", type=Path, default=SERVER, help="server binary (default build/chatorbit)")
    p.add_argument("--a-name", default="chatorbit")
    p.add_argument("--a-env", action="append", default=[], metavar="K=V")
    p.add_argument("--b", type=Path, help="a second binary, run right after A at each load")
    p.add_argument("--b-name", default="b")
    p.add_argument("--b-env", action="append", default=[], metavar="K=V")
    p.add_argument("--duration", type=int, default=DURATION_S, help="seconds per run")
    p.add_argument("--out", type=Path, required=True, help="writes OUT.json, OUT.svg, OUT.md")
    a = p.parse_args()
    sides = [(a.a_name, a.a, parse_env(a.a_env))]
    if a.b or a.b_env:
        sides.append((a.b_name, a.b or a.a, parse_env(a.b_env)))
    sweep = run(sides, duration=a.duration)
    write(sweep, a.out)
    print("\n".join(markdown(sweep)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
