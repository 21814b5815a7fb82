"""Several chatorbit nodes on one Redis, for tests/system/test_redis_nodes.py.

`start_nodes` starts N nodes that make one chat: the same Redis (standalone or
cluster), key prefix, JWT secret and SQLite file. `Recorder` is a WebSocket whose
frames a background thread reads as they come, each stamped with its arrival time, so
that a test can look at several connections at once and time a close. `Poster` posts
v2 messages with a `cid` one at a time and resends each one, with the same cid, until
it is acknowledged: what a client does when the server cannot take its message."""
from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Callable

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from conftest import SANITIZED, Api, Server
from wsclient import TIMEOUT, ChatClient, close_ws, ws_url

JWT_SECRET = "redis-nodes-system-test-secret-0123456789"
ADMIN_EMAIL = "admin@example.com"
# Generous but bounded waits; the happy path never waits this long.
SLOW = 3.0 if SANITIZED else 1.0


def redis_env(kind: str, redis) -> dict[str, str]:
    """The environment that points a node at `redis`: a RedisServer (REDIS_ADDR) or a
    RedisCluster (CHATORBIT_REDIS_CLUSTER)."""
    if kind == "cluster":
        return {"CHATORBIT_REDIS_CLUSTER": redis.seeds}
    return {"REDIS_ADDR": redis.addr}


