#!/usr/bin/env python3
"""Live messages while a crowd joins: does a join storm delay the chat of others?

Each run is a fresh server (pinned to core 0, one event loop, as in run_suite.py) with a
live room: `fanout` with --viewers viewers and --rate messages/s for --duration seconds.
In a "storm" run, --storm-at seconds into the sending a second bench process opens
--storm viewers at once into another room (the `idle` scenario: handshakes as fast as
its client allows, held --hold seconds, then closed). A "quiet" run is the same without
the storm. Runs alternate quiet, storm, quiet, storm ... (--pairs), back to back, so that
each storm run has a quiet one beside it; the figures of the live room's viewers (p99,
p99.9, max) are compared pair by pair. With --b, each pair is A quiet, A storm, B quiet,
B storm.

    bench/join_storm.py --a build/chatorbit --pairs 3 --out bench/results/join-storm

writes OUT.json (every run) and OUT.md (the table)."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_suite import BENCH, SERVER, Server, fmt, run_bench  # noqa: E402

KEYS = ["p50_ms", "p99_ms", "p999_ms", "max_ms", "lost", "deliveries_per_s", "server_cpu_ns_per_delivery"]


def storm(server: Server, n: int, hold: float, after: float, concurrency: int, out: list) -> None:
    """After `after` s, opens `n` viewers into a room of their own, at most `concurrency`
    handshakes in flight; appends its JSON to out."""
    time.sleep(after)
    # On the bench's core, but at the lowest priority: the live room's client, measuring,
    # runs whenever it has work, so what it sees is the server's doing, not its own.
    cmd = ["nice", "-n", "19", "taskset", "-c", "1", str(BENCH), "idle", "--connections", str(n), "--room", "storm",
           "--hold", str(hold), "--connect-concurrency", str(concurrency), "--url", f"ws://127.0.0.1:{server.port}", "--server-pid", "0", "--json", "--quiet"]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        out.append({"error": r.stderr[-2000:]})
        return
    d = json.loads(r.stdout)
    d["storm_wall_s"] = time.monotonic() - t0
    out.append(d)


def steal_ms(core: int) -> float:
    """Time the hypervisor has taken `core` away from this machine so far (/proc/stat)."""
    for line in Path("/proc/stat").read_text().splitlines():
        f = line.split()
        if f[0] == f"cpu{core}":
            return int(f[8]) * 1000 / os.sysconf("SC_CLK_TCK")
    return 0.0


def one_run(binary: Path, env: dict[str, str], a, with_storm: bool, tmp: Path) -> dict:
    steal0 = steal_ms(0)
    server = Server(binary=binary, env=env)
    try:
        storms: list = []
        # The fanout connects and settles (about 1.5 s) before it sends: the storm starts
        # --storm-at s into the sending.
        th = threading.Thread(target=storm, args=(server, a.storm, a.hold, 1.5 + a.storm_at, a.storm_concurrency, storms)) \
            if with_storm else None
        if th:
            th.start()
        _, d = run_bench("join-storm", ["fanout", "--viewers", str(a.viewers), "--senders", "4", "--rate",
                                        str(a.rate), "--duration", str(a.duration)], server, out_dir=tmp)
        if th:
            th.join()
            s = storms[0] if storms else {"error": "the storm did not run"}
            if "error" in s:
                raise RuntimeError("storm failed: " + s["error"])
            d["storm"] = {k: s.get(k) for k in ("connections_open", "connections_failed", "connect_s",
                                                 "connects_per_s", "connect_p50_ms", "connect_p99_ms")}
        d["run"] = "storm" if with_storm else "quiet"
        # A stolen stretch stalls the server's core whatever it runs: tens of ms at a time
        # on a shared machine, which shows in the live room's maximum like a delay of ours.
        d["server_core_steal_ms"] = steal_ms(0) - steal0
        return d
    finally:
        server.stop()


def markdown(runs: list[dict], a) -> list[str]:
    sides = list(dict.fromkeys(d["side"] for d in runs))
    lines = [f"Live room: {a.viewers} viewers, {a.rate} msg/s from 4 senders, {a.duration} s; storm: "
             f"{a.storm:,} viewers opened into another room {a.storm_at} s into the sending, held {a.hold} s.", "",
             "| pair | side | run | p50 ms | p99 ms | p99.9 ms | max ms | lost | storm viewers open | storm connect s "
             "| core 0 stolen ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    per_pair = 2 * len(sides)
    for i, d in enumerate(runs):
        s = d.get("storm") or {}
        lines.append(f"| {i // per_pair + 1} | {d['side']} | {d['run']} | {fmt(d.get('p50_ms'), 1)} | "
                     f"{fmt(d.get('p99_ms'), 1)} | {fmt(d.get('p999_ms'), 1)} | {fmt(d.get('max_ms'), 1)} | "
                     f"{fmt(d.get('lost'))} | {fmt(s.get('connections_open'))} | {fmt(s.get('connect_s'), 2)} | "
                     f"{fmt(d.get('server_core_steal_ms'), 0)} |")
    for side in sides:
        for kind in ("quiet", "storm"):
            got = [d for d in runs if d["run"] == kind and d["side"] == side]
            med = {k: statistics.median(d[k] for d in got) for k in ("p50_ms", "p99_ms", "p999_ms", "max_ms")}
            lines.append(f"| median | {side} | {kind} | {med['p50_ms']:.1f} | {med['p99_ms']:.1f} | "
                         f"{med['p999_ms']:.1f} | {med['max_ms']:.1f} | | | | |")
    lines.append("")
    for side in sides:
        mine = [d for d in runs if d["side"] == side]
        extra = [d["max_ms"] - q["max_ms"] for q, d in zip(mine[0::2], mine[1::2])]
        lines.append(f"Max latency the storm added, {side}, pair by pair: "
                     + ", ".join(f"{x:+.1f} ms" for x in extra) + ".")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", type=Path, default=SERVER, help="server binary (default build/chatorbit)")
    p.add_argument("--a-name", default="chatorbit")
    p.add_argument("--b", type=Path, help="a second binary, its runs right after A's in each pair")
    p.add_argument("--b-name", default="b")
    p.add_argument("--env", action="append", default=[], metavar="K=V", help="server environment (repeatable)")
    p.add_argument("--viewers", type=int, default=500)
    p.add_argument("--rate", type=int, default=20)
    p.add_argument("--duration", type=int, default=15)
    p.add_argument("--storm", type=int, default=10000, help="viewers that join at once")
    p.add_argument("--storm-at", type=float, default=5.0)
    p.add_argument("--storm-concurrency", type=int, default=256,
                   help="the crowd's handshakes in flight at once (the bench client's default)")
    p.add_argument("--hold", type=float, default=3.0)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    env = dict(item.split("=", 1) for item in a.env)
    sides = [(a.a_name, a.a)] + ([(a.b_name, a.b)] if a.b else [])
    runs = []
    with tempfile.TemporaryDirectory(prefix="chatorbit-storm-") as tmp:
        for _ in range(a.pairs):
            for (name, binary), with_storm in [(side, w) for side in sides for w in (False, True)]:
                d = one_run(binary, env, a, with_storm, Path(tmp))
                d["side"] = name
                print(f"{name} {d['run']}: p50 {d['p50_ms']:.1f} p99 {d['p99_ms']:.1f} p99.9 {d['p999_ms']:.1f} "
                      f"max {d['max_ms']:.1f} ms, lost {d['lost']}", file=sys.stderr, flush=True)
                runs.append(d)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(runs, indent=1))
    text = "\n".join([f"`bench/join_storm.py {' '.join(sys.argv[1:])}`", "", *markdown(runs, a)]) + "\n"
    a.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
