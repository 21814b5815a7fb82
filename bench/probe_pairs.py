#!/usr/bin/env python3
"""The `limit` probe and a fan-out run in alternating pairs, each fan-out set beside the
probe taken just before it (at the server's own frames per write): issue 14's "CPU per
delivery at most 1.15x the probe at the same coalescing", with the two measured next to
each other instead of minutes apart. Writes each run's JSON to --out and prints a row
per pair.

    bench/probe_pairs.py --pairs 4 --out bench/results/probe-pairs
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from run_suite import Server, probe_for, run_bench  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--viewers", type=int, default=10000)
    ap.add_argument("--rate", type=int, default=100)
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--sockets", type=int, default=9000, help="the probe's sockets")
    ap.add_argument("--coalesce", default="3,4,5,6,7,8,9,10,11",
                    help="the probe's frames per write: it must span the server's, which the probe is "
                         "read at (outside its range, probe_at() clamps, and the ratio is not a measurement)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print("| pair | delivered/s | lost | p50 ms | p99 ms | CPU ns per delivery | frames per write | "
          "probe ns per frame there | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i in range(1, args.pairs + 1):
        _, limit = run_bench(f"limit-{args.sockets}-{i}", [
            "limit", "--sockets", str(args.sockets), "--frame-bytes", "120", "--coalesce", args.coalesce,
            "--duration", "1", "--rounds", "3", "--sender-cpu", "0", "--receiver-cpu", "1"], None, out_dir=args.out)
        server = Server()
        try:
            _, d = run_bench(f"fanout-{args.viewers}x{args.rate}-{i}", [
                "fanout", "--viewers", str(args.viewers), "--senders", "4", "--rate", str(args.rate),
                "--duration", str(args.duration)], server, out_dir=args.out)
        finally:
            server.stop()
        found = probe_for(d, [limit])
        ns = d.get("server_cpu_ns_per_delivery")
        measured = [float(k) for k in args.coalesce.split(",")]
        fpw = d.get("frames_per_write") or 0
        inside = min(measured) <= fpw <= max(measured)
        probe = (f"{found[0]:,.0f}" + ("" if inside else " (outside the probe's range)")) if found else "–"
        ratio = f"{ns / found[0]:.2f}x" if found and ns and inside else "–"
        print(f"| {i} | {d.get('deliveries_per_s', 0):,.0f} | {d.get('lost')} | {d.get('p50_ms', 0):.1f} | "
              f"{d.get('p99_ms', 0):.1f} | {ns or 0:,.0f} | {d.get('frames_per_write') or 0:.2f} | {probe} | {ratio} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