def start_nodes(backend: dict[str, str], data_dir: str, count: int = 3,
                env: dict[str, str] | None = None, started: list[Server] | None = None) -> list[Server]:
    """Starts `count` nodes sharing `backend`, one fresh key prefix and the SQLite file in
    `data_dir`. The first one starts alone (it creates the schema), the others side by
    side. Every node started is appended to `started` as soon as it exists, so that the
    caller's finalizer stops it even when a later one fails to start."""
    started = [] if started is None else started
    common = {
        "JWT_SECRET": JWT_SECRET,
        "CHATORBIT_ADMINS": ADMIN_EMAIL,
        "CHATORBIT_REDIS_KEY_PREFIX": f"t{uuid.uuid4().hex[:10]}:",
        "CHATORBIT_RATE_LIMIT": "100000/1s",
        "CHATORBIT_LOGIN_IP_MAX_FAILURES": "1000",
        **backend,
        **(env or {}),
    }
    nodes = [Server(dict(common), data_dir=data_dir) for _ in range(count)]
    started.extend(nodes)
    nodes[0].start()
    errors: list[BaseException] = []

    def start(node: Server) -> None:
        try:
            node.start()
        except BaseException as e:  # re-raised below, on the test's thread
            errors.append(e)

    threads = [threading.Thread(target=start, args=(n,)) for n in nodes[1:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return nodes


def add_node(like: Server, started: list[Server]) -> Server:
    """One more node of the same chat as `like` (same Redis, prefix, secret and data)."""
    node = Server(dict(like.env), data_dir=like.data_dir)
    started.append(node)
    return node.start()


def stop_nodes(nodes: list[Server]) -> list[str]:
    """Stops every node; returns a description of each that did not exit with 0."""
    bad = []
    for n in nodes:
        code = n.stop()
        if code not in (0, None):
            bad.append(f"node :{n.port} exited with {code}:\n" + "\n".join(n.logs[-40:]))
    return bad


def handshake_status(node, token: str | None, room: str) -> int:
    """101 if the handshake is accepted (the connection is closed again), else its status."""
    try:
        ws = connect(ws_url(node, token, room), open_timeout=TIMEOUT, compression=None)
    except InvalidStatus as e:
        return e.response.status_code
    close_ws(ws)
    return 101


def close_all(clients) -> None:
    for c in clients:
        c.close()


def is_message(frame: dict) -> bool:
    """A chat message, v1 (no type) or v2 (type message)."""
    return frame.get("type", "message") == "message" and "content" in frame


class Recorder:
    """A chat connection read by a background thread. `frames` holds (arrival time,
    frame) pairs; `closed` becomes (time, close code) when the server closes it."""

    def __init__(self, server: Server, token: str | None, room: str, v: int = 2, **kw):
        self.server = server
        self.client = ChatClient(server, token, room, v=v, **kw)
        self.frames: list[tuple[float, dict]] = []
        self.closed: tuple[float, int | None] | None = None
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                data = self.client.ws.recv()
            except ConnectionClosed as e:
                with self._cv:
                    self.closed = (time.monotonic(), e.rcvd.code if e.rcvd is not None else None)
                    self._cv.notify_all()
                return
            except Exception:  # noqa: BLE001 - any other end of the connection
                with self._cv:
                    self.closed = (time.monotonic(), None)
                    self._cv.notify_all()
                return
            now = time.monotonic()
            frame = json.loads(data) if isinstance(data, str) else {"binary": data}
            with self._cv:
                self.frames.append((now, frame))
                self._cv.notify_all()

    def wait(self, predicate: Callable[["Recorder"], bool], timeout: float) -> bool:
        """Waits until predicate(self) holds (checked at each frame and at the close)."""
        with self._cv:
            return self._cv.wait_for(lambda: predicate(self), timeout)

    def wait_frame(self, match: Callable[[dict], bool], timeout: float) -> dict | None:
        found: list[dict] = []

        def seen(_):
            found[:] = [f for _, f in self.frames if match(f)][:1]
            return bool(found) or self.closed is not None
        self.wait(seen, timeout)
        return found[0] if found else None

    def wait_welcome(self, timeout: float) -> dict:
        w = self.wait_frame(lambda f: f.get("type") == "welcome", timeout)
        assert w is not None, f"no welcome on :{self.server.port}: {self.snapshot()}"
        return w

    def snapshot(self) -> list[dict]:
        with self._cv:
            return [f for _, f in self.frames]

    def messages(self) -> list[dict]:
        return [f for f in self.snapshot() if is_message(f)]

    def close(self) -> None:
        try:
            self.client.ws.close()
        except Exception:  # noqa: BLE001
            pass
        self._thread.join(5)


class _Quiet(Exception):
    """Nothing more arrived (Poster's final read)."""


class Poster(threading.Thread):
    """Posts `<name>-<i>` (content and cid alike) on one v2 connection, one message at a
    time, `pace` seconds apart, until stop() (and the message in hand is acknowledged)
    or `deadline`. A message that is refused (any error frame naming its cid or no cid)
    or not answered within `reply_wait` is sent again with the same cid after `retry`
    seconds: the server must store it once whatever happened to the earlier tries.

    Records, by cid: `acks` (every ack frame received, with its arrival time) and
    `refusals` (error frames, with time); `unavailable` holds the cids whose ack was
    followed by an `unavailable` error (stored, not delivered live)."""

    def __init__(self, server: Server, token: str, room: str, name: str, *, pace: float = 0.02,
                 reply_wait: float = 3.0, retry: float = 0.05, deadline: float = 60.0):
        super().__init__(daemon=True)
        self.client = ChatClient(server, token, room, v=2)
        self.name_ = name
        self.pace, self.reply_wait, self.retry = pace, reply_wait, retry
        self.deadline = time.monotonic() + deadline
        self.acks: dict[str, list[tuple[float, dict]]] = {}
        self.sent: list[tuple[float, str]] = []   # every try: (time, cid)
        self.refusals: list[tuple[float, dict]] = []
        self.timeouts: list[tuple[float, str]] = []
        self.unavailable: set[str] = set()
        self.cids: list[str] = []                  # cids in the order they were first sent
        self.failure: BaseException | None = None
        self._halt = threading.Event()
        self._mu = threading.Lock()

    def stop(self) -> None:
        self._halt.set()

    def acked(self) -> dict[str, dict]:
        """cid -> its first ack."""
        with self._mu:
            return {cid: acks[0][1] for cid, acks in self.acks.items()}

    def ack_times(self) -> list[tuple[float, str]]:
        with self._mu:
            return sorted((t, cid) for cid, acks in self.acks.items() for t, _ in acks)

    def run(self) -> None:
        try:
            self._post_all()
        except BaseException as e:  # reported by the test thread
            self.failure = e
        finally:
            self.client.close()

    def _post_all(self) -> None:
        self.client.recv_type("welcome")
        i = 0
        while not self._halt.is_set() and time.monotonic() < self.deadline:
            cid = f"{self.name_}-{i}"
            self.cids.append(cid)
            tries = 0
            while time.monotonic() < self.deadline:
                with self._mu:
                    self.sent.append((time.monotonic(), cid))
                self.client.send_message(cid, cid=cid, resend=tries > 0)
                tries += 1
                if self._await(cid):
                    break
                time.sleep(self.retry)
            i += 1
            time.sleep(self.pace)
        # An `unavailable` error follows its ack at once: read what is still on its way.
        try:
            while True:
                self._await("")
        except _Quiet:
            pass

    def _await(self, cid: str) -> bool:
        """True once `cid` is acknowledged; False on a refusal or after reply_wait."""
        end = time.monotonic() + (self.reply_wait if cid else 0.3)
        while True:
            left = end - time.monotonic()
            if left <= 0 and not cid:
                raise _Quiet
            if left <= 0:
                with self._mu:
                    self.timeouts.append((time.monotonic(), cid))
                return False
            try:
                f = self.client.recv_json(left)
            except TimeoutError:
                continue
            now = time.monotonic()
            kind = f.get("type")
            if kind == "ack":
                with self._mu:
                    self.acks.setdefault(f["cid"], []).append((now, f))
                if f["cid"] == cid:
                    return True
            elif kind == "error":
                with self._mu:
                    self.refusals.append((now, f))
                    if f.get("code") == "unavailable" and f.get("cid") in self.acks:
                        self.unavailable.add(f["cid"])
                        continue
                if cid and f.get("cid") in (cid, None):
                    return False


def all_history(api: Api, room: str, page: int = 100) -> list[dict]:
    """The room's whole history through GET /chat/history/<room>?limit=&before=, oldest
    first. Checks the paging on the way: each page holds at most `page` messages,
    newest first, every one below the `before` asked."""
    out: list[dict] = []
    before = None
    for _ in range(10_000):
        params = {"limit": page} if before is None else {"limit": page, "before": before}
        r = api.get(f"/chat/history/{room}", params=params)
        assert r.status_code == 200, r.text
        rows = r.json()
        assert len(rows) <= page, (len(rows), page)
        seqs = [m["seq"] for m in rows]
        assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs), f"page not newest first: {seqs}"
        if before is not None:
            assert not seqs or seqs[0] < before, (before, seqs[:3])
        out.extend(rows)
        if len(rows) < page:
            break
        before = seqs[-1]
    out.reverse()
    return out


# What the engine and the hub log about Redis going away and coming back.
FAULT_EVENTS = ("redis_connection_lost", "redis_connect_failed", "redis_resubscribed", "redis_subscriber_error",
                "publication_failed", "publish_failed", "broker_resubscribed", "gap_filled", "refill_failed",
                "sequence_gap_skipped", "publication_dropped", "message_batch_failed", "ws_frame_failed")


def fault_log(nodes: list[Server], names: tuple[str, ...] = FAULT_EVENTS, per_node: int = 30) -> str:
    """The nodes' log lines about Redis faults, for a failure message; a run of lines of
    one event is shown as its first and last line and how many came between."""
    out = []
    for label, n in zip("ABCDEFGH", nodes):
        lines = [line for line in list(n.logs) if any(f'"event":"{e}"' in line for e in names)]
        runs: list[list[str]] = []
        for line in lines:
            event = line.split('"event":"', 1)[1].split('"', 1)[0]
            if runs and runs[-1][0].split('"event":"', 1)[1].startswith(event + '"'):
                runs[-1].append(line)
            else:
                runs.append([line])
        shown = []
        for run in runs:
            shown.append(run[0])
            if len(run) > 2:
                shown.append(f"    ... {len(run) - 2} more like it")
            if len(run) > 1:
                shown.append(run[-1])
        out.append(f"--- node {label} :{n.port} ({len(lines)} lines) ---")
        out.extend(shown[:per_node])
        if len(shown) > per_node:
            out.append(f"... {len(shown) - per_node} more")
    return "\n".join(out)
