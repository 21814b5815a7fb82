"""The split deployment, as processes: auth, user, two chat nodes and the gateway, on one
Redis and one MongoDB-wire server (FerretDB), every client talking to the gateway alone.

The original flow (register, login, a room, two clients chatting across the two chat
nodes, history, presence, a ban, logout) runs end to end; then one chat node is stopped
(SIGTERM: its viewers are told 1012 and come back through the gateway to the other) and
one is killed (SIGKILL: the same within 5 s), with every acknowledged message delivered
to every viewer once, in order."""
from __future__ import annotations

import json
import os
import signal
import socket
import struct
import threading
import time
import uuid

import pytest
import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from conftest import SANITIZED, Api, Server, auth, wait_until
from wsclient import ChatClient, RawWs, admin_token, flood_past_a_stalled_viewer, new_moderator, unique_room, ws_url

SECRET = "gateway-system-test-secret-0123456789abcdef"
ADMIN = "admin@example.com"
SLOW = 3.0 if SANITIZED else 1.0


class Deployment:
    """auth, user, chat nodes and a gateway, each its own chatorbit process."""

    def __init__(self, redis, ferretdb, data_dir: str, chat_nodes: int = 2, gateway_env=None, node_env=None):
        database = "gw_" + uuid.uuid4().hex[:10]
        self.common = {
            "JWT_SECRET": SECRET,
            "REDIS_ADDR": redis.addr,
            "CHATORBIT_REDIS_KEY_PREFIX": f"g{uuid.uuid4().hex[:10]}:",
            "MONGO_URL": ferretdb.url.rstrip("/") + "/" + database,
            "CHATORBIT_ADMINS": ADMIN,
            "CHATORBIT_RATE_LIMIT": "100000/1s",
            # The services believe the gateway's X-Forwarded-For (it is on loopback).
            "CHATORBIT_TRUSTED_PROXIES": "127.0.0.1",
        }
        self.data_dir = data_dir
        self.processes: list[Server] = []
        self.auth = self._start("auth")
        self.user = self._start("user")
        self.chat = [self._start("chat", node_env) for _ in range(chat_nodes)]
        env = {
            "JWT_SECRET": SECRET,
            "REDIS_ADDR": redis.addr,
            "CHATORBIT_REDIS_KEY_PREFIX": self.common["CHATORBIT_REDIS_KEY_PREFIX"],
            "CHATORBIT_ROLE": "gateway",
            "CHATORBIT_AUTH_URL": self.auth.url,
            "CHATORBIT_USER_URL": self.user.url,
            "CHATORBIT_CHAT_URLS": ",".join(f"127.0.0.1:{n.port}" for n in self.chat),
            "CHATORBIT_HEALTH_INTERVAL_MS": "200",
            # Behind a load balancer on loopback: its X-Forwarded-For names the client.
            "CHATORBIT_TRUSTED_PROXIES": "127.0.0.1",
            **(gateway_env or {}),
        }
        self.gateway = Server(env, data_dir=os.path.join(data_dir, "gateway"))
        self.processes.append(self.gateway)
        self.gateway.start()

    def _start(self, role: str, extra=None) -> Server:
        env = {**self.common, "CHATORBIT_ROLE": role, **(extra or {})}
        # Every service keeps its own data directory (the JWT secret is given, the store
        # is MongoDB): nothing is shared but Redis and the database.
        server = Server(env, data_dir=os.path.join(self.data_dir, f"{role}-{len(self.processes)}"))
        self.processes.append(server)
        return server.start()

    def metric(self, server: Server, name: str) -> float:
        text = requests.get(server.url + "/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not in /metrics of :{server.port}")

    def healthy_nodes(self) -> float:
        return self.metric(self.gateway, "chatorbit_gateway_chat_nodes_healthy")

    def stop(self) -> list[str]:
        bad = []
        for p in reversed(self.processes):
            code = p.stop()
            if code not in (0, None, -signal.SIGKILL):
                # A sanitizer's report, without its shadow-memory dump.
                bad.append(f":{p.port} exited with {code}:\n" + "\n".join(
                    line for line in p.logs[-300:] if not line.startswith("  0x"))[:8000])
        return bad


