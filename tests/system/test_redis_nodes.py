"""Three chatorbit nodes on one Redis make one chat: messages, bans, logouts, presence
and rate limits span the nodes, on a standalone Redis and on a Redis Cluster; and when
the standalone Redis dies, comes back empty or stalls, chat resumes by itself with no
acknowledged message lost or duplicated.

Every node of a test shares that test's Redis key prefix and SQLite file (nodes.py);
rooms are the test's own as well."""
from __future__ import annotations

import threading
import time
import uuid

import pytest

from conftest import SANITIZED, Api, auth, test_servers, wait_until
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from nodes import (Poster, Recorder, add_node, all_history, fault_log, is_message, redis_env, start_nodes,
                   stop_nodes)
from wsclient import TIMEOUT, ChatClient, admin_token, close_ws, refused, unique_room, ws_url

# ASan/UBSan builds run about 3x slower: latency limits scale with them.
SCALE = 3.0 if SANITIZED else 1.0
BAN_LIMIT_MS = 100.0 * SCALE
RESUME_LIMIT_S = 5.0 * SCALE


@pytest.fixture(params=["standalone", "cluster"])
def backend(request) -> dict[str, str]:
    """The Redis environment for a node: the session's standalone server or its cluster
    (started only when a test asks for it)."""
    if request.param == "cluster":
        return redis_env("cluster", request.getfixturevalue("redis_cluster"))
    return redis_env("standalone", request.getfixturevalue("redis_server"))


@pytest.fixture
def nodes_factory(binary, tmp_path):
    """start(backend, env=None, count=3) -> [Server, ...]: nodes on one Redis and one
    SQLite file under tmp_path, stopped after the test (each must exit with 0)."""
    started = []

    def start(backend_env, env=None, count=3):
        return start_nodes(backend_env, str(tmp_path / "data"), count, env, started)

    start.add = lambda like: add_node(like, started)
    yield start
    bad = stop_nodes(started)
    assert not bad, "\n\n".join(bad)


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


# --- 1. messages -----------------------------------------------------------------------


def _send_window(client: ChatClient, name: str, count: int, window: int, acks: dict) -> None:
    """Posts `<name> <i>` with cid `<name>-<i>`, `window` at a time, waiting for each
    window's acks (in order: acks keep the order sent)."""
    for start in range(0, count, window):
        batch = range(start, min(count, start + window))
        for i in batch:
            client.send_message(f"{name} {i}", cid=f"{name}-{i}")
        for i in batch:
            f = client.recv_until(lambda f: f.get("type") in ("ack", "error"), timeout=TIMEOUT * 2)
            assert f == {**f, "type": "ack", "cid": f"{name}-{i}", "duplicate": False}, f
            acks[f["cid"]] = f


def test_messages_from_two_nodes_reach_viewers_on_all_three_once_in_seq_order(backend, nodes_factory):
    a, b, c = nodes_factory(backend)
    api = Api(a)
    room = unique_room("fan")
    sender_tokens = [api.new_user()[0] for _ in range(2)]
    viewer_token, _ = api.new_user()
    # Viewers on every node: anonymous v2, an account's v2, and a v1 one.
    viewers = [Recorder(a, None, room), Recorder(b, None, room), Recorder(c, None, room),
               Recorder(c, viewer_token, room), Recorder(b, viewer_token, room, v=1)]
    senders = [ChatClient(a, sender_tokens[0], room), ChatClient(b, sender_tokens[1], room)]
    try:
        for v in viewers[:4]:
            v.wait_welcome(TIMEOUT)
        for s in senders:
            s.wait_welcome()
        # The first message: every viewer follows the room before the race starts.
        first = {}
        _send_window(senders[0], "warm", 1, 1, first)
        for v in viewers:
            assert v.wait(lambda r: len(r.messages()) >= 1, TIMEOUT), (v.server.port, v.snapshot())

        per_sender, window = 150, 16
        acks = [dict(), dict()]
        errors: list[BaseException] = []

        def run(k):
            try:
                _send_window(senders[k], f"s{k}", per_sender, window, acks[k])
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60 * SCALE)
        assert not errors, errors
        assert not any(t.is_alive() for t in threads), "a sender hung"

        by_seq = {f["seq"]: (cid, f["id"]) for d in (first, *acks) for cid, f in d.items()}
        total = 1 + 2 * per_sender
        assert sorted(by_seq) == list(range(1, total + 1)), "acked seqs are 1..N, each once"
        expected = [(seq, by_seq[seq][1], by_seq[seq][0]) for seq in sorted(by_seq)]

        def content_cid(m):  # content "s0 12" was sent with cid "s0-12"
            return m["content"].replace(" ", "-")

        # The two senders' messages interleave in seq order: they did race.
        owners = [by_seq[seq][0].split("-")[0] for seq in sorted(by_seq)][1:]
        assert sum(x != y for x, y in zip(owners, owners[1:])) >= 2, owners

        deadline = time.monotonic() + TIMEOUT * 2
        for v in viewers:
            v.wait(lambda r: len(r.messages()) >= total, max(0.0, deadline - time.monotonic()))
        time.sleep(0.3)  # room for a duplicate to show up
        for v in viewers:
            got = [(m["seq"], m["id"], content_cid(m)) for m in v.messages()]
            assert got == expected, (
                f"viewer on :{v.server.port} (v{v.client.v}): {len(got)} messages, expected {total}; "
                f"missing seqs {sorted(set(by_seq) - {g[0] for g in got})[:20]}, "
                f"first out of place: {next((g for g, e in zip(got, expected) if g != e), None)}")
        history = all_history(Api(c), room)
        assert [(m["seq"], m["id"], content_cid(m)) for m in history] == expected
    finally:
        close_all(senders)
        close_all(viewers)


