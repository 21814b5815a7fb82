#!/usr/bin/env python3
"""Two server builds on one scenario, in alternating back-to-back pairs (A B A B ...):
this machine's speed drifts by 10-30% within minutes, so only runs next to each other
compare. Prints each run and the per-build medians; --out writes the table as Markdown.

    bench/pairs.py --a /path/to/old/chatorbit --b build/chatorbit --pairs 3 \\
        -- fanout --viewers 10000 --senders 4 --rate 100 --duration 15
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_suite import BENCH, Server, run_bench  # noqa: E402

KEYS = ["deliveries_per_s", "server_cpu_ns_per_delivery", "p50_ms", "p99_ms", "lost", "messages_per_s"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, type=Path, help="first server binary (e.g. the build before a change)")
    ap.add_argument("--b", required=True, type=Path, help="second server binary")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--out", type=Path, help="write the table here (Markdown)")
    ap.add_argument("scenario", nargs=argparse.REMAINDER, help="-- then chatorbit-bench arguments")
    args = ap.parse_args()
    scenario = [a for a in args.scenario if a != "--"]
    if not scenario or not BENCH.exists():
        ap.error("give a scenario after --, and build chatorbit-bench first (./dev build)")
    runs: dict[str, list[dict]] = {"A": [], "B": []}
    rows = []
    with tempfile.TemporaryDirectory(prefix="chatorbit-pairs-") as tmp:
        for i in range(args.pairs):
            for label, binary in (("A", args.a), ("B", args.b)):
                server = Server(binary)
                try:
                    _, result = run_bench(f"{label}-{i}", scenario, server, Path(tmp))
                finally:
                    server.stop()
                runs[label].append(result)
                rows.append((i + 1, label, result))
                shown = ", ".join(f"{k} {result.get(k)}" for k in KEYS if result.get(k) is not None)
                print(f"pair {i + 1} {label}: {shown}", flush=True)
    lines = [f"`chatorbit-bench {' '.join(scenario)}`; A = `{args.a}`, B = `{args.b}`; pairs run A then B.", "",
             "| pair | build | " + " | ".join(KEYS) + " |", "|---|---|" + "---|" * len(KEYS)]
    for pair, label, r in rows:
        lines.append(f"| {pair} | {label} | " + " | ".join(str(r.get(k, "–")) for k in KEYS) + " |")
    for label in ("A", "B"):
        med = {k: statistics.median(r[k] for r in runs[label]) for k in KEYS if all(r.get(k) is not None for r in runs[label])}
        lines.append(f"| median | {label} | " + " | ".join(f"{med[k]:.1f}" if k in med else "–" for k in KEYS) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