@pytest.fixture
def deployment(redis_server, ferretdb_server, tmp_path):
    made: list[Deployment] = []

    def make(**kw) -> Deployment:
        made.append(Deployment(redis_server, ferretdb_server, str(tmp_path), **kw))
        return made[-1]

    yield make
    bad = [b for d in made for b in d.stop()]
    assert not bad, "\n\n".join(bad)


def sessions_on(d: Deployment) -> list[float]:
    return [d.metric(n, "chatorbit_ws_sessions") if n.proc.poll() is None else 0.0 for n in d.chat]


# --- the original flow --------------------------------------------------------------


def gateway_loops(d: Deployment) -> int:
    return int(d.gateway.env["CHATORBIT_THREADS"])


def links_of(d: Deployment) -> tuple[float, list[float]]:
    """The gateway's open links, and each chat node's."""
    return d.metric(d.gateway, "chatorbit_gateway_links"), [d.metric(n, "chatorbit_links") for n in d.chat]


@pytest.mark.parametrize("carried_by", ["links", "tunnels"])
def test_the_original_flow_runs_through_the_gateway_alone(deployment, carried_by):
    # Viewers ride the gateway's links to the nodes (CHATORBIT_GATEWAY_LINKS, 2 per loop
    # and node), or each gets a tunnel of its own: the flow is the same either way.
    d = deployment(gateway_env={"CHATORBIT_GATEWAY_LINKS": "0"} if carried_by == "tunnels" else None)
    if carried_by == "links":
        assert wait_until(lambda: links_of(d)[0] == 2 * 2 * gateway_loops(d), timeout=5), links_of(d)
    api = Api(d.gateway)
    # Register and log in, as the original's README does.
    r = api.post("/register", json={"email": "alice@example.com", "username": "alice", "password": "12345678"})
    assert (r.status_code, r.json()) == (200, {"message": "Registration successful"})
    alice = api.login("alice@example.com", "12345678")
    bob, bob_me = api.new_user(username="bob")
    room = unique_room("gw")
    r = api.post("/chat/rooms", json={"room_id": room})
    assert (r.status_code, r.json()) == (200, {"room_id": room})

    # Two clients, one on each chat node (WebSocket by fewest connections).
    a = ChatClient(d.gateway, alice, room, v=2)
    a.wait_welcome()
    b = ChatClient(d.gateway, bob, room, v=2)
    b.wait_welcome()
    assert sessions_on(d) == [1.0, 1.0]
    gateway_links, node_links = links_of(d)
    if carried_by == "links":
        # Each of the gateway's loops keeps two to each node.
        assert node_links == [2 * gateway_loops(d)] * 2 and gateway_links == sum(node_links), (gateway_links, node_links)
    else:
        assert (gateway_links, node_links) == (0, [0, 0])
    assert d.metric(d.gateway, "chatorbit_gateway_tunnels") == 2
    a.say("hello from alice", cid="a1")
    assert b.recv_message(content="hello from alice")["username"] == "alice"
    b.say("hello from bob", cid="b1")
    assert a.recv_message(content="hello from bob")["username"] == "bob"

    history = api.get(f"/chat/history/{room}")
    assert history.status_code == 200
    assert sorted(m["content"] for m in history.json()) == ["hello from alice", "hello from bob"]
    presence = api.get(f"/chat/rooms/{room}/presence")
    assert presence.status_code == 200, presence.text
    assert presence.json()["online"] == 2, presence.json()

    # A moderator bans bob: his connection (on the other node) is closed with 4003.
    mod, _ = new_moderator(api, ADMIN)
    r = api.post(f"/chat/rooms/{room}/bans", headers=auth(mod), json={"user_id": bob_me["id"], "reason": "spam"})
    assert r.status_code == 200, r.text
    b.expect_close(4003)
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(d.gateway, bob, room), open_timeout=5, compression=None)
    assert refused.value.response.status_code == 403

    # Logout: the token is refused at the edge from then on (the gateway follows the
    # account events), and by the service behind it.
    assert api.get("/users/me", headers=auth(alice)).status_code == 200
    r = api.post("/logout", headers=auth(alice))
    assert r.status_code == 200, r.text
    assert wait_until(lambda: api.get("/users/me", headers=auth(alice)).status_code == 401, timeout=5)
    a.close()


