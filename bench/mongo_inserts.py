#!/usr/bin/env python3
"""The MongoDB store's write rate against a bare client, on one FerretDB, in one run.

Variants, each into a fresh database of the same server, run in turn within each pair
(so that they alternate back to back on this shared machine):

  store-1        chatorbit-store-bench --batch 1: Store::append_messages, one by one
  store-B        chatorbit-store-bench --batch B: the same, B messages per call
  pymongo-1      pymongo insert_one of the same documents
  pymongo-B      pymongo insert_many of B of them, ordered
  ingress        chatorbit on this database under `chatorbit-bench ingress` (--ingress)
  pymongo-as-ingress
                 pymongo insert_many of what that ingress run stored: as many messages,
                 64 rooms taking turns, in batches of the pipeline's mean batch (/metrics)
  ingress+redis  the same with a redis-server as its engine (--ingress --redis)

Every write uses the store's write concern (majority, journaled; FerretDB ignores it),
into a collection with the store's two unique indexes.
FerretDB (and Redis) run on core 0, everything else on core 1: the server is the same
for every variant, and its CPU per message is reported beside each rate.

    bench/mongo_inserts.py --pairs 3 --batch 256 --out bench/results/mongo/inserts.md
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from pairs import proc_cpu_ns, wait_quiet  # noqa: E402
from run_suite import Server, run_bench  # noqa: E402
import test_servers  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STORE_BENCH = ROOT / "build" / "chatorbit-store-bench"
CONTENT = "x" * 120


def documents(n: int, rooms: int = 16, batch: int = 256, interleave: bool = False):
    """What MongoStore writes for a message (mongo_store.cpp, append_message). The rooms
    cycle per batch, as chatorbit-store-bench's do, or per message (`interleave`), as an
    ingress batch's do (every sender in a room of its own)."""
    from bson import Int64, ObjectId
    seqs: dict[str, int] = {}
    t0 = 1_700_000_000_000_000_000
    out = []
    for i in range(n):
        room = f"bench-room-{(i if interleave else i // batch) % rooms}"
        seqs[room] = seqs.get(room, 0) + 1
        ns = t0 + i * 1000
        out.append({"_id": ObjectId(), "room_id": room, "user_id": "%024x" % (1_000_000_000 + i % 64),
                    "username": f"sender{i % 64}", "content": CONTENT,
                    "timestamp": datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc),
                    "timestamp_ns": Int64(ns), "seq": Int64(seqs[room]), "cid": f"c{i}", "deleted": False})
    return out


def pymongo_run(url: str, n: int, batch: int, rooms: int = 16, interleave: bool = False) -> dict:
    from pymongo import MongoClient, WriteConcern
    docs = documents(n + batch, rooms=rooms, batch=batch, interleave=interleave)
    with MongoClient(url, serverSelectionTimeoutMS=5000) as client:
        coll = client.get_default_database().get_collection(
            "messages", write_concern=WriteConcern(w="majority", j=True))
        # The store's unique indexes, as it builds them on FerretDB (no partial indexes).
        coll.create_index([("room_id", 1), ("seq", 1)], unique=True)
        coll.create_index([("room_id", 1), ("user_id", 1), ("cid", 1)], unique=True)
        warm, timed = docs[:batch], docs[batch:]
        coll.insert_many(warm, ordered=True)
        cpu0, t0 = time.process_time(), time.perf_counter()
        if batch == 1:
            for d in timed:
                coll.insert_one(d)
        else:
            for i in range(0, len(timed), batch):
                coll.insert_many(timed[i:i + batch], ordered=True)
        secs, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"messages": n, "seconds": secs, "messages_per_s": n / secs, "client_cpu_us_per_message": cpu / n * 1e6}


