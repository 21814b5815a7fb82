#!/usr/bin/env python3
"""Schemathesis against the real binary: does docs/openapi.json tell the truth?

Starts the release binary (CHATORBIT_BIN, default build/chatorbit) on a free port with
a temporary data directory, registers an admin (CHATORBIT_ADMINS) and a normal user,
gives the server some state worth reading back (a chat message, a room ban, a
moderation log entry), then runs `schemathesis run` against /swagger/doc.json twice:
once anonymous and once with `Authorization: Bearer <admin token>`. Every default
check of schemathesis 4 is on (server errors, status codes, content types, response
schemas and headers, negative data rejected, positive data accepted, the stateful
checks...). Each pass is bounded by --max-examples per operation and --max-time, and
seeded, so a failure can be replayed with the same seed.

Exits non-zero if either pass reports a failure or an error. Everything it writes
(server data, schemathesis reports, Hypothesis' example database) goes to a temporary
directory that is removed afterwards unless --keep is given.

    .venv/bin/python tests/schemathesis/run.py [--max-examples N] [--max-time S] [--seed N]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "system"))

from conftest import BINARY, Api, Server, auth  # noqa: E402
from wsclient import ChatClient  # noqa: E402

ADMIN_EMAIL = "schemathesis-admin@example.com"


def seed_state(api: Api) -> tuple[str, str]:
    """An admin and a normal user, with something for the read routes to return."""
    api.register(email=ADMIN_EMAIL, username="st-admin")
    admin = api.login(ADMIN_EMAIL)
    user_token, user = api.new_user(username="st-user")
    # A stored message, so history answers with real ChatMessage items.
    with ChatClient(api.server, user_token, "general", v=2) as c:
        c.send_message("hello from the schemathesis seed")
        c.recv_json()  # the welcome or our own echo: either means the server took it
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not api.get("/chat/history/general").json():
        time.sleep(0.05)
    # A room ban (timed, so it is in force) and with it a moderation log entry.
    r = api.post("/chat/rooms/lobby/bans", headers=auth(admin),
                 json={"user_id": user["id"], "duration_seconds": 3600, "reason": "seed"})
    assert r.status_code == 200, r.text
    return admin, user_token


def run_pass(name: str, url: str, workdir: Path, args: argparse.Namespace, extra: list[str]) -> dict:
    """One `schemathesis run`; returns its counts from the NDJSON event stream."""
    report = workdir / f"{name}.ndjson"
    cmd = [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(HERE / "schemathesis.toml"), "run", f"{url}/swagger/doc.json",
        "--url", url,
        "--max-examples", str(args.max_examples),
        "--max-time", str(args.max_time),
        "--seed", str(args.seed),
        "--workers", str(args.workers),
        "--generation-database", "none",
        "--request-timeout", "10",
        "--report", "ndjson", "--report-ndjson-path", str(report),
        "--no-color",
        *extra,
    ]
    shown = [c if not c.startswith("Authorization:") else "Authorization: Bearer <admin token>" for c in cmd]
    print(f"\n=== schemathesis pass: {name}\n$ {' '.join(shown)}", flush=True)
    started = time.monotonic()
    # cwd is the temporary directory so that nothing schemathesis writes lands in the repo.
    code = subprocess.call(cmd, cwd=workdir, env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": str(HERE / "hooks.py")})
    elapsed = time.monotonic() - started
    requests = count_requests(report)
    print(f"=== {name}: exit {code}, {requests} requests in {elapsed:.0f}s", flush=True)
    return {"name": name, "code": code, "requests": requests, "seconds": elapsed}


def count_requests(report: Path) -> int:
    """HTTP requests sent, counted from the interactions recorded in the NDJSON report."""
    n = 0
    if not report.exists():
        return 0
    with report.open() as f:
        for line in f:
            if '"interactions"' not in line and '"recorder"' not in line:
                continue
            n += _count(json.loads(line))
    return n


def _count(obj) -> int:
    # The report nests a ScenarioRecorder per scenario; each interaction is one request.
    if isinstance(obj, dict):
        if "interactions" in obj and isinstance(obj["interactions"], dict):
            return len(obj["interactions"])
        return sum(_count(v) for v in obj.values())
    if isinstance(obj, list):
        return sum(_count(v) for v in obj)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max-examples", type=int, default=int(os.environ.get("ST_MAX_EXAMPLES", 50)))
    p.add_argument("--max-time", type=int, default=int(os.environ.get("ST_MAX_TIME", 75)),
                   help="seconds per pass")
    p.add_argument("--seed", type=int, default=int(os.environ.get("ST_SEED", 20261201)))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--only", choices=["anonymous", "admin"], help="run one pass")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (reports, server log)")
    args = p.parse_args()

    if not BINARY.exists():
        print(f"{BINARY} is missing: run ./dev build", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="chatorbit-schemathesis-"))
    (workdir / "data").mkdir()
    server = Server({"CHATORBIT_ADMINS": ADMIN_EMAIL}, data_dir=str(workdir / "data")).start()
    results = []
    started = time.monotonic()
    try:
        api = Api(server)
        admin, _ = seed_state(api)
        if args.only in (None, "anonymous"):
            results.append(run_pass("anonymous", server.url, workdir, args, []))
        if args.only in (None, "admin"):
            # POST /logout is left to the anonymous pass: it would revoke the admin's token.
            results.append(run_pass("admin", server.url, workdir, args,
                                    ["--header", f"Authorization: Bearer {admin}", "--exclude-path", "/logout"]))
    finally:
        code = server.stop()
        (workdir / "server.log").write_text("\n".join(server.logs) + "\n")
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    total = time.monotonic() - started
    print("\n=== schemathesis summary")
    for r in results:
        print(f"  {r['name']:<10} exit {r['code']}  {r['requests']:>6} requests  {r['seconds']:.0f}s")
    print(f"  total {total:.0f}s; server exited with {code}")
    if code not in (0, None):
        print("chatorbit did not exit cleanly", file=sys.stderr)
        return 1
    return 0 if results and all(r["code"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
