#!/usr/bin/env python3
"""One room's fan-out over several chatorbit nodes on one Redis, with more viewers than
one process may hold open files for (20,000 here): the viewers are split over several
`chatorbit-bench --role viewers` processes, each dealing its viewers over every node,
and one `--role senders` process posts the messages, its senders dealt over the nodes
as well.

    bench/multinode.py --nodes 5 --viewers 99000 --viewer-procs 10 --senders 5 --rate 1 \\
        --duration 20 --out bench/results/redis/multinode.json

What it does:
  1. starts a redis-server (tools/test_servers.py) and N nodes sharing it, one JWT
     secret and one data directory (one SQLite file in WAL mode), each with one event
     loop and the limits of bench/README.md raised; nothing is pinned (2 cores for all);
  2. starts the viewer processes and waits until every one has connected (its
     --ready-file), then measures the nodes' idle cost for --idle seconds;
  3. runs the senders process for --duration at --rate messages/s; it writes what was
     acknowledged (--acked-out), which the viewer processes wait for, then drain;
  4. merges what they report: deliveries, loss, duplicates and order per viewer against
     the acknowledged messages; latency from every process's histogram (send and
     receive times are CLOCK_MONOTONIC, shared by every process on the machine); each
     node's and Redis's CPU and RSS.
Everything it starts is stopped at the end, however it ends.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from pairs import children_cpu_ns, machine_busy_ns, wait_quiet  # noqa: E402
from run_suite import BENCH, SERVER, Server  # noqa: E402
import test_servers  # noqa: E402

NOFILE = 20_000  # this machine's open-file hard limit, for every process


def cpu_ns(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


METRICS = ("chatorbit_ws_sessions", "chatorbit_messages_stored_total", "chatorbit_publications_late_total",
           "chatorbit_sequence_gaps_total", "chatorbit_publications_dropped_total", "chatorbit_publish_failures_total")


def metrics(port: int) -> dict[str, float]:
    """The unlabelled METRICS from a node's GET /metrics."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = {}
    for line in body.splitlines():
        name, _, value = line.partition(" ")
        if name in METRICS:
            out[name] = float(value)
    return out