# --- 2. bans ---------------------------------------------------------------------------


def test_ban_on_one_node_closes_the_users_connections_on_another_within_100ms(backend, nodes_factory):
    a, b, c = nodes_factory(backend)
    api = Api(a)
    adm = admin_token(api)
    token, user = api.new_user()
    watcher_token, _ = api.new_user()
    room = unique_room("ban")
    victims = [Recorder(c, token, room), Recorder(c, token, room), Recorder(b, token, room)]
    watcher = Recorder(a, watcher_token, room)
    try:
        for r in [*victims, watcher]:
            r.wait_welcome(TIMEOUT)
        sent = time.monotonic()
        resp = api.post(f"/chat/rooms/{room}/bans", headers=auth(adm), json={"user_id": user["id"], "reason": "x"})
        answered = time.monotonic()
        assert resp.status_code == 200, resp.text
        for v in victims:
            assert v.wait(lambda r: r.closed is not None, TIMEOUT), f"not closed on :{v.server.port}"
            closed_at, code = v.closed
            assert code == 4003, (v.server.port, code, v.snapshot())
            errors = [f for f in v.snapshot() if f.get("type") == "error"]
            assert [e["code"] for e in errors] == ["banned"], v.snapshot()
        c_close = max(v.closed[0] for v in victims[:2])
        from_send = (c_close - sent) * 1000
        from_response = (c_close - answered) * 1000
        print(f"ban A->C: {from_send:.1f} ms (from the request; {from_response:.1f} ms after its response)")
        assert from_send < BAN_LIMIT_MS, f"ban A->C took {from_send:.1f} ms"
        m = watcher.wait_frame(lambda f: f.get("type") == "moderation", TIMEOUT)
        assert m is not None and (m["action"], m["user_id"], m["room_id"]) == ("ban", user["id"], room), m
        # No node lets the user back in.
        for n in (a, b, c):
            status, body, _ = refused(n, token=token, room=room)
            assert (status, body["error"]) == (403, "banned"), (n.port, status, body)
    finally:
        close_all(victims)
        watcher.close()


# --- 3. logout -------------------------------------------------------------------------


