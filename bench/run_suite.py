#!/usr/bin/env python3
"""The standard benchmark suite (./dev bench): starts chatorbit pinned to core 0, runs
chatorbit-bench pinned to core 1, and writes bench/RESULTS.md with every figure, the
command that produced it, the date, the machine, and the `limit` reference measured in
the same run, then the load sweep (bench/sweep.py). Takes about 5 minutes on the 2-core
development machine."""
from __future__ import annotations

import datetime
import json
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "build" / "chatorbit"
BENCH = ROOT / "build" / "chatorbit-bench"
OUT_DIR = ROOT / "bench" / "results"  # each scenario's JSON and latency chart (SVG)
RESULTS = ROOT / "bench" / "RESULTS.md"
SERVER_ENV = {
    "CHATORBIT_THREADS": "1",  # one loop: the server is pinned to one core
    "CHATORBIT_RATE_LIMIT": "1000000/1s",
    "CHATORBIT_MOD_RATE_LIMIT": "1000000/1s",
    "CHATORBIT_MAX_CONNECTIONS_PER_IP": "1000000",
    "CHATORBIT_MAX_HTTP_CONNECTIONS_PER_IP": "1000000",
    "CHATORBIT_CONNECT_RATE_PER_IP": "1000000/1s",
    "LOG_LEVEL": "warn",
}


def nofile_hard() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


class Server:
    """One chatorbit process on a free port, pinned to `cpus`, with SERVER_ENV and then
    `env` on top. `data_dir`: a directory shared with other nodes (kept on stop());
    by default a fresh one of its own (removed on stop()). `nice` < 0 raises its
    scheduling weight, and its threads', against other work on a shared machine."""

    def __init__(self, binary: Path = SERVER, env: dict[str, str] | None = None, cpus: str = "0",
                 data_dir: str | None = None, nice: int = 0):
        self.own_dir = data_dir is None
        self.dir = data_dir or tempfile.mkdtemp(prefix="chatorbit-bench-")
        env = dict(os.environ, PORT="0", CHATORBIT_DATA_DIR=self.dir, CHATORBIT_BIND="127.0.0.1", **SERVER_ENV,
                   **(env or {}))
        env["LOG_LEVEL"] = "info"  # the listening line is at info; nothing else is logged per message
        hard = nofile_hard()
        prefix = ["nice", "-n", str(nice)] if nice else []
        self.proc = subprocess.Popen([*prefix, "taskset", "-c", cpus, "prlimit", f"--nofile={hard}:{hard}", str(binary)],
                                     env=env, stderr=subprocess.PIPE, text=True)
        self.port = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.port is None:
            line = self.proc.stderr.readline()
            if '"event":"listening"' in line:
                self.port = json.loads(line)["port"]
        if self.port is None:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("server did not start")
        # Keep draining stderr so the server never blocks on a full pipe.
        import threading
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def slug(name: str) -> str:
    return name.replace(" ", "-")


