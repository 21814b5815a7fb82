#!/usr/bin/env python3
"""Two server setups on one scenario, in alternating back-to-back pairs (A B A B ...):
this machine's speed drifts by 10-30% within minutes, so only runs next to each other
compare. Prints each run and the per-side medians; --out writes the table as Markdown,
--json-out every run's JSON.

A side is a binary (--a, --b; --b defaults to --a) and its own environment on top of
run_suite.SERVER_ENV (--a-env K=V, --b-env K=V, repeatable). REDIS_ADDR=auto starts a
fresh redis-server (tools/test_servers.py) for each of that side's runs, pinned to the
server's core, and sets REDIS_ADDR to it; its CPU is measured with the server's over the
same interval, and the table shows the node's and Redis's CPU per delivery apart.
--a-nodes/--b-nodes N (with REDIS_ADDR=auto) starts N nodes sharing that Redis, one JWT
secret and one data directory, all pinned to the server's core; the bench gets every
node's URL (senders and viewers dealt over them, see chatorbit-bench --url) and the
node CPU is the nodes' sum. --a-gateway/--b-gateway puts a gateway (the same binary,
CHATORBIT_ROLE=gateway, pinned to the server's core too) in front of that side's nodes:
the bench talks to it alone, and the side's CPU is the nodes' and the gateway's sum.

    bench/pairs.py --a /path/to/old/chatorbit --b build/chatorbit --pairs 3 \\
        -- fanout --viewers 10000 --senders 4 --rate 100 --duration 15
    bench/pairs.py --a build/chatorbit --a-name embedded --b-env REDIS_ADDR=auto --b-name redis \\
        -- fanout --viewers 10000 --senders 4 --rate 100 --duration 15
    bench/pairs.py --a build/chatorbit --a-name embedded --b-env REDIS_ADDR=auto --b-nodes 3 \\
        --b-name "3 nodes" -- ingress --rooms 64 --senders 64 --viewers 64 --window 32 --duration 15
    bench/pairs.py --a build/chatorbit --a-name direct --b-gateway --b-name gateway \\
        -- fanout --viewers 5000 --senders 4 --rate 100 --duration 15
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import time
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from run_suite import BENCH, Server, run_bench  # noqa: E402
import test_servers  # noqa: E402

KEYS = ["deliveries_per_s", "server_cpu_ns_per_delivery", "softirq_cpu_ns_per_delivery", "p50_ms", "p99_ms", "lost",
        "messages_per_s", "others_cpu_percent"]
# With a Redis on one side: server_cpu_ns_per_delivery is node + Redis; these split it.
REDIS_KEYS = ["node_cpu_ns_per_delivery", "redis_cpu_ns_per_delivery"]


def parse_env(items: list[str], flag: str) -> dict[str, str]:
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"{flag} wants K=V, not {item!r}")
        env[key] = value
    return env


def split_cpu(result: dict, node_pids: list[int], redis_pid: int | None) -> None:
    """Adds the nodes' and Redis's CPU per delivery (per message for ingress, where the
    two are the same count) to `result`."""
    by_pid = result.get("server_cpu_ns_per_delivery_by_pid") or result.get("server_cpu_ns_per_message_by_pid")
    per = "server_cpu_ns_per_message" if result.get("messages_per_s") is not None else "server_cpu_ns_per_delivery"
    if by_pid and redis_pid:
        nodes = [by_pid.get(str(p)) for p in node_pids]
        result["node_cpu_ns_per_delivery"] = None if None in nodes else sum(nodes)
        result["redis_cpu_ns_per_delivery"] = by_pid.get(str(redis_pid))
    else:
        result["node_cpu_ns_per_delivery"] = result.get(per)
        result["redis_cpu_ns_per_delivery"] = None


def machine_busy_ns() -> int:
    """CPU time spent by everything on the machine so far (/proc/stat: all but idle and
    iowait), in ns."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields) - fields[3] - fields[4] - sum(fields[7:])  # guest time is in user already; steal apart
    return busy * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def proc_cpu_ns(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0
    return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def children_cpu_ns() -> int:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return int((ru.ru_utime + ru.ru_stime) * 1e9)


def wait_quiet(below: float, longest: float) -> float:
    """Waits (at most `longest` s) until the whole machine is below `below` percent of
    its cores busy over 2 s; returns the last reading."""
    deadline = time.monotonic() + longest
    while True:
        b0, t0 = machine_busy_ns(), time.monotonic()
        time.sleep(2)
        share = (machine_busy_ns() - b0) / ((time.monotonic() - t0) * 1e9 * os.cpu_count()) * 100
        if share < below or time.monotonic() > deadline:
            return share
        print(f"[pairs] machine {share:.0f}% busy: waiting", file=sys.stderr, flush=True)


def start_gateway(binary: Path, env: dict[str, str], nodes: list[Server], nice: int, cpus: str) -> Server:
    """A gateway in front of `nodes` (the first also serves auth and user), with the
    edge limits out of the way of the load."""
    first = f"http://127.0.0.1:{nodes[0].port}"
    return Server(binary, env={**env, "CHATORBIT_ROLE": "gateway", "CHATORBIT_AUTH_URL": first,
                               "CHATORBIT_USER_URL": first, "CHATORBIT_EDGE_REQUEST_RATE": "off",
                               "CHATORBIT_CHAT_URLS": ",".join(f"127.0.0.1:{s.port}" for s in nodes)},
                  cpus=cpus, nice=nice)


def run_side(label: str, binary: Path, side_env: dict[str, str], nodes: int, scenario: list[str], run: str,
             tmp: Path, nice: int = 0, gateway: bool = False, gateway_cpus: str = "0") -> dict:
    """One run of one side: its Redis (if REDIS_ADDR=auto), nodes and gateway (if asked),
    the bench, then everything stopped."""
    env = dict(side_env)
    redis = None
    servers: list[Server] = []
    shared = None
    front = None
    try:
        if gateway:
            env.setdefault("JWT_SECRET", secrets.token_hex(32))  # the gateway checks the nodes' tokens
            env.setdefault("CHATORBIT_TRUSTED_PROXIES", "127.0.0.1")
        if env.get("REDIS_ADDR") == "auto":
            redis = test_servers.start_standalone(tmp / f"redis-{run}")
            os.sched_setaffinity(redis.pid, {0})  # the system under test's core
            if nice:
                os.setpriority(os.PRIO_PROCESS, redis.pid, nice)
            env["REDIS_ADDR"] = redis.addr
        if nodes > 1:
            if not redis and "REDIS_ADDR" not in env:
                raise SystemExit(f"{label}: several nodes need a Redis (REDIS_ADDR=auto)")
            env.setdefault("JWT_SECRET", secrets.token_hex(32))
            shared = tmp / f"data-{run}"
            shared.mkdir()
        for _ in range(nodes):  # one after the other: the first creates the schema
            servers.append(Server(binary, env=env, data_dir=str(shared) if shared else None, nice=nice))
        more = tuple(s.proc.pid for s in servers[1:]) + ((redis.pid,) if redis else ())
        args = list(scenario)
        target = servers[0]
        if gateway:
            front = start_gateway(binary, env, servers, nice, gateway_cpus)
            more = tuple(s.proc.pid for s in servers) + ((redis.pid,) if redis else ())
            target = front
        elif nodes > 1:
            args += ["--url", ",".join(f"ws://127.0.0.1:{s.port}" for s in servers)]
        # What the rest of the machine did meanwhile: all CPU time less ours (the bench, a
        # child; the servers and Redis, read before they stop).
        ours = [s.proc.pid for s in servers] + ([redis.pid] if redis else []) + ([front.proc.pid] if front else [])
        m0, c0, o0, w0 = machine_busy_ns(), children_cpu_ns(), sum(proc_cpu_ns(p) for p in ours), time.monotonic()
        _, result = run_bench(run, args, target, tmp, more_pids=more, nice=nice)
        m1, c1, o1, w1 = machine_busy_ns(), children_cpu_ns(), sum(proc_cpu_ns(p) for p in ours), time.monotonic()
        result["others_cpu_percent"] = max(0.0, ((m1 - m0) - (c1 - c0) - (o1 - o0)) / ((w1 - w0) * 1e7))
    finally:
        if front:
            front.stop()
        for s in servers:
            s.stop()
        if redis:
            redis.stop()
    split_cpu(result, [s.proc.pid for s in servers], redis.pid if redis else None)
    if front:
        by_pid = result.get("server_cpu_ns_per_delivery_by_pid") or {}
        result["gateway_cpu_ns_per_delivery"] = by_pid.get(str(front.proc.pid))
        nodes_ns = [by_pid.get(str(s.proc.pid)) for s in servers]
        result["node_cpu_ns_per_delivery"] = None if None in nodes_ns else sum(nodes_ns)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, type=Path, help="first server binary (e.g. the build before a change)")
    ap.add_argument("--b", type=Path, help="second server binary (default: --a)")
    ap.add_argument("--a-env", action="append", default=[], metavar="K=V", help="side A's environment")
    ap.add_argument("--b-env", action="append", default=[], metavar="K=V", help="side B's environment")
    ap.add_argument("--a-nodes", type=int, default=1, help="side A's nodes (several need REDIS_ADDR)")
    ap.add_argument("--b-nodes", type=int, default=1)
    ap.add_argument("--a-gateway", action="store_true", help="side A's nodes behind a gateway")
    ap.add_argument("--b-gateway", action="store_true")
    ap.add_argument("--gateway-cpus", default="0",
                    help="where a gateway runs (taskset list): 0, the nodes' core (default), or 1, the bench's")
    ap.add_argument("--a-name", default="A")
    ap.add_argument("--b-name", default="B")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--nice", type=int, default=0,
                    help="run servers, Redis and the bench at this nice value (say -10: on a shared machine, "
                         "other work then takes less of their cores)")
    ap.add_argument("--quiet-below", type=float, default=0,
                    help="before each run, wait (up to --quiet-wait s) until the machine is below this %% busy")
    ap.add_argument("--quiet-wait", type=float, default=300)
    ap.add_argument("--out", type=Path, help="write the table here (Markdown)")
    ap.add_argument("--json-out", type=Path, help="write every run's JSON here")
    ap.add_argument("scenario", nargs=argparse.REMAINDER, help="-- then chatorbit-bench arguments")
    args = ap.parse_args()
    scenario = [a for a in args.scenario if a != "--"]
    if not scenario or not BENCH.exists():
        ap.error("give a scenario after --, and build chatorbit-bench first (./dev build)")
    sides = [(args.a_name, args.a, parse_env(args.a_env, "--a-env"), args.a_nodes),
             (args.b_name, args.b or args.a, parse_env(args.b_env, "--b-env"), args.b_nodes)]
    gateways = {args.a_name: args.a_gateway, args.b_name: args.b_gateway}
    with_redis = any(env.get("REDIS_ADDR") == "auto" for _, _, env, _ in sides)
    keys = KEYS[:2] + REDIS_KEYS + KEYS[2:] if with_redis else KEYS
    if args.a_gateway or args.b_gateway:
        keys = KEYS[:2] + ["node_cpu_ns_per_delivery", "gateway_cpu_ns_per_delivery"] + KEYS[2:]
    runs: dict[str, list[dict]] = {name: [] for name, _, _, _ in sides}
    rows = []
    with tempfile.TemporaryDirectory(prefix="chatorbit-pairs-") as tmp:
        for i in range(args.pairs):
            for n, (label, binary, side_env, nodes) in enumerate(sides):
                if args.quiet_below:
                    wait_quiet(args.quiet_below, args.quiet_wait)
                result = run_side(label, binary, side_env, nodes, scenario, f"{'ab'[n]}-{i}", Path(tmp), args.nice,
                                  gateways[label], args.gateway_cpus)
                result["side"] = label
                result["pair"] = i + 1
                runs[label].append(result)
                rows.append((i + 1, label, result))
                shown = ", ".join(f"{k} {result.get(k)}" for k in keys if result.get(k) is not None)
                print(f"pair {i + 1} {label}: {shown}", flush=True)
    def describe(binary, env, nodes, gateway):
        return (f"`{binary}`" + (f" with {' '.join(env)}" if env else "") +
                (f", {nodes} nodes" if nodes > 1 else "") + (f", behind a gateway on core {args.gateway_cpus}" if gateway else ""))

    a_desc = describe(args.a, args.a_env, args.a_nodes, args.a_gateway)
    b_desc = describe(args.b or args.a, args.b_env, args.b_nodes, args.b_gateway)
    lines = [f"`chatorbit-bench {' '.join(scenario)}`; {args.a_name} = {a_desc}, {args.b_name} = {b_desc}; "
             f"pairs run {args.a_name} then {args.b_name}" + (f", at nice {args.nice}" if args.nice else "") + ".", "",
             "| pair | side | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]

    def cell(v):
        return "–" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))

    for pair, label, r in rows:
        lines.append(f"| {pair} | {label} | " + " | ".join(cell(r.get(k)) for k in keys) + " |")
    for label, _, _, _ in sides:
        med = {k: statistics.median(r[k] for r in runs[label]) for k in keys
               if all(r.get(k) is not None for r in runs[label])}
        lines.append(f"| median | {label} | " + " | ".join(f"{med[k]:.1f}" if k in med else "–" for k in keys) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.json_out:
        args.json_out.write_text(json.dumps([r for _, _, r in rows], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
