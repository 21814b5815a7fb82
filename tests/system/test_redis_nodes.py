"""Three chatorbit nodes on one Redis make one chat: messages, bans, logouts, presence
and rate limits span the nodes, on a standalone Redis and on a Redis Cluster. (What
happens when Redis fails under them: test_redis_faults.py.)

Every node of a test shares that test's Redis key prefix and SQLite file (nodes.py);
rooms are the test's own as well."""
from __future__ import annotations

import threading
import time

import pytest

from conftest import Api, auth, wait_until

from nodes import SLOW, Recorder, all_history, close_all, handshake_status, redis_env
from wsclient import TIMEOUT, ChatClient, admin_token, refused, unique_room

# ASan/UBSan builds run about 3x slower: latency limits scale with them.
BAN_LIMIT_MS = 100.0 * SLOW


@pytest.fixture(params=["standalone", "cluster"])
def backend(request) -> dict[str, str]:
    """The Redis environment for a node: the session's standalone server or its cluster
    (started only when a test asks for it)."""
    if request.param == "cluster":
        return redis_env("cluster", request.getfixturevalue("redis_cluster"))
    return redis_env("standalone", request.getfixturevalue("redis_server"))


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
            t.join(60 * SLOW)
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