def test_logout_on_one_node_refuses_the_token_on_the_others(backend, nodes_factory):
    a, b, c = nodes_factory(backend)
    api_a, api_c = Api(a), Api(c)
    email, _, password = api_a.register()
    token = api_a.login(email, password)
    other = api_a.login(email, password)  # another session of the same account
    room = unique_room("out")
    live = Recorder(b, token, room)
    survivor = Recorder(b, other, room)
    try:
        live.wait_welcome(TIMEOUT)
        survivor.wait_welcome(TIMEOUT)
        sent = time.monotonic()
        assert api_a.post("/logout", headers=auth(token)).status_code == 200
        answered = time.monotonic()
        # On C within the broker's fan-out latency (docs/architecture.md: nodes learn of a
        # logout from the control channel, a few ms): the REST API and a handshake.
        first = (api_c.get("/users/me", headers=auth(token)).status_code, handshake_status(c, token, room))
        if first != (401, 401):
            refused_everywhere = wait_until(lambda: (api_c.get("/users/me", headers=auth(token)).status_code,
                                                     handshake_status(c, token, room)) == (401, 401),
                                            timeout=1.0, interval=0.001)
            window = (time.monotonic() - answered) * 1000
            print(f"logout A->C: token still taken on C for {window:.1f} ms after the logout was answered")
            assert refused_everywhere, f"node C still took the token 1 s after the logout on A: {first}"
        status, body, _ = refused(c, token=token, room=room)
        assert (status, body["error"]) == (401, "invalid token")
        # The open WebSocket on B is closed, after an `unauthorized` error.
        assert live.wait(lambda r: r.closed is not None, TIMEOUT), live.snapshot()
        print(f"logout A->B: {(live.closed[0] - sent) * 1000:.1f} ms")
        assert live.closed[1] == 4001, live.closed
        assert [f["code"] for f in live.snapshot() if f.get("type") == "error"] == ["unauthorized"]
        # Only that token: the account's other session carries on, on every node.
        for n in (a, b, c):
            assert Api(n).get("/users/me", headers=auth(other)).status_code == 200
            assert Api(n).get("/users/me", headers=auth(token)).status_code == 401
        assert survivor.closed is None
        with ChatClient(c, other, room) as again:
            again.say("still logged in")
        assert survivor.wait(lambda r: any(m["content"] == "still logged in" for m in r.messages()), TIMEOUT)
    finally:
        live.close()
        survivor.close()


# --- 4. presence -----------------------------------------------------------------------


def test_presence_counts_span_the_nodes(backend, nodes_factory):
    a, b, c = nodes_factory(backend)
    api = Api(a)
    t1, u1 = api.new_user()
    t2, u2 = api.new_user()
    room = unique_room("who")

    def counts(node):
        r = Api(node).get(f"/chat/rooms/{room}/presence")
        assert r.status_code == 200, r.text
        return r.json()

    def everywhere(chatters, viewers):
        want = {"room_id": room, "online": chatters + viewers, "chatters": chatters, "viewers": viewers}
        ok = wait_until(lambda: all(counts(n) == want for n in (a, b, c)), timeout=TIMEOUT)
        assert ok, {n.port: counts(n) for n in (a, b, c)}

    def presence_frames():
        return [f for f in watcher.snapshot() if f.get("type") == "presence"]

    watcher = Recorder(a, t1, room)  # u1 on A
    others: list[Recorder] = []
    try:
        watcher.wait_welcome(TIMEOUT)
        everywhere(1, 0)
        others.append(Recorder(b, t2, room))  # u2 on B
        others[-1].wait_welcome(TIMEOUT)
        j = watcher.wait_frame(lambda f: f.get("type") == "presence" and f.get("event") == "join"
                               and f.get("user_id") == u2["id"], TIMEOUT)
        assert j is not None, presence_frames()
        assert (j["room_id"], j["username"], j["chatters"], j["viewers"], j["online"]) == \
            (room, u2["username"], 2, 0, 2), j
        everywhere(2, 0)
        others.append(Recorder(c, t1, room))  # u1 again, on C: still one chatter
        others.append(Recorder(b, None, room))  # viewers without an account on B and C
        others.append(Recorder(c, None, room))
        for r in others:
            r.wait_welcome(TIMEOUT)
        everywhere(2, 2)
        assert watcher.wait(lambda r: any((f["chatters"], f["viewers"]) == (2, 2) for f in presence_frames()),
                            TIMEOUT), presence_frames()
        # Leaving on one node is seen on the others.
        others[0].close()  # u2 leaves B
        left = watcher.wait_frame(lambda f: f.get("type") == "presence" and f.get("event") == "leave"
                                  and f.get("user_id") == u2["id"], TIMEOUT)
        assert left is not None, presence_frames()
        assert (left["chatters"], left["viewers"]) == (1, 2), left
        everywhere(1, 2)
        others[1].close()  # u1's tab on C: u1 is still on A
        others[3].close()  # the viewer on C
        everywhere(1, 1)
        listed = [r for r in Api(c).get("/chat/rooms").json() if r["room_id"] == room]
        assert [(r["chatters"], r["viewers"], r["online"]) for r in listed] == [(1, 1, 2)], listed
    finally:
        watcher.close()
        close_all(others)


# --- 5. rate limits --------------------------------------------------------------------