def test_a_node_that_does_not_trust_the_gateway_refuses_its_links_and_its_viewers_get_tunnels(deployment):
    d = deployment(chat_nodes=1, node_env={"CHATORBIT_TRUSTED_PROXIES": ""})
    api = Api(d.gateway)
    alice, _ = api.new_user(username="alice")
    room = unique_room("gwtrust")
    assert api.post("/chat/rooms", json={"room_id": room}).status_code == 200
    a = ChatClient(d.gateway, alice, room, v=2)
    a.wait_welcome()
    assert a.say("still here", cid="t1")["username"] == "alice"
    assert links_of(d) == (0, [0])
    assert d.metric(d.gateway, "chatorbit_gateway_tunnels") == 1
    assert any("link_refused" in line for line in d.gateway.logs), "the gateway said nothing of the refusal"
    a.close()


def test_a_stalled_viewer_on_a_link_is_dropped_with_4008_by_its_node_and_the_others_get_everything(deployment):
    # The node's own slow-viewer rule decides behind the gateway too: the gateway holds at
    # most a credit window for the stalled viewer, then the node's backlog bound (the
    # default 1 MiB) closes it, while the viewer beside it on the same link gets every
    # message. The bound must exceed a burst (10 messages, 500 KB) less the 64 KiB window:
    # behind a link a healthy viewer's burst waits in the node's queue, not in a kernel
    # buffer, so a bound of a few KiB would drop the sender too.
    chars = 50_000
    d = deployment(chat_nodes=1, node_env={"CHATORBIT_MAX_MESSAGE_CHARS": str(chars),
                                           "CHATORBIT_PING_INTERVAL": "300s", "CHATORBIT_IDLE_DROP": "600s"})
    assert wait_until(lambda: links_of(d)[0] == 2 * gateway_loops(d), timeout=5), links_of(d)
    api = Api(d.gateway)
    token, _ = api.new_user(username="sender")
    room = unique_room("gwslow")
    assert api.post("/chat/rooms", json={"room_id": room}).status_code == 200
    # 10 MB: more than the node's bound, the window, and the gateway's kernel send buffer
    # to the stalled viewer (which grows to 4 MB) together.
    flood_past_a_stalled_viewer(d.gateway, token, room, chars, messages=200)
    assert links_of(d)[0] == 2 * gateway_loops(d), "a viewer's end is not its link's"


