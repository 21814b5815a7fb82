"""When the Redis under three chat nodes fails, chat resumes by itself with no
acknowledged message lost or repeated: a standalone Redis killed and restarted (with its
data, or empty) or stalled; a cluster master likewise; a subscriber Redis drops for
falling behind. Bans and logouts outlive a Redis restarted empty. (The nodes' shared
behaviour when Redis is well: test_redis_nodes.py.)

Every node of a test shares that test's Redis key prefix and SQLite file (nodes.py);
rooms are the test's own as well."""
from __future__ import annotations

import time
import uuid

import pytest

from conftest import Api, auth, test_servers, wait_until

from nodes import (SLOW, Poster, Recorder, all_history, close_all, fault_log, handshake_status, is_message,
                   redis_env)
from wsclient import TIMEOUT, ChatClient, admin_token, unique_room

# ASan/UBSan builds run about 3x slower: latency limits scale with them.
RESUME_LIMIT_S = 5.0 * SLOW


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
    posters += [Poster(n, tok, room, name, pace=0.01, reply_wait=3.0 * SLOW, deadline=60 * SLOW)
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