def test_rate_limit_holds_for_a_user_alternating_nodes(backend, nodes_factory):
    nodes = nodes_factory(backend, env={"CHATORBIT_RATE_LIMIT": "3/20s"})
    api = Api(nodes[0])
    token, _ = api.new_user()
    room = unique_room("rate")
    tabs = [ChatClient(n, token, room) for n in nodes]
    try:
        for t in tabs:
            t.wait_welcome()

        def post(tab: ChatClient, n: int) -> dict:
            tab.send_message(f"m{n}", cid=f"c{n}")
            return tab.recv_until(lambda f: f.get("type") in ("ack", "error") and f.get("cid") == f"c{n}")

        # A, B, C take one each; the fourth and fifth, on A and on B, are over the limit.
        for n, tab in enumerate(tabs):
            f = post(tab, n)
            assert (f["type"], f.get("seq")) == ("ack", n + 1), f
        for n, tab in ((3, tabs[0]), (4, tabs[1])):
            f = post(tab, n)
            assert (f["type"], f.get("code")) == ("error", "rate_limited"), (tab.server.port, f)
            assert 0 < f["retry_after_ms"] <= 20000, f
    finally:
        close_all(tabs)
    assert [m["content"] for m in Api(nodes[2]).get(f"/chat/history/{room}").json()] == ["m2", "m1", "m0"]


# --- 6. faults (standalone only: each test has a Redis of its own) ---------------------


@pytest.fixture
def durable_redis(tmp_path):
    """A redis-server of this test's own that writes every command to its AOF before
    answering (appendfsync always), so that SIGKILL loses nothing it acknowledged."""
    server = test_servers.RedisServer(tmp_path / "redis-aof", ["--appendonly", "yes", "--appendfsync", "always"])
    server.start()
    yield server
    server.stop()


def readyz(node) -> int:
    try:
        return Api(node).get("/readyz").status_code
    except Exception:  # noqa: BLE001 - a node too busy to answer is not ready either
        return 0


def kill_until_noticed(redis, nodes) -> None:
    """SIGKILL, then wait until every node's /readyz says 503."""
    redis.kill()
    assert wait_until(lambda: all(readyz(n) == 503 for n in nodes), timeout=TIMEOUT * 2), [readyz(n) for n in nodes]


FAULTS = ["killed_and_restarted_with_its_data", "killed_and_restarted_empty", "stalled_3s"]


@pytest.mark.parametrize("fault", FAULTS)
def test_chat_resumes_after_redis_fault_without_losing_or_repeating_a_message(fault, request, nodes_factory):
    redis = request.getfixturevalue("durable_redis" if fault == FAULTS[0] else "fresh_redis")
    nodes = nodes_factory(redis_env("standalone", redis))
    a, b, c = nodes
    api = Api(a)
    poster_users = [api.new_user() for _ in range(2)]
    viewer_token, _ = api.new_user()
    room = unique_room("fault")
    viewers = [Recorder(a, None, room), Recorder(b, None, room), Recorder(c, None, room),
               Recorder(c, viewer_token, room), Recorder(b, viewer_token, room, v=1)]
    posters: list[Poster] = []
    try:
        run_fault(fault, redis, nodes, viewers, poster_users, posters, room)
    except AssertionError as e:
        raise AssertionError(f"{e}\nnodes A :{a.port}, B :{b.port}, C :{c.port}\n{fault_log(nodes)}") from None
    finally:
        for p in posters:
            p.stop()
        for p in posters:
            p.join(TIMEOUT * 2)
        close_all(viewers)


CLUSTER_FAULTS = ["master_killed_and_restarted_with_its_data", "master_killed_and_restarted_empty",
                  "master_stalled_3s"]


@pytest.fixture
def private_cluster(tmp_path, request):
    """A 3-master cluster of this test's own: its fault takes a master down. For the
    case that keeps its data, every node writes each command to its AOF before
    answering, so that SIGKILL loses nothing it acknowledged."""
    durable = request.node.callspec.params.get("fault") == CLUSTER_FAULTS[0]
    aof = ["--appendonly", "yes", "--appendfsync", "always"] if durable else []
    cluster = test_servers.start_cluster(tmp_path / "cluster", masters=3, extra_args=aof)
    yield cluster
    cluster.stop()