def percentile(buckets: list[tuple[int, int, int]], count: int, lo: int, hi: int, p: float) -> float:
    """LatencyHistogram::percentile over merged buckets (nearest rank, bucket midpoint
    clamped to [min, max]), in ms."""
    if count == 0:
        return float("nan")
    if p >= 100:
        return hi / 1e6
    rank = min(max(math.ceil(p / 100 * count), 1), count)
    seen = 0
    for low, high, n in buckets:
        seen += n
        if seen >= rank:
            return min(max(low + (high - low) // 2, lo), hi) / 1e6
    return hi / 1e6


def merge_histograms(hists: list[dict]) -> dict:
    acc: dict[tuple[int, int], int] = {}
    for h in hists:
        for low, high, n in h["buckets"]:
            acc[(low, high)] = acc.get((low, high), 0) + n
    buckets = sorted((low, high, n) for (low, high), n in acc.items())
    count = sum(h["count"] for h in hists)
    lo = min((h["min_ns"] for h in hists if h["count"]), default=0)
    hi = max((h["max_ns"] for h in hists), default=0)
    out = {f"p{k}_ms": percentile(buckets, count, lo, hi, p)
           for k, p in (("50", 50), ("90", 90), ("99", 99), ("999", 99.9))}
    out.update(max_ms=hi / 1e6, mean_ms=(sum(h["sum_ns"] for h in hists) / count / 1e6) if count else None,
               samples=count)
    return out


def wait_files(paths: list[Path], procs: list[subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(p.exists() for p in paths):
            return
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"a load process exited early ({proc.returncode}): {' '.join(proc.args[:6])} ...")
        time.sleep(0.2)
    raise RuntimeError(f"not every load process was ready within {timeout:.0f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--viewers", type=int, default=99_000)
    ap.add_argument("--viewer-procs", type=int, default=10, help="processes the viewers are split over")
    ap.add_argument("--senders", type=int, default=5)
    ap.add_argument("--rate", type=float, default=1.0, help="messages/s, all senders together")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of sending")
    ap.add_argument("--idle", type=float, default=5.0, help="seconds of idle measurement before sending")
    ap.add_argument("--drain", type=float, default=30.0)
    ap.add_argument("--server", type=Path, default=SERVER)
    ap.add_argument("--node-env", action="append", default=[], metavar="K=V", help="more settings for every node")
    ap.add_argument("--quiet-below", type=float, default=0,
                    help="first wait (at most 15 min) until the machine is below this %% busy")
    ap.add_argument("--out", type=Path, help="write the combined result here (JSON)")
    ap.add_argument("--keep", type=Path, help="keep every process's JSON in this directory")
    args = ap.parse_args()
    per_node = math.ceil((args.viewers + args.senders) / args.nodes)
    per_proc = math.ceil(args.viewers / args.viewer_procs)
    if per_node > NOFILE - 150 or per_proc > NOFILE - 150:
        ap.error(f"{per_node} connections per node or {per_proc} per viewer process: over the open-file limit "
                 f"({NOFILE}) less the processes' own files; add --nodes or --viewer-procs")
    if args.quiet_below:
        wait_quiet(args.quiet_below, 900)
    tmp = Path(tempfile.mkdtemp(prefix="chatorbit-multinode-"))
    data_dir = tmp / "data"
    data_dir.mkdir()
    room = f"bench-multinode-{os.getpid()}-{int(time.time())}"
    nodes: list[Server] = []
    load: list[subprocess.Popen] = []
    redis = None
    try:
        redis = test_servers.start_standalone(tmp / "redis")
        env = {"REDIS_ADDR": redis.addr, "JWT_SECRET": secrets.token_hex(32)}
        for item in args.node_env:
            k, _, v = item.partition("=")
            env[k] = v
        # One after the other: the first creates the database's schema.
        for _ in range(args.nodes):
            nodes.append(Server(args.server, env=env, cpus="0,1", data_dir=str(data_dir)))
        urls = ",".join(f"ws://127.0.0.1:{n.port}" for n in nodes)
        print(f"[multinode] redis {redis.addr}, nodes {urls}, room {room}", file=sys.stderr, flush=True)

        expect = tmp / "acked.txt"
        ready = [tmp / f"ready-{i}" for i in range(args.viewer_procs)]
        outs = [tmp / f"viewers-{i}.json" for i in range(args.viewer_procs)]
        left = args.viewers
        t_connect = time.monotonic()
        for i in range(args.viewer_procs):
            n = min(per_proc, left)
            left -= n
            cmd = [str(BENCH), "fanout", "--role", "viewers", "--url", urls, "--viewers", str(n), "--room", room,
                   "--server-pid", "0", "--duration", str(args.duration + 600), "--drain", str(args.drain),
                   "--expect-file", str(expect), "--ready-file", str(ready[i]), "--source-ips", "4",
                   "--histogram", "--json", "--quiet", "--out", str(outs[i])]
            load.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        wait_files(ready, load, timeout=600)
        connect_s = time.monotonic() - t_connect
        opened = sum(int(p.read_text().split()[0]) for p in ready)
        print(f"[multinode] {opened} viewers connected in {connect_s:.1f} s", file=sys.stderr, flush=True)
        fds = {n.proc.pid: open_files(n.proc.pid) for n in nodes}
        sessions = {n.proc.pid: metrics(n.port).get("chatorbit_ws_sessions") for n in nodes}

        pids = [n.proc.pid for n in nodes] + [redis.pid]
        c0 = {p: cpu_ns(p) for p in pids}
        w0 = time.monotonic()
        time.sleep(args.idle)
        c1 = {p: cpu_ns(p) for p in pids}
        w1 = time.monotonic()
        m1, k1 = machine_busy_ns(), children_cpu_ns()
        load_cpu1 = sum(cpu_ns(p.pid) for p in load)

        sender_out = tmp / "senders.json"
        cmd = [str(BENCH), "fanout", "--role", "senders", "--url", urls, "--viewers", "0", "--senders",
               str(args.senders), "--rate", str(args.rate), "--duration", str(args.duration), "--room", room,
               "--server-pid", "0", "--acked-out", str(expect), "--json", "--quiet", "--out", str(sender_out)]
        sender = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        load.append(sender)
        if sender.wait(timeout=args.duration + 300) != 0:
            raise RuntimeError(f"the senders process failed: {sender.stderr.read()[-2000:]}")
        for proc in load[:-1]:
            if proc.wait(timeout=args.drain + 120) != 0:
                raise RuntimeError(f"a viewers process failed: {proc.stderr.read()[-2000:]}")
        c2 = {p: cpu_ns(p) for p in pids}
        w2 = time.monotonic()
        # The rest of the machine meanwhile: all CPU less the nodes', Redis's and the load
        # processes' (children once waited for; they were running at w1).
        m2, k2 = machine_busy_ns(), children_cpu_ns()
        others = (m2 - m1) - sum(c2[p] - c1[p] for p in pids) - ((k2 - k1) - load_cpu1)
        rss = {p: rss_bytes(p) for p in pids}
        after = {n.proc.pid: metrics(n.port) for n in nodes}

        senders = json.loads(sender_out.read_text())
        viewers = [json.loads(p.read_text()) for p in outs]
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for p in [*outs, sender_out]:
                d = json.loads(p.read_text())
                d.pop("latency_histogram", None)
                (args.keep / p.name).write_text(json.dumps(d) + "\n")
        total = {k: sum(v[k] for v in viewers) for k in
                 ("deliveries", "lost", "duplicated", "reordered", "unexpected", "viewers_open",
                  "viewers_failed", "viewers_closed_by_server", "viewers_with_loss", "seq_gaps", "seq_backwards",
                  "foreign_messages")}
        ends: dict[str, int] = {}
        for v in viewers:
            for k, n in v["connection_ends"].items():
                ends[k] = ends.get(k, 0) + n
        latency = merge_histograms([v["latency_histogram"] for v in viewers])
        measured = w2 - w1  # from the start of sending to the end of the drains
        deliveries = total["deliveries"]
        node_rows = []
        for i, n in enumerate(nodes):
            p = n.proc.pid
            # Its own viewers' deliveries: the viewers are dealt evenly over the nodes.
            own = deliveries / args.nodes
            node_rows.append({"node": i + 1, "port": n.port, "pid": p, "open_files": fds[p],
                              "ws_sessions": sessions[p],
                              "idle_cpu_percent": (c1[p] - c0[p]) / (w1 - w0) / 1e7,
                              "cpu_percent": (c2[p] - c1[p]) / measured / 1e7,
                              "cpu_ns_per_delivery": (c2[p] - c1[p]) / own if own else None,
                              "rss_bytes": rss[p], **{k.removeprefix("chatorbit_"): v for k, v in after[p].items()
                                                     if k != "chatorbit_ws_sessions"}})
        rp = redis.pid
        result = {
            "scenario": "multinode-fanout",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "nodes": args.nodes, "viewer_processes": args.viewer_procs, "viewers": args.viewers,
            "senders": args.senders, "rate": args.rate, "duration_s": senders["duration_s"],
            "connect_s": connect_s, "measured_s": measured,
            "sent": senders["sent"], "acked": senders["acked"], "send_errors": senders["send_errors"],
            "sender_max_behind_ms": senders["sender_max_behind_ms"],
            "ack_p50_ms": senders["ack_p50_ms"], "ack_p99_ms": senders["ack_p99_ms"],
            "expected_deliveries": senders["acked"] * total["viewers_open"],
            "deliveries_per_s": deliveries / senders["duration_s"],
            "expected_deliveries_per_s": args.rate * total["viewers_open"],
            **total, **latency, "connection_ends": ends,
            "node_cpu_percent_total": sum(r["cpu_percent"] for r in node_rows),
            "node_cpu_ns_per_delivery": sum(c2[n.proc.pid] - c1[n.proc.pid] for n in nodes) / deliveries
            if deliveries else None,
            "redis_cpu_percent": (c2[rp] - c1[rp]) / measured / 1e7,
            "redis_idle_cpu_percent": (c1[rp] - c0[rp]) / (w1 - w0) / 1e7,
            "redis_rss_bytes": rss[rp],
            "bench_viewer_cpu_percent_total": sum(v["bench_cpu_percent"] for v in viewers),
            "others_cpu_percent": max(0.0, others / measured / 1e7),
            "per_node": node_rows,
        }
        text = json.dumps(result, indent=1)
        print(text)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n")
        return 0
    finally:
        for proc in load:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in load:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for n in nodes:
            n.stop()
        if redis:
            redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
