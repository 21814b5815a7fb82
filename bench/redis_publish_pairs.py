#!/usr/bin/env python3
"""The Redis engine's publications per second against redis-benchmark's PUBLISH on the
same Redis, in alternating back-to-back pairs (engine, reference, engine, ...): this
machine's speed drifts, so only neighbours compare.

Starts one redis-server (tools/test_servers.py) pinned to core 0; both clients run
pinned to core 1. For each depth D: the engine with `--window D` (chatorbit-redis-bench,
one publisher connection, at most D publications unconfirmed) beside
`redis-benchmark -c 1 -P D` (one connection, batches of D), same payload size, and,
as the ceiling of what one client process gets from this Redis, `redis-benchmark -c 4
-P D`. Nothing subscribes to the channel in either.

    bench/redis_publish_pairs.py --pairs 3 --payload 256 --depth 64,1024 --out bench/results/redis/publish.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import test_servers  # noqa: E402

ENGINE_BENCH = ROOT / "build" / "chatorbit-redis-bench"
CHANNEL = "chatorbit-redis-bench"


def proc_cpu_ns(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def children_cpu_ns() -> int:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return int((ru.ru_utime + ru.ru_stime) * 1e9)


def run_engine(port: int, pid: int, payload: int, depth: int, count: int) -> dict:
    cmd = ["taskset", "-c", "1", str(ENGINE_BENCH), "--redis", f"127.0.0.1:{port}", "--payload", str(payload),
           "--window", str(depth), "--count", str(count), "--redis-pid", str(pid), "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
    d = json.loads(r.stdout)
    return {"rate": d["publications_per_s"], "client_cpu_ns": d["client_cpu_ns_per_publication"],
            "redis_cpu_ns": d["redis_cpu_ns_per_publication"], "errors": d["errors"]}


def run_reference(port: int, pid: int, payload: int, depth: int, clients: int, count: int) -> dict:
    cmd = ["taskset", "-c", "1", "redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-P", str(depth), "-n",
           str(count), "-c", str(clients), "--csv", "PUBLISH", CHANNEL, "x" * payload]
    c0, r0 = children_cpu_ns(), proc_cpu_ns(pid)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
    c1, r1 = children_cpu_ns(), proc_cpu_ns(pid)
    row = r.stdout.strip().splitlines()[-1].split('","')
    rate = float(row[1])
    # The client's CPU includes its start-up and connect: negligible at this count.
    return {"rate": rate, "client_cpu_ns": (c1 - c0) / count, "redis_cpu_ns": (r1 - r0) / count, "errors": 0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--payload", type=int, default=256, help="bytes per publication")
    ap.add_argument("--depth", default="64,1024", help="comma list: engine window = redis-benchmark -P")
    ap.add_argument("--count", type=int, default=1_000_000, help="publications per run")
    ap.add_argument("--out", type=Path, help="write every run and the medians here (JSON)")
    args = ap.parse_args()
    if not ENGINE_BENCH.exists():
        ap.error(f"{ENGINE_BENCH} is missing: ./dev build")
    depths = [int(d) for d in args.depth.split(",")]
    sides = [("engine", 1), ("redis-benchmark -c 1", 1), ("redis-benchmark -c 4", 4)]
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="chatorbit-redis-pub-") as tmp:
        server = test_servers.start_standalone(tmp)
        try:
            os.sched_setaffinity(server.pid, {0})
            for pair in range(1, args.pairs + 1):
                for depth in depths:
                    for side, clients in sides:
                        if side == "engine":
                            res = run_engine(server.port, server.pid, args.payload, depth, args.count)
                        else:
                            res = run_reference(server.port, server.pid, args.payload, depth, clients, args.count)
                        res.update(pair=pair, depth=depth, side=side, payload=args.payload)
                        runs.append(res)
                        print(f"pair {pair} depth {depth:5d} {side:22s} {res['rate']:>12,.0f}/s  client "
                              f"{res['client_cpu_ns']:6.0f} ns  redis {res['redis_cpu_ns'] or 0:6.0f} ns", flush=True)
                        time.sleep(0.2)
        finally:
            server.stop()
    medians = []
    for depth in depths:
        row = {"depth": depth}
        for side, _ in sides:
            rates = [r["rate"] for r in runs if r["depth"] == depth and r["side"] == side]
            row[side] = statistics.median(rates)
        eng = [r["rate"] for r in runs if r["depth"] == depth and r["side"] == "engine"]
        ref = [r["rate"] for r in runs if r["depth"] == depth and r["side"] == "redis-benchmark -c 1"]
        row["engine / -c 1, per pair"] = [round(e / f, 3) for e, f in zip(eng, ref)]
        medians.append(row)
        print(json.dumps(row))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                        "payload": args.payload, "count": args.count, "runs": runs,
                                        "medians": medians}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