@pytest.mark.parametrize("fault", CLUSTER_FAULTS)
def test_chat_resumes_after_a_cluster_master_fault_without_losing_or_repeating_a_message(fault, private_cluster,
                                                                                        nodes_factory):
    """The fault cases on a cluster: the master that holds the room's channel (and so its
    subscriptions and publications) is killed and restarted with its data (AOF) or
    empty (it keeps its nodes.conf, so its slots either way), or stalled for 3 s."""
    prefix = f"c{uuid.uuid4().hex[:8]}:"
    nodes = nodes_factory(redis_env("cluster", private_cluster), env={"CHATORBIT_REDIS_KEY_PREFIX": prefix})
    a, b, c = nodes
    api = Api(a)
    poster_users = [api.new_user() for _ in range(2)]
    viewer_token, _ = api.new_user()
    room = unique_room("cfault")
    channel = f"{prefix}chat_room:{room}"
    slot = int(private_cluster.nodes[0].cli("CLUSTER", "KEYSLOT", channel).strip())
    owner = next(addr for first, last, addr in private_cluster.slot_map(private_cluster.nodes[0]) if first <= slot <= last)
    master = next(n for n in private_cluster.nodes if n.addr == owner)
    viewers = [Recorder(a, None, room), Recorder(b, None, room), Recorder(c, None, room),
               Recorder(c, viewer_token, room), Recorder(b, viewer_token, room, v=1)]
    posters: list[Poster] = []
    try:
        run_fault(FAULTS[CLUSTER_FAULTS.index(fault)], master, nodes, viewers, poster_users, posters, room,
                  sentinel="{" + channel + "}sentinel")
    except AssertionError as e:
        raise AssertionError(f"{e}\nnodes A :{a.port}, B :{b.port}, C :{c.port}\n{fault_log(nodes)}") from None
    finally:
        for p in posters:
            p.stop()
        for p in posters:
            p.join(TIMEOUT * 2)
        close_all(viewers)


def run_fault(fault, redis, nodes, viewers, poster_users, posters, room, sentinel: str = "sentinel") -> None:
    a, b, c = nodes
    for v in viewers[:4]:
        v.wait_welcome(TIMEOUT)
    # Two posters, on A and on B, each one message at a time, resending until acked.
    posters += [Poster(n, tok, room, name, pace=0.01, reply_wait=3.0 * SCALE, deadline=60 * SCALE)
                for n, (tok, _), name in zip((a, b), poster_users, ("pa", "pb"))]
    for p in posters:
        p.start()

    def acked_after(t):
        return [(when, p, cid) for p in posters for when, cid in p.ack_times() if when >= t]

    assert wait_until(lambda: all(len(p.acked()) >= 20 for p in posters), timeout=TIMEOUT * 2), \
        [p.refusals[-3:] for p in posters]
    redis.cli("SET", sentinel, "1")

    # The fault, mid-stream. While Redis is away the store still answers: what it
    # holds then is what the seqs after the fault must stay above.
    down_at = time.monotonic()
    if fault == "stalled_3s":
        redis.pause()
        time.sleep(3.0)
        stored_before = max(m["seq"] for m in all_history(Api(c), room))
        redis.resume()
    else:
        kill_until_noticed(redis, nodes)
        time.sleep(1.0)  # Redis stays away a second after every node noticed
        stored_before = max(m["seq"] for m in all_history(Api(c), room))
        redis.start()
        kept = None
        deadline = time.monotonic() + RESUME_LIMIT_S
        while kept is None:
            try:
                kept = redis.cli("GET", sentinel).strip()
            except test_servers.CliError:  # a cluster master that just came back: CLUSTERDOWN a moment
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert kept == ("1" if fault == FAULTS[0] else ""), f"Redis came back with sentinel={kept!r}"
    back_at = time.monotonic()

    # Chat resumes by itself: both posters' messages are acked again, and reach the
    # viewers on every node.
    assert wait_until(lambda: all(any(q is p for _, q, _ in acked_after(back_at)) for p in posters),
                      timeout=RESUME_LIMIT_S * 2), [(p.refusals[-3:], p.timeouts[-3:]) for p in posters]
    resumed = [min(t for t, q, _ in acked_after(back_at) if q is p) - back_at for p in posters]
    first_seq = min(p.acked()[cid]["seq"] for _, p, cid in acked_after(back_at))
    seen_at = []
    for v in viewers:
        assert v.wait(lambda r: any(m["seq"] >= first_seq for m in r.messages()), TIMEOUT * 2), \
            f"viewer on :{v.server.port} got nothing after the fault: {v.messages()[-3:]}"
        seen_at.append(next(t for t, f in list(v.frames) if is_message(f) and f["seq"] >= first_seq))
    delivered = max(seen_at) - back_at
    codes = sorted({f.get("code") for p in posters for _, f in p.refusals})
    print(f"{fault}: outage {back_at - down_at:.2f} s; posts acked again "
          f"{', '.join(f'{r * 1000:.0f}' for r in resumed)} ms (A, B) and delivered on all nodes "
          f"{delivered * 1000:.0f} ms after Redis was back; refusals {sum(len(p.refusals) for p in posters)} "
          f"{codes}, unanswered tries {sum(len(p.timeouts) for p in posters)}, "
          f"acked but not live {sum(len(p.unavailable) for p in posters)}")
    assert max(resumed) < RESUME_LIMIT_S, f"posts acked again only {max(resumed):.1f} s after Redis was back"
    assert delivered < RESUME_LIMIT_S, f"delivered again only {delivered:.1f} s after Redis was back"
    assert wait_until(lambda: all(readyz(n) == 200 for n in nodes), timeout=TIMEOUT), [readyz(n) for n in nodes]

    # Some more chat after the recovery, then stop.
    targets = [len(p.acked()) + 20 for p in posters]
    assert wait_until(lambda: all(len(p.acked()) >= n for p, n in zip(posters, targets)), timeout=TIMEOUT * 2)
    for p in posters:
        p.stop()
    for p in posters:
        p.join(TIMEOUT * 2)
        assert not p.is_alive(), f"poster {p.name_} did not finish"
        assert p.failure is None, repr(p.failure)
    check_outcome(nodes, posters, [u["id"] for _, u in poster_users], viewers, room, stored_before)