def run_bench(name: str, args: list[str], server: Server | None, out_dir: Path = OUT_DIR,
              more_pids: tuple[int, ...] = (), nice: int = 0) -> tuple[str, dict]:
    """Runs chatorbit-bench against `server`; `more_pids` (say, its Redis) are measured
    with it (their CPU is added to the server's and reported per process)."""
    out = out_dir / f"{slug(name)}.json"
    cmd = ["taskset", "-c", "1", str(BENCH), *args, "--json", "--quiet", "--out", str(out)]
    if server:
        pids = ",".join(str(p) for p in (server.proc.pid, *more_pids))
        cmd[4:4] = ["--url", f"ws://127.0.0.1:{server.port}", "--server-pid", pids]
    if nice:
        cmd[0:0] = ["nice", "-n", str(nice)]
    shown = " ".join(["chatorbit-bench", *args])
    print(f"[bench] {shown}", file=sys.stderr, flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"{shown} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return shown, json.loads(r.stdout)


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return (f"{os.cpu_count()} cores ({model}), {int(mem) // 1024 // 1024} GiB, Linux {platform.release()}, "
            f"open-file hard limit {nofile_hard()}")


def fmt(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


# The headline scenario is run several times: this VM's speed drifts by 10-30% within
# minutes, and one run can land in a slow stretch.
FANOUT_10K = "fanout 10k"
FANOUT_10K_RUNS = 3


def main() -> int:
    for p in (SERVER, BENCH):
        if not p.exists():
            print(f"{p} is missing: run ./dev build", file=sys.stderr)
            return 2
    OUT_DIR.mkdir(exist_ok=True)
    results = []

    # Three rounds of 1 s per probe, medians: one slow second of this machine's no longer
    # decides a probe (three 3 s probes a minute apart gave 691-930 ns per frame at 8 frames).
    shown, limit = run_bench("limit", ["limit", "--sockets", "1000", "--frame-bytes", "120", "--coalesce", "1,2,4,10,32",
                              "--duration", "1", "--rounds", "3", "--sender-cpu", "0", "--receiver-cpu", "1"], None)
    results.append(("limit", shown, limit))
    # The per-send cost grows with the number of sockets (the kernel's per-socket state
    # stops fitting in cache): a second probe near the size of the large runs.
    shown, limit = run_bench("limit 9k", ["limit", "--sockets", "9000", "--frame-bytes", "120", "--coalesce",
                                          "1,2,4,10,32", "--duration", "1", "--rounds", "3", "--sender-cpu", "0",
                                          "--receiver-cpu", "1"],
                             None)
    results.append(("limit 9k", shown, limit))

    max_idle = min(100_000, nofile_hard() - 200)
    fanout_10k = ["fanout", "--viewers", "10000", "--senders", "4", "--rate", "100", "--duration", "20"]
    scenarios = [
        ("fanout 2k", ["fanout", "--viewers", "2000", "--senders", "4", "--rate", "100", "--duration", "20"]),
        *[(f"{FANOUT_10K} run {i}", fanout_10k) for i in range(1, FANOUT_10K_RUNS + 1)],
        ("idle", ["idle", "--connections", str(max_idle)]),
        ("connect", ["connect", "--duration", "10"]),
        ("rooms", ["rooms", "--rooms", "1000", "--viewers", "18000", "--senders", "1000", "--rate", "2000",
                   "--duration", "20"]),
        ("ingress", ["ingress", "--rooms", "64", "--senders", "64", "--viewers", "64", "--window", "32",
                     "--duration", "15"]),
    ]
    for name, args in scenarios:
        server = Server()  # a fresh server each: memory figures need one
        try:
            shown, data = run_bench(name, args, server)
            results.append((name, shown, data))
        except Exception as e:  # noqa: BLE001 - a failed scenario is reported, not fatal
            results.append((name, " ".join(args), {"error": str(e)}))
        finally:
            server.stop()

    import sweep  # it imports this module: loaded only once this one is
    try:
        load_sweep = sweep.run([("chatorbit", SERVER, {})])
        sweep.write(load_sweep, OUT_DIR / "sweep")
    except Exception as e:  # noqa: BLE001 - reported, not fatal, like a failed scenario
        load_sweep = {"error": str(e)}

    (OUT_DIR / "results.json").write_text(json.dumps([{"name": n, "command": c, "result": d}
                                                      for n, c, d in results], indent=1))
    write_markdown(results, load_sweep)
    print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


def probe_at(probes: list[dict], k: float) -> float:
    """The probe's CPU per frame at k frames per write: the cost of one send() interpolated
    linearly in k between the measured coalescings (clamped to the measured range), / k."""
    points = sorted((p["coalesce"], p["cpu_ns_per_frame"] * p["coalesce"]) for p in probes)
    if k <= points[0][0]:
        return points[0][1] / k
    for (k0, c0), (k1, c1) in zip(points, points[1:]):
        if k <= k1:
            return (c0 + (c1 - c0) * (k - k0) / (k1 - k0)) / k
    return points[-1][1] / k


def coalescing(d: dict) -> tuple[float | None, str]:
    """A fan-out run's frames per write, and what they were counted as: the server's own
    count (chatorbit_ws_writes_total) where it gave one, else the viewers' frames per
    read, which stand for it (a read may join several writes)."""
    if d.get("frames_per_write"):
        return d["frames_per_write"], "write"
    return d.get("frames_per_read"), "read"


def probe_for(d: dict, limits: list[dict]) -> tuple[float, int] | None:
    """For fan-out scenarios: the limit probe's CPU per frame at the scenario's coalescing
    (coalescing()), from the probe whose socket count is nearest the scenario's
    connection count; with that count."""
    fpr, ns = coalescing(d)[0], d.get("server_cpu_ns_per_delivery")
    if d.get("scenario") not in ("fanout", "rooms") or not fpr or not ns:
        return None
    conns = (d.get("viewers") or 0) + (d.get("senders") or 0)
    usable = [x for x in limits if any(p.get("mode") == "send" for p in x.get("limit", []))]
    if not usable or not conns:
        return None
    ref = min(usable, key=lambda x: abs(math.log(x["sockets"] / conns)))
    return probe_at([p for p in ref["limit"] if p.get("mode") == "send"], fpr), ref["sockets"]


def probe_beside(d: dict, limits: list[dict]) -> str | None:
    """The server's CPU per delivery next to the probe at the same coalescing."""
    found = probe_for(d, limits)
    if not found:
        return None
    probe, sockets = found
    (fpr, per), ns = coalescing(d), d["server_cpu_ns_per_delivery"]
    return (f"Server CPU per delivery {ns:,.0f} ns at {fpr:.1f} frames per {per}; the `limit` probe of this run "
            f"({sockets:,} sockets) at {fpr:.1f} frames per send: {probe:,.0f} ns per frame: "
            f"**{ns / probe:.2f}x** the probe.")


def repeated_runs(results, limits) -> list[str]:
    """A summary of the repeated headline runs, with the median p99."""
    runs = [(n, d) for n, _, d in results if n.startswith(FANOUT_10K) and "error" not in d]
    if not runs:
        return []
    lines = [f"## {FANOUT_10K}: its {len(runs)} runs", "",
             "| run | deliveries/s | lost | p50 ms | p99 ms | max ms | CPU ns per delivery | frames per write | "
             "frames per read | x probe |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, d in runs:
        ns = d.get("server_cpu_ns_per_delivery")
        found = probe_for(d, limits)
        ratio = f"{ns / found[0]:.2f}" if found else "–"
        lines.append(f"| {name[len(FANOUT_10K) + 1:]} | {fmt(d.get('deliveries_per_s'), 0)} | {fmt(d.get('lost'))} | "
                     f"{fmt(d.get('p50_ms'), 1)} | {fmt(d.get('p99_ms'), 1)} | {fmt(d.get('max_ms'), 1)} | "
                     f"{fmt(ns, 0)} | {fmt(d.get('frames_per_write'), 1)} | {fmt(d.get('frames_per_read'), 1)} | "
                     f"{ratio} |")
    p99s = sorted(d["p99_ms"] for _, d in runs if d.get("p99_ms") is not None)
    if p99s:
        lines += ["", f"Median p99 of the runs: {p99s[len(p99s) // 2]:,.1f} ms."]
    return lines + [""]


# The studies: measurements other scripts make in alternating pairs (pairs.py, sweep.py,
# join_storm.py, multinode.py, redis_publish_pairs.py, mongo_inserts.py), written up by
# hand in bench/studies/, one file per question. The suite does not rewrite them; its
# report ends with where they are.
STUDIES = [
    ("redis.md", "Redis engine: publications per second, one node and several on one Redis"),
    ("mongodb.md", "MongoDB store: appends and ingress on FerretDB beside SQLite"),
    ("gateway.md", "Gateway: fan-out through it against direct connections"),
    ("coalescing.md", "Coalescing that follows the load: the pacer, the load sweep, join storms"),
    ("http-metrics.md", "Counting a request before its response leaves: 10,000-viewer fan-out before and after"),
]


def studies_section() -> list[str]:
    lines = ["## Studies", "", "Measured apart from this suite, each in alternating pairs; "
             "the commands are in each file.", ""]
    return lines + [f"- [{name}](studies/{name}): {what}" for name, what in STUDIES] + [""]


def sweep_section(load_sweep: dict) -> list[str]:
    import sweep
    lines = ["## sweep", "",
             f"`bench/sweep.py`: one room, 4 senders, {sweep.DURATION_S} s per load, a fresh server each; offered "
             "load = viewers x messages/s, from 10 k to 1 M deliveries/s. `x probe`: CPU per delivery over the "
             "`limit` probe (the nearer socket count) at the run's frames per write (the server's own count; "
             "frames per read where it has none).", ""]
    if "error" in load_sweep:
        return lines + ["Failed: " + load_sweep["error"].splitlines()[0], ""]
    return lines + ["Latency and CPU against load: [results/sweep.svg](results/sweep.svg)", "",
                    *sweep.markdown(load_sweep), ""]


def write_markdown(results, load_sweep: dict | None = None):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark results",
        "",
        f"Written by `./dev bench` (bench/run_suite.py) on {now}.",
        f"Machine: {machine()}.",
        "Server: `build/chatorbit`, one event loop, pinned to core 0 (`taskset -c 0`), with the",
        "limits of bench/README.md raised; load: `build/chatorbit-bench`, pinned to core 1.",
        "Each scenario ran against a fresh server. Figures are from this run only.",
        "",
    ]
    limits = [d for n, _, d in results if n.startswith("limit")]
    lines += repeated_runs(results, limits)
    for name, command, d in results:
        lines += [f"## {name}", "", f"`{command}`", ""]
        if "error" in d:
            lines += ["Failed: " + d["error"].splitlines()[0], ""]
            continue
        if name.startswith("limit"):
            lines += [f"{d.get('sockets')} loopback sockets, {d.get('frame_bytes')}-byte frames; CPU time of the "
                      "writing thread per frame: the median of the rounds, and their range.", "",
                      "| frames per write | call | CPU ns per frame | lowest - highest | rounds | wall ns per frame |",
                      "|---|---|---|---|---|---|"]
            for probe in d.get("limit", []):
                lines.append(f"| {probe.get('coalesce')} | {probe.get('mode')} | {fmt(probe.get('cpu_ns_per_frame'), 0)} | "
                             f"{fmt(probe.get('cpu_ns_per_frame_min'), 0)} - {fmt(probe.get('cpu_ns_per_frame_max'), 0)} | "
                             f"{fmt(probe.get('rounds'))} | {fmt(probe.get('ns_per_frame'), 0)} |")
            lines += ["", "```json", json.dumps(d), "```", ""]
            continue
        chart = OUT_DIR / f"{slug(name)}.svg"
        if chart.exists():
            lines += [f"Latency distribution: [{chart.relative_to(RESULTS.parent)}]"
                      f"({chart.relative_to(RESULTS.parent)})", ""]
        keys = ["messages_per_s", "stored", "deliveries_per_s", "p50_ms", "p99_ms", "p999_ms", "max_ms", "lost", "duplicated", "reordered",
                "server_cpu_ns_per_delivery", "softirq_cpu_ns_per_delivery", "server_cpu_percent", "frames_per_write",
                "frames_per_read",
                "rss_bytes_per_connection",
                "connects_per_s", "connections"]
        beside = probe_beside(d, limits)
        if beside:
            lines += [beside, ""]
        lines += ["| figure | value |", "|---|---|"]
        for k in keys:
            if k in d and d[k] is not None:
                lines.append(f"| {k} | {fmt(d[k])} |")
        lines += ["", "<details><summary>full JSON</summary>", "", "```json", json.dumps(d), "```", "", "</details>",
                  ""]
    if load_sweep is not None:
        lines += sweep_section(load_sweep)
    lines += studies_section()
    RESULTS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