@pytest.mark.parametrize("record", ["shut", "short credit", "second open"])
def test_a_gateway_that_breaks_the_link_protocol_loses_its_link(start_server, record):
    # A record the node never takes from a gateway (shut is node to gateway), a credit
    # that is not 4 bytes, or a second open of a live session: the gateway is broken,
    # and the node closes the link rather than guess.
    node = start_server({"CHATORBIT_TRUSTED_PROXIES": "127.0.0.1"})

    def rec(kind: int, session: int, payload: bytes = b"") -> bytes:
        return struct.pack("!IBQ", 9 + len(payload), kind, session) + payload

    upgrade = b"GET /ws/chat?room_id=broken HTTP/1.1\r\nHost: n\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    bad = {"shut": rec(5, 1), "short credit": rec(4, 1, b"\0\1"),
           "second open": rec(1, 1, upgrade) + rec(1, 1, upgrade)}[record]
    with socket.create_connection(("127.0.0.1", node.port), timeout=5) as s:
        s.sendall(b"GET /internal/link HTTP/1.1\r\nHost: n\r\nUpgrade: chatorbit-link\r\nConnection: Upgrade\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            assert chunk, head
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        s.sendall(bad)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if not s.recv(65536):
                    break  # the node closed the link
            except ConnectionResetError:
                break
        else:
            raise AssertionError("the node kept a link that broke the protocol")
    assert wait_until(lambda: any("link_broken" in line for line in node.logs), timeout=5), node.logs[-5:]


def test_the_edge_answers_for_the_services(deployment):
    d = deployment(gateway_env={"CHATORBIT_UPSTREAM_TIMEOUT": "2s"})
    api = Api(d.gateway)
    token, _ = api.new_user()

    # A path no service has, and a bad token on a route that needs a caller, never
    # leave the gateway.
    r = api.get("/nowhere", headers={"X-Request-Id": "edge-404-check"})
    assert (r.status_code, r.json()) == (404, {"error": "not found"})
    r = api.get("/users/me", headers={"Authorization": "Bearer nonsense", "X-Request-Id": "edge-401-check"})
    assert (r.status_code, r.json()) == (401, {"error": "Unauthorized"})
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(d.gateway, "nonsense", "r"), open_timeout=5, compression=None)
    assert refused.value.response.status_code == 401
    time.sleep(0.2)
    for s in (d.auth, d.user, *d.chat):
        assert not [e for e in s.events("http_request") if e["request_id"].startswith("edge-")]

    # Request ids pass through; the client's address travels in X-Forwarded-For.
    r = api.get("/users/me", headers={**auth(token), "X-Request-Id": "trace-me-1", "X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 200 and r.headers["X-Request-Id"] == "trace-me-1"
    assert wait_until(lambda: d.user.events("http_request") and any(
        e["request_id"] == "trace-me-1" for e in d.user.events("http_request")))
    seen = [e for e in d.user.events("http_request") if e["request_id"] == "trace-me-1"]
    assert seen[0]["client"] == "203.0.113.9" and seen[0]["peer"] == "127.0.0.1", seen

    # A stalled service: 504 with a JSON body within the upstream timeout, not a hang.
    os.kill(d.user.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        r = api.get("/users/me", headers=auth(token))
        assert r.status_code == 504 and r.json()["error"] == "service timed out", r.text
        assert time.monotonic() - started < 2 + 2 * SLOW
    finally:
        os.kill(d.user.proc.pid, signal.SIGCONT)
    # A service that is gone: 503 at once, with Retry-After.
    d.auth.stop(signal.SIGKILL)
    r = api.post("/login", json={"email": "x@example.com", "password": "12345678"})
    assert r.status_code == 503 and r.json() == {"error": "service unavailable", "service": "auth"}, r.text
    assert r.headers["Retry-After"] == "1"
    # No chat node at all: 503 for REST and for WebSocket.
    for n in d.chat:
        n.stop(signal.SIGKILL)
    assert wait_until(lambda: d.healthy_nodes() == 0, timeout=5)
    r = api.get("/chat/rooms")
    assert r.status_code == 503 and r.json()["service"] == "chat", r.text
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(d.gateway, token, "r"), open_timeout=5, compression=None)
    assert refused.value.response.status_code == 503


# --- nodes leaving ------------------------------------------------------------------


class Viewer(threading.Thread):
    """A v2 client of the gateway that comes back when its connection is closed, from
    the last seq it saw (last_seq), and, as a poster, sends `<name>-<i>` one at a time,
    resending the one in hand (same cid, marked) after a reconnection until acknowledged.

    Records every message seq in arrival order, every close (time, code), every
    connection (time) and, by cid, the seq of each acknowledged post."""

    def __init__(self, gateway: Server, token: str, room: str, name: str, post_every: float | None = None):
        super().__init__(daemon=True)
        self.gateway, self.token, self.room, self.name_ = gateway, token, room, name
        self.post_every = post_every
        self.seqs: list[int] = []
        self.closes: list[tuple[float, int | None]] = []
        self.connects: list[float] = []
        self.acked: dict[str, int] = {}
        self.failure: BaseException | None = None
        self._halt = threading.Event()
        self._posting = post_every is not None
        self._mu = threading.Lock()

    def stop_posting(self) -> None:
        self._posting = False

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # reported by the test thread
            self.failure = e

    def _run(self) -> None:
        i, in_hand, tries, last_sent = 0, None, 0, 0.0
        while not self._halt.is_set():
            last = self.seqs[-1] if self.seqs else 0
            try:
                ws = connect(ws_url(self.gateway, self.token, self.room, last_seq=last), open_timeout=5,
                             compression=None)
            except (InvalidStatus, OSError, TimeoutError):
                time.sleep(0.05)
                continue
            with self._mu:
                self.connects.append(time.monotonic())
            resend = in_hand is not None
            try:
                while not self._halt.is_set():
                    now = time.monotonic()
                    if in_hand is None and self._posting and now - last_sent >= self.post_every:
                        in_hand, tries = f"{self.name_}-{i}", 0
                        i += 1
                    if in_hand is not None and (tries == 0 or resend or now - last_sent > 3.0):
                        ws.send(json.dumps({"content": in_hand, "cid": in_hand, "resend": tries > 0}))
                        tries, resend, last_sent = tries + 1, False, now
                    try:
                        f = json.loads(ws.recv(timeout=0.02))
                    except TimeoutError:
                        continue
                    kind = f.get("type")
                    if kind == "message":
                        with self._mu:
                            self.seqs.append(f["seq"])
                    elif kind == "ack" and f.get("cid") == in_hand:
                        with self._mu:
                            self.acked[in_hand] = f["seq"]
                        in_hand = None
                    elif kind == "error" and in_hand is not None and f.get("cid") in (in_hand, None):
                        resend = True
                ws.close()
                return
            except ConnectionClosed as e:
                with self._mu:
                    self.closes.append((time.monotonic(), e.rcvd.code if e.rcvd else None))

    def snapshot(self) -> tuple[list[int], dict[str, int]]:
        with self._mu:
            return list(self.seqs), dict(self.acked)


def start_viewers(d: Deployment, count: int, posters: int, room: str) -> list[Viewer]:
    api = Api(d.gateway)
    viewers = []
    for k in range(count):
        token, _ = api.new_user()
        v = Viewer(d.gateway, token, room, f"p{k}", post_every=0.05 if k < posters else None)
        v.start()
        viewers.append(v)
        assert wait_until(lambda: len(v.connects) == 1, timeout=5 * SLOW)
    return viewers


def settle_and_check(viewers: list[Viewer]) -> None:
    """Stops posting, waits until every viewer has every acknowledged message, then
    checks each saw each message once, in order."""
    for v in viewers:
        v.stop_posting()
    time.sleep(0.5)
    acked = sorted({seq for v in viewers for seq in v.snapshot()[1].values()})
    assert acked, "nothing was acknowledged"

    def complete() -> bool:
        return all(set(acked) <= set(v.snapshot()[0]) for v in viewers)

    ok = wait_until(complete, timeout=10 * SLOW, interval=0.1)
    for v in viewers:
        v.stop()
    for v in viewers:
        v.join(5)
        assert v.failure is None, repr(v.failure)
    for v in viewers:
        seqs = v.snapshot()[0]
        missing = sorted(set(acked) - set(seqs))
        assert ok and not missing, f"{v.name_} missed {missing[:10]} of {len(acked)} acknowledged"
        assert seqs == sorted(set(seqs)), f"{v.name_} saw a message twice or out of order"


def chatting_on_both_nodes(deployment) -> tuple[Deployment, list[Viewer]]:
    """A deployment whose room has 6 viewers, 3 on each chat node, 2 of them posting
    for a second already."""
    d = deployment()
    room = unique_room("nodes")
    Api(d.gateway).post("/chat/rooms", json={"room_id": room})
    viewers = start_viewers(d, count=6, posters=2, room=room)
    assert sessions_on(d) == [3.0, 3.0]
    time.sleep(1.0)
    return d, viewers


def test_a_chat_node_stopped_with_sigterm_hands_its_viewers_over_through_the_gateway(deployment):
    d, viewers = chatting_on_both_nodes(deployment)
    stopped_at = time.monotonic()
    code = d.chat[0].stop()
    assert code == 0, "\n".join(l for l in d.chat[0].logs[-60:] if "http_request" not in l)
    # The node's viewers were told 1012 and came back, to the other node.
    moved = [v for v in viewers if v.closes]
    assert len(moved) == 3, [(v.name_, v.closes) for v in viewers]
    assert all(code == 1012 for v in moved for _, code in v.closes), [v.closes for v in moved]
    assert wait_until(lambda: all(len(v.connects) == 2 for v in moved), timeout=5 * SLOW)
    for v in moved:
        assert v.connects[1] - v.closes[0][0] < 2 * SLOW
    assert wait_until(lambda: sessions_on(d) == [0.0, 6.0], timeout=5)
    time.sleep(0.5)  # posting goes on through the node that is left
    settle_and_check(viewers)
    assert time.monotonic() - stopped_at < 30
    assert d.chat[0].events("drained")[0]["sessions_left"] == 0


def test_a_chat_node_killed_loses_its_viewers_for_less_than_5_seconds(deployment):
    d, viewers = chatting_on_both_nodes(deployment)
    killed_at = time.monotonic()
    d.chat[1].stop(signal.SIGKILL)
    assert wait_until(lambda: sum(1 for v in viewers if len(v.connects) == 2) == 3, timeout=5)
    moved = [v for v in viewers if len(v.connects) == 2]
    assert max(v.connects[1] for v in moved) - killed_at < 5
    assert wait_until(lambda: d.healthy_nodes() == 1, timeout=5)
    time.sleep(0.5)
    settle_and_check(viewers)