def check_outcome(nodes, posters: list[Poster], user_ids: list[str], viewers: list[Recorder], room: str,
                  stored_before: int) -> None:
    """Every message each poster sent was acknowledged once it was stored, with one id
    and seq however many tries it took; history holds each once, in the order posted,
    numbered above what was stored before the fault (no seq reused); and every viewer
    got every stored message exactly once, in seq order, as stored."""
    history = all_history(Api(nodes[2]), room)
    seqs = [m["seq"] for m in history]
    assert seqs[-1] > stored_before, "nothing stored after the fault"
    acked_seqs = set()
    for p, user_id in zip(posters, user_ids):
        acks = {cid: [f for _, f in fs] for cid, fs in p.acks.items()}
        assert set(acks) == set(p.cids), f"{p.name_}: never acked: {sorted(set(p.cids) - set(acks))}"
        for cid, fs in acks.items():
            assert len({(f["id"], f["seq"]) for f in fs}) == 1, f"{cid} acked as different messages: {fs}"
            assert [f["duplicate"] for f in fs].count(False) <= 1, f"{cid} stored twice: {fs}"
        acked = {cid: fs[0] for cid, fs in acks.items()}
        acked_seqs |= {f["seq"] for f in acked.values()}
        mine = [m for m in history if m["user_id"] == user_id]
        assert [m["content"] for m in mine] == p.cids, \
            f"{p.name_}: history holds every message once, in the order posted"
        assert [(m["id"], m["seq"]) for m in mine] == [(acked[c]["id"], acked[c]["seq"]) for c in p.cids]
    assert set(seqs) == acked_seqs, "history holds only what was acked"
    # After the fault: numbered above everything stored before it.
    after = [m["seq"] for m in history if m["timestamp"] > max(x["timestamp"] for x in history
                                                                  if x["seq"] <= stored_before)]
    assert all(s > stored_before for s in after), (stored_before, after[:10])

    deadline = time.monotonic() + TIMEOUT
    for v in viewers:
        v.wait(lambda r: {m["seq"] for m in r.messages()} >= set(seqs), max(0.0, deadline - time.monotonic()))
    time.sleep(0.3)  # room for a duplicate to show up
    stored = {m["seq"]: (m["id"], m["content"]) for m in history}
    # Acked, then told `unavailable`: stored, but the broker did not take the publication.
    not_live = {p.acked()[cid]["seq"] for p in posters for cid in p.unavailable}
    not_published = {e["seq"] for n in nodes for e in n.events("publish_failed") if e.get("room") == room}
    assert not_live <= not_published, (sorted(not_live), sorted(not_published))
    not_live |= not_published
    problems = []
    for v in viewers:
        got = [(m["seq"], m["id"], m["content"]) for m in v.messages()]
        got_seqs = [g[0] for g in got]
        missing = sorted(set(seqs) - set(got_seqs))
        dups = sorted({s for s in got_seqs if got_seqs.count(s) > 1})
        out_of_order = [(x, y) for x, y in zip(got_seqs, got_seqs[1:]) if y <= x]
        wrong = [g for g in got if stored.get(g[0]) != (g[1], g[2])]
        if (missing, dups, out_of_order, wrong) != ([], [], [], []):
            problems.append((v, missing, dups, out_of_order, wrong, len(got)))
    described = "\n".join(
        f"viewer on :{v.server.port} (v{v.client.v}): missing {missing[:30]} "
        f"(of which acked but not live: {sorted(set(missing) & not_live)[:30]}), duplicated {dups[:30]}, "
        f"out of order {out_of_order[:10]}, not as stored {wrong[:5]}; {n} received, {len(seqs)} stored"
        for v, missing, dups, out_of_order, wrong, n in problems)
    # First what must hold whatever the broker did: no duplicate, no disorder, and every
    # message whose publication the broker took reached everyone.
    assert not [p for p in problems if p[2] or p[3] or p[4] or set(p[1]) - not_live], described
    # Then the messages that were acked with `unavailable` (stored, not published): the
    # node must still bring them to its viewers (the gap fill), as every acked message.
    assert not problems, (f"acked messages told `unavailable` (seqs {sorted(not_live)}) never reached some "
                          f"viewers:\n{described}")