def store_run(url: str, n: int, batch: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATORBIT_")}
    env["MONGO_URL"] = url
    r = subprocess.run(["taskset", "-c", "1", str(STORE_BENCH), "--batch", str(batch), "--messages", str(n)],
                       env=env, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise SystemExit(f"chatorbit-store-bench failed: {r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def ingress_run(url: str, tmp: Path, run: str, duration: int, redis_dir: Path | None) -> dict:
    env = {"MONGO_URL": url}
    redis = None
    if redis_dir is not None:
        redis = test_servers.start_standalone(redis_dir)
        os.sched_setaffinity(redis.pid, {0})
        env["REDIS_ADDR"] = redis.addr
    server = Server(env=env, cpus="1")
    try:
        _, result = run_bench(run, ["ingress", "--rooms", "64", "--senders", "64", "--viewers", "64", "--window",
                                    "32", "--duration", str(duration)], server, tmp)
        # The pipeline's mean batch over the run, for the bare client to write the same.
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as r:
            metrics = dict(line.split()[:2] for line in r.read().decode().splitlines()
                           if line and not line.startswith("#"))
        mean_batch = float(metrics["chatorbit_messages_stored_total"]) / float(metrics["chatorbit_message_batches_total"])
    finally:
        server.stop()
        if redis:
            redis.stop()
    return {"messages_per_s": result["messages_per_s"], "lost": result.get("lost"),
            "ack_p99_ms": result.get("ack_p99_ms"), "stored": result.get("stored"), "mean_batch": mean_batch}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--messages", type=int, default=20000, help="per batched variant")
    ap.add_argument("--single", type=int, default=2000, help="messages per one-by-one variant")
    ap.add_argument("--ingress", action="store_true", help="also chatorbit under chatorbit-bench ingress")
    ap.add_argument("--redis", action="store_true", help="and with a Redis engine (needs --ingress)")
    ap.add_argument("--duration", type=int, default=15, help="seconds per ingress run")
    ap.add_argument("--quiet-below", type=float, default=0)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    if not STORE_BENCH.exists():
        ap.error("build chatorbit-store-bench first (./dev build)")
    variants = ["store-1", f"store-{args.batch}", "pymongo-1", f"pymongo-{args.batch}"]
    if args.ingress:
        # pymongo-as-ingress: the bare client writing what that pair's ingress run stored:
        # 64 rooms, one message per room in turn, in batches of the pipeline's mean size.
        variants += ["ingress", "pymongo-as-ingress"]
        if args.redis:
            variants.append("ingress+redis")
    rows: list[dict] = []
    last_ingress: dict = {}
    with tempfile.TemporaryDirectory(prefix="chatorbit-mongo-bench-") as tmp:
        db = test_servers.start_ferretdb(Path(tmp) / "ferretdb")
        os.sched_setaffinity(db.pid, {0})
        try:
            for pair in range(1, args.pairs + 1):
                for v in variants:
                    if args.quiet_below:
                        wait_quiet(args.quiet_below, 300)
                    name = f"b{pair}_{v.replace('-', '_').replace('+', '_')}"
                    url = db.url.rstrip("/") + "/" + name
                    c0 = proc_cpu_ns(db.pid)
                    if v.startswith("store-"):
                        b = int(v.split("-")[1])
                        r = store_run(url, args.single if b == 1 else args.messages, b)
                    elif v == "pymongo-as-ingress":
                        b = max(1, round(last_ingress["mean_batch"]))
                        r = pymongo_run(url, min(last_ingress["stored"], 200_000), b, rooms=64, interleave=True)
                        r["batch"] = b
                    elif v.startswith("pymongo-"):
                        b = int(v.split("-")[1])
                        r = pymongo_run(url, args.single if b == 1 else args.messages, b)
                    else:
                        r = ingress_run(url, Path(tmp), f"{name}", args.duration,
                                        Path(tmp) / f"redis-{name}" if v == "ingress+redis" else None)
                        if v == "ingress":
                            last_ingress = r
                    server_ns = proc_cpu_ns(db.pid) - c0
                    count = r.get("messages") or r.get("stored") or 1
                    r.update({"variant": v, "pair": pair, "ferretdb_cpu_us_per_message": server_ns / count / 1e3})
                    rows.append(r)
                    extra = f", batch {r['mean_batch']:.0f}" if "mean_batch" in r else (
                        f", batch {r['batch']}" if "batch" in r else "")
                    print(f"pair {pair} {v}: {r['messages_per_s']:.0f} messages/s, FerretDB "
                          f"{r['ferretdb_cpu_us_per_message']:.1f} us/message{extra}", flush=True)
        finally:
            db.stop()
    lines = [f"`bench/mongo_inserts.py --pairs {args.pairs} --batch {args.batch} --messages {args.messages} "
             f"--single {args.single}" + (" --ingress" if args.ingress else "") + (" --redis" if args.redis else "") +
             "`: FerretDB 1.24.2 (SQLite) on core 0, clients on core 1.", "",
             "| variant | messages/s (median) | per pair | FerretDB CPU µs/message (median) |", "|---|---|---|---|"]
    for v in variants:
        mine = [r for r in rows if r["variant"] == v]
        rates = [r["messages_per_s"] for r in mine]
        lines.append(f"| {v} | {statistics.median(rates):.0f} | " + ", ".join(f"{x:.0f}" for x in rates) +
                     f" | {statistics.median(r['ferretdb_cpu_us_per_message'] for r in mine):.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