def test_bans_and_logouts_hold_after_redis_restarts_empty(fresh_redis, nodes_factory):
    nodes = nodes_factory(redis_env("standalone", fresh_redis))
    api = Api(nodes[0])
    adm = admin_token(api)
    banned_token, banned = api.new_user()
    email, _, password = api.register()
    gone_token = api.login(email, password)
    room = unique_room("keep")
    assert api.post(f"/chat/rooms/{room}/bans", headers=auth(adm), json={"user_id": banned["id"]}).status_code == 200
    assert api.post("/logout", headers=auth(gone_token)).status_code == 200

    def enforced(n) -> tuple[int, int, int]:
        return (handshake_status(n, banned_token, room), handshake_status(n, gone_token, room),
                Api(n).get("/users/me", headers=auth(gone_token)).status_code)

    assert [enforced(n) for n in nodes] == [(403, 401, 401)] * 3
    fresh_redis.cli("SET", "sentinel", "1")
    kill_until_noticed(fresh_redis, nodes)
    fresh_redis.start()
    assert fresh_redis.cli("EXISTS", "sentinel").strip() == "0", "Redis came back with its data"
    assert wait_until(lambda: all(readyz(n) == 200 for n in nodes), timeout=RESUME_LIMIT_S), \
        [readyz(n) for n in nodes]
    # The nodes put the store's bans and revocations back into the empty Redis.
    held = wait_until(lambda: all(enforced(n) == (403, 401, 401) for n in nodes), timeout=RESUME_LIMIT_S)
    assert held, (f"after Redis came back empty, (ban handshake, revoked handshake, revoked REST) per node: "
                  f"{[enforced(n) for n in nodes]}; expected (403, 401, 401)\n{fault_log(nodes)}")
    # And a node that starts now agrees.
    late = nodes_factory.add(nodes[0])
    assert enforced(late) == (403, 401, 401)


def test_a_post_refused_while_redis_is_down_names_its_cid(fresh_redis, nodes_factory):
    """A client may have several messages in flight: the refusal must say which one it
    is about, so that the client resends that one (with its cid) and no other."""
    (node,) = nodes_factory(redis_env("standalone", fresh_redis), count=1)
    token, _ = Api(node).new_user()
    room = unique_room("cid")
    with ChatClient(node, token, room) as c:
        c.wait_welcome()
        c.send_message("before", cid="up-1")
        assert c.recv_type("ack", cid="up-1")["seq"] == 1
        kill_until_noticed(fresh_redis, [node])
        c.send_message("while down", cid="down-1")
        f = c.recv_until(lambda f: f.get("type") in ("ack", "error"))
        print(f"refused while Redis is down: {f}")
        assert f["type"] == "error", f
        fresh_redis.start()
        assert wait_until(lambda: readyz(node) == 200, timeout=RESUME_LIMIT_S)
        for _ in range(50):  # resend with the same cid until Redis takes it
            c.send_message("while down", cid="down-1")
            reply = c.recv_until(lambda f: f.get("type") in ("ack", "error"))
            if reply["type"] == "ack":
                break
            time.sleep(0.1)
        assert (reply["type"], reply.get("seq"), reply.get("duplicate")) == ("ack", 2, False), reply
        assert f.get("cid") == "down-1", f"the refusal does not name the message it refuses: {f}"
    assert [m["content"] for m in Api(node).get(f"/chat/history/{room}").json()] == ["while down", "before"]


def test_bans_come_back_after_redis_lost_them_even_if_it_is_slow_at_first(fresh_redis, nodes_factory):
    """The refill after a lost subscription must not be a single attempt. Redis loses its
    state (FLUSHALL, as a restart without persistence would), the nodes' subscriptions
    drop (CLIENT KILL TYPE pubsub) and, as they resubscribe, Redis takes no writes for
    3 s (CLIENT PAUSE WRITE, longer than the 2 s command timeout): the refill's writes
    time out. Once Redis takes writes again, the bans must be back."""
    nodes = nodes_factory(redis_env("standalone", fresh_redis))
    api = Api(nodes[0])
    adm = admin_token(api)
    banned_token, banned = api.new_user()
    room = unique_room("keep")
    assert api.post(f"/chat/rooms/{room}/bans", headers=auth(adm), json={"user_id": banned["id"]}).status_code == 200
    assert [handshake_status(n, banned_token, room) for n in nodes] == [403] * 3
    fresh_redis.cli("FLUSHALL")
    fresh_redis.cli("CLIENT", "PAUSE", "3000", "WRITE")
    fresh_redis.cli("CLIENT", "KILL", "TYPE", "pubsub")
    paused_until = time.monotonic() + 3.0
    assert wait_until(lambda: all(n.events("broker_resubscribed") for n in nodes), timeout=TIMEOUT)
    time.sleep(max(0.0, paused_until - time.monotonic()))
    held = wait_until(lambda: all(handshake_status(n, banned_token, room) == 403 for n in nodes),
                      timeout=RESUME_LIMIT_S)
    assert held, (f"3 s after Redis took writes again, the banned user's handshake per node: "
                  f"{[handshake_status(n, banned_token, room) for n in nodes]} (expected 403)\n{fault_log(nodes)}")


# --- a subscriber Redis drops for falling behind ----------------------------------------


def test_a_node_whose_subscriber_redis_dropped_for_falling_behind_fills_the_gap(fresh_redis, nodes_factory):
    """Redis closes a subscriber whose output buffer passes `client-output-buffer-limit
    pubsub`. Node B is stopped (SIGSTOP) while A posts large messages, so its subscriber
    falls behind (past what the kernel's socket buffers hold) and is dropped; once B runs
    again it reconnects, subscribes again and fills the gap from the store: its viewer
    gets every acknowledged message once, in seq order."""
    import os
    import signal

    fresh_redis.cli("CONFIG", "SET", "client-output-buffer-limit", "pubsub 256kb 128kb 1")
    a, b = nodes_factory(redis_env("standalone", fresh_redis), count=2, env={"CHATORBIT_MAX_MESSAGE_CHARS": "20000"})
    api = Api(a)
    token, _ = api.new_user()
    room = unique_room("behind")
    viewer = Recorder(b, None, room)
    poster = ChatClient(a, token, room, v=2)
    body = "x" * 16000
    acked: list[int] = []

    def post(n: int, tag: str) -> None:
        """Posts n messages, 16 in flight, and records the acked seqs."""
        sent = answered = 0
        while answered < n:
            while sent < n and sent - answered < 16:
                poster.send_message(f"{tag}{sent} {body}", cid=f"{tag}{sent}")
                sent += 1
            f = poster.recv_until(lambda f: f.get("type") in ("ack", "error"), timeout=TIMEOUT)
            answered += 1
            if f["type"] == "ack":
                acked.append(f["seq"])

    try:
        viewer.wait_welcome(TIMEOUT)
        poster.wait_welcome(TIMEOUT)
        post(5, "a")
        os.kill(b.proc.pid, signal.SIGSTOP)
        try:
            post(300, "b")  # ~5 MB for B's subscriber while B is stopped
        finally:
            os.kill(b.proc.pid, signal.SIGCONT)
        assert wait_until(lambda: any(e.get("connection", "").startswith("subscriber")
                                      for e in b.events("redis_connection_lost")), timeout=TIMEOUT), \
            f"Redis did not drop node B's subscriber, so the test proves nothing\n{fault_log([a, b])}"
        assert wait_until(lambda: readyz(b) == 200, timeout=RESUME_LIMIT_S)
        post(5, "c")
        acked.sort()
        got = lambda: [m["seq"] for m in viewer.messages()]  # noqa: E731
        wait_until(lambda: len(got()) >= len(acked), timeout=RESUME_LIMIT_S)
        assert got() == acked, f"viewer on B: {len(got())} frames for {len(acked)} acked\n{fault_log([a, b])}"
    finally:
        poster.close()
        viewer.close()
