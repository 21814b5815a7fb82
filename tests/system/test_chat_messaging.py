"""Chat over WebSocket: the original's v1 frames, v2 envelopes, acks, resume, rooms."""
import json
import threading
import time
from datetime import datetime, timezone

from conftest import Api, auth
from wsclient import (HEX24, RFC3339_NANOS, V1_KEYS, ChatClient, unique_room)


def test_two_users_exchange_v1_messages(server, api: Api):
    room = unique_room()
    a_token, alice = api.new_user(username="alice-" + room[-4:])
    b_token, bob = api.new_user(username="bob-" + room[-4:])
    with ChatClient(server, a_token, room, v=1) as a, ChatClient(server, b_token, room, v=1) as b:
        a.send_json({"room_id": room, "content": "hello bob"})
        got_a, got_b = a.recv_message(), b.recv_message()
        assert got_a == got_b, "the sender receives its own message, identical to everyone else's"
        assert list(got_a) == V1_KEYS
        assert got_a["room_id"] == room
        assert got_a["user_id"] == alice["id"]
        assert got_a["username"] == alice["username"]
        assert got_a["content"] == "hello bob"
        assert got_a["seq"] == 1

        b.send_json({"room_id": room, "content": "hi alice"})
        reply_a, reply_b = a.recv_message(), b.recv_message()
        assert reply_a == reply_b
        assert list(reply_b) == V1_KEYS
        assert (reply_b["user_id"], reply_b["username"], reply_b["content"]) == (bob["id"], bob["username"], "hi alice")
        assert reply_b["seq"] == got_a["seq"] + 1
        assert reply_b["id"] != got_a["id"]


def test_message_ids_are_unique_24_hex_and_not_zero(server, api: Api):
    token, _ = api.new_user()
    with ChatClient(server, token, unique_room(), v=1) as c:
        ids = [c.say(f"m{i}")["id"] for i in range(6)]
    for i in ids:
        assert HEX24.match(i), i
        assert i != "0" * 24
    assert len(set(ids)) == len(ids)


def test_timestamp_is_rfc3339_with_nanoseconds(server, api: Api):
    token, _ = api.new_user()
    with ChatClient(server, token, unique_room(), v=1) as c:
        before = time.time()
        ts = c.say("what time is it")["timestamp"]
        after = time.time()
    assert RFC3339_NANOS.match(ts), ts
    parsed = datetime.strptime(ts[:26] + "Z", "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
    assert before - 2 <= parsed <= after + 2


def test_seq_counts_up_by_one_per_room(server, api: Api):
    token, _ = api.new_user()
    room, other = unique_room(), unique_room()
    with ChatClient(server, token, room, v=2) as c:
        seqs = [c.say(f"n{i}")["seq"] for i in range(5)]
        assert seqs == [1, 2, 3, 4, 5]
        # Another room has its own counter.
        c.join(other)
        c.recv_type("welcome", room_id=other)
        assert c.say("elsewhere")["seq"] == 1
        c.join(room)
        c.recv_type("welcome", room_id=room)
        assert c.say("back")["seq"] == 6


def test_wscat_flow_from_the_original(server, api: Api):
    """The original README: wscat -c 'ws://.../ws/chat?token=...&room_id=my-room', then type a frame."""
    token, me = api.new_user()
    with ChatClient(server, token, "my-room", v=1) as c:
        c.send_raw('{"room_id": "my-room", "content": "Hello!"}')
        m = c.recv_message(content="Hello!")
    assert list(m) == V1_KEYS
    assert m["room_id"] == "my-room" and m["user_id"] == me["id"] and m["username"] == me["username"]
    hist = api.get("/chat/history/my-room").json()
    assert hist[0] == m


def test_v1_clients_get_only_chat_frames(server, api: Api):
    """Version 1 has no welcome or presence frames: the first frame is the message."""
    room = unique_room()
    t1, _ = api.new_user()
    t2, _ = api.new_user()
    with ChatClient(server, t1, room, v=1) as a:
        with ChatClient(server, t2, room, v=1) as b:
            b.send_json({"content": "first"})
            first = a.recv_json()
            assert list(first) == V1_KEYS and first["content"] == "first"
            assert list(b.recv_json()) == V1_KEYS


def test_v2_message_envelope(server, api: Api):
    token, me = api.new_user()
    room = unique_room()
    with ChatClient(server, token, room, v=2) as c:
        m = c.say("typed")
    assert set(m) == {"type", *V1_KEYS}
    assert m["type"] == "message"
    assert (m["room_id"], m["user_id"], m["username"], m["content"], m["seq"]) == (room, me["id"], me["username"],
                                                                                   "typed", 1)
    assert HEX24.match(m["id"]) and RFC3339_NANOS.match(m["timestamp"])


def test_v2_welcome_frame(server, api: Api):
    token, me = api.new_user()
    room = unique_room()
    with ChatClient(server, token, room, v=2) as c:
        w = c.recv_json()
        assert w["type"] == "welcome", "welcome is the first frame"
        assert (w["room_id"], w["user_id"], w["username"], w["role"], w["read_only"], w["protocol"]) == \
            (room, me["id"], me["username"], "user", False, 2)


def test_v2_welcome_for_anonymous_viewer(server):
    with ChatClient(server, None, unique_room(), v=2) as c:
        w = c.recv_json()
    assert w["type"] == "welcome"
    assert w["user_id"] is None
    assert w["read_only"] is True
    assert (w["role"], w["username"]) == ("viewer", "")


def test_v2_via_subprotocol(server, api: Api):
    token, me = api.new_user()
    room = unique_room()
    with ChatClient(server, token, room, v=1, subprotocols=["chatorbit.v2"]) as c:
        assert c.ws.subprotocol == "chatorbit.v2"
        c.v = 2
        w = c.recv_json()
        assert w["type"] == "welcome" and w["user_id"] == me["id"]
        assert c.say("via subprotocol")["type"] == "message"


def test_ack_carries_cid_id_and_seq(server, api: Api):
    token, _ = api.new_user()
    with ChatClient(server, token, unique_room(), v=2) as c:
        c.wait_welcome()
        c.send_message("acked", cid="c-1")
        got = {}
        while len(got) < 2:  # the ack and the echo, in either order
            f = c.recv_until(lambda f: f.get("type") in ("ack", "message", "error"))
            assert f["type"] not in got and f["type"] != "error", f
            got[f["type"]] = f
        ack, msg = got["ack"], got["message"]
    assert ack == {"type": "ack", "cid": "c-1", "id": msg["id"], "seq": msg["seq"], "duplicate": False}


def test_duplicate_cid_is_stored_once(server, api: Api):
    token, _ = api.new_user()
    other_token, _ = api.new_user()
    room = unique_room()
    with ChatClient(server, token, room, v=2) as c, ChatClient(server, other_token, room, v=2) as o:
        c.wait_welcome()
        o.wait_welcome()
        c.send_message("only once", cid="dup-1")
        first = c.recv_type("ack")
        c.send_message("only once", cid="dup-1")
        second = c.recv_type("ack", cid="dup-1")
        assert first["duplicate"] is False
        assert second == {"type": "ack", "cid": "dup-1", "id": first["id"], "seq": first["seq"], "duplicate": True}
        # The other client sees the message once, and the next message right after it.
        c.send_message("after")
        assert o.recv_message()["content"] == "only once"
        nxt = o.recv_message()
        assert nxt["content"] == "after" and nxt["seq"] == first["seq"] + 1
    hist = api.get(f"/chat/history/{room}").json()
    assert [m["content"] for m in hist] == ["after", "only once"]


def _resend_on_a_new_connection(server, api: Api, mark: bool) -> tuple[dict, dict, dict, str]:
    """Posts cid c-1 and reads its ack; then, on a new connection (the first one's ack
    was as good as lost), sends c-1 again (`resend` if `mark`) and then c-2. Returns the
    acks of c-1, of its resend and of c-2, and the room."""
    token, _ = api.new_user()
    room = unique_room()
    with ChatClient(server, token, room, v=2) as c:
        c.wait_welcome()
        c.send_message("sent twice", cid="c-1")
        first = c.recv_type("ack")
    with ChatClient(server, token, room, v=2) as c:
        c.wait_welcome()
        c.send_message("sent twice", cid="c-1", resend=mark)
        again = c.recv_type("ack", cid="c-1")
        c.send_message("after", cid="c-2")
        nxt = c.recv_type("ack", cid="c-2")
    return first, again, nxt, room


def test_a_resend_on_a_new_connection_is_acked_as_the_original(server, api: Api):
    """Marked `resend`, it is acked with the original id and seq, stored once, and takes
    no seq: the next message follows the original directly."""
    first, again, nxt, room = _resend_on_a_new_connection(server, api, mark=True)
    assert again == {"type": "ack", "cid": "c-1", "id": first["id"], "seq": first["seq"], "duplicate": True}
    assert nxt["seq"] == first["seq"] + 1
    assert [m["content"] for m in api.get(f"/chat/history/{room}").json()] == ["after", "sent twice"]


def test_an_unmarked_resend_on_a_new_connection_is_still_stored_once(server, api: Api):
    """Without `resend`, it still gets the original id and seq and is stored once (on
    MongoDB its seq may stay unused)."""
    first, again, nxt, room = _resend_on_a_new_connection(server, api, mark=False)
    assert again == {"type": "ack", "cid": "c-1", "id": first["id"], "seq": first["seq"], "duplicate": True}
    assert nxt["seq"] > first["seq"] and nxt["duplicate"] is False
    assert [m["content"] for m in api.get(f"/chat/history/{room}").json()] == ["after", "sent twice"]


def test_resend_must_be_a_boolean(server, api: Api):
    token, _ = api.new_user()
    with ChatClient(server, token, unique_room(), v=2) as c:
        c.wait_welcome()
        c.send_json({"type": "message", "content": "x", "cid": "b-1", "resend": "yes"})
        err = c.recv_type("error")
    assert err["code"] == "invalid" and err["cid"] == "b-1" and "resend" in err["message"]


def test_same_cid_from_another_user_is_not_a_duplicate(server, api: Api):
    room = unique_room()
    t1, _ = api.new_user()
    t2, _ = api.new_user()
    with ChatClient(server, t1, room, v=2) as a, ChatClient(server, t2, room, v=2) as b:
        a.send_message("from a", cid="shared-cid")
        ack_a = a.recv_type("ack")
        b.send_message("from b", cid="shared-cid")
        ack_b = b.recv_type("ack")
    assert ack_a["duplicate"] is False and ack_b["duplicate"] is False
    assert ack_b["seq"] == ack_a["seq"] + 1
    assert len(api.get(f"/chat/history/{room}").json()) == 2


def test_resume_with_last_seq(server, api: Api):
    token, _ = api.new_user()
    room = unique_room()
    with ChatClient(server, token, room, v=2) as c:
        for i in range(1, 6):
            c.say(f"r{i}")
    with ChatClient(server, token, room, v=2, last_seq=2) as c:
        replay = [c.recv_message() for _ in range(3)]
        assert [(m["seq"], m["content"]) for m in replay] == [(3, "r3"), (4, "r4"), (5, "r5")]
        live = c.say("r6")
        assert live["seq"] == 6
        assert [f for f in c.seen if f.get("type") == "message"][-1] == live


def test_resume_when_up_to_date_replays_nothing(server, api: Api):
    token, _ = api.new_user()
    room = unique_room()
    with ChatClient(server, token, room, v=2) as c:
        c.say("a")
        c.say("b")
    with ChatClient(server, token, room, v=2, last_seq=2) as c:
        assert c.say("c")["seq"] == 3, "no replayed message comes before the live one"


def test_resume_replays_at_most_200(start_server):
    s = start_server({"CHATORBIT_RATE_LIMIT": "1000/1s"})
    api = Api(s)
    token, _ = api.new_user()
    room = unique_room()
    with ChatClient(s, token, room, v=2) as c:
        for i in range(230):
            c.say(f"x{i}")
    with ChatClient(s, token, room, v=2, last_seq=0) as c:
        replay = [c.recv_message() for _ in range(200)]
        seqs = [m["seq"] for m in replay]
        assert len(seqs) == 200
        assert seqs == list(range(seqs[0], seqs[0] + 200)), "oldest first, no gaps"
        c.assert_no_message()


def test_resume_while_the_room_is_busy_has_no_gap_and_no_duplicate(start_server):
    # Clients resume while messages are being stored and published: each gets its
    # replay first, then the room's live messages, every seq once and in order from the
    # first one it receives (the replay holds at most the newest 200).
    s = start_server({"CHATORBIT_RATE_LIMIT": "100000/1s"})
    api = Api(s)
    room = unique_room()
    posters, per_poster, window = 4, 500, 32
    total = posters * per_poster
    tokens = [api.new_user()[0] for _ in range(posters)]
    started = threading.Event()
    failure: list[BaseException] = []

    def post(token: str, name: str):
        try:
            with ChatClient(s, token, room, v=2) as sender:
                for start in range(0, per_poster, window):  # the server's inbox takes 64
                    for i in range(start, start + window):
                        sender.send_message(f"{name} {i}", cid=f"{name}-{i}")
                    for i in range(start, start + window):
                        sender.recv_type("ack", cid=f"{name}-{i}")
                    started.set()
        except BaseException as e:  # reported by the main thread
            failure.append(e)
            started.set()

    threads = [threading.Thread(target=post, args=(t, f"p{k}")) for k, t in enumerate(tokens)]
    for t in threads:
        t.start()
    clients = []
    try:
        assert started.wait(30)
        for _ in range(5):
            clients.append(ChatClient(s, tokens[0], room, v=2, last_seq=0))
            time.sleep(0.03)
        for c in clients:
            seqs = [c.recv_message()["seq"]]
            while seqs[-1] < total:
                seqs.append(c.recv_message()["seq"])
            assert seqs == list(range(seqs[0], total + 1)), "a gap, a duplicate or live before replay"
    finally:
        for c in clients:
            c.close()
        for t in threads:
            t.join(60)
    assert not failure, failure


def test_room_switch_by_room_id_in_a_frame(server, api: Api):
    first, second = unique_room(), unique_room()
    mover_token, _ = api.new_user()
    t1, _ = api.new_user()
    t2, _ = api.new_user()
    with ChatClient(server, mover_token, first, v=1) as mover, \
            ChatClient(server, t1, first, v=1) as in_first, ChatClient(server, t2, second, v=1) as in_second:
        mover.send_json({"room_id": second, "content": "moved"})
        m = mover.recv_message()
        assert (m["room_id"], m["content"], m["seq"]) == (second, "moved", 1)
        assert in_second.recv_message() == m
        in_first.assert_no_message()
        # The mover now hears the second room and no longer the first.
        in_first.send_json({"content": "in first"})
        in_second.send_json({"content": "in second"})
        assert mover.recv_message()["content"] == "in second"
        mover.assert_no_message()
    assert [x["content"] for x in api.get(f"/chat/history/{second}").json()] == ["in second", "moved"]
    assert [x["content"] for x in api.get(f"/chat/history/{first}").json()] == ["in first"]


def test_join_moves_without_posting(server, api: Api):
    first, second = unique_room(), unique_room()
    token, me = api.new_user()
    t2, _ = api.new_user()
    with ChatClient(server, token, first, v=2) as c, ChatClient(server, t2, second, v=2) as other:
        c.wait_welcome()
        c.join(second)
        w = c.recv_type("welcome")
        assert (w["room_id"], w["user_id"]) == (second, me["id"])
        other.send_message("welcome to second")
        assert c.recv_message()["content"] == "welcome to second"
    assert [x["content"] for x in api.get(f"/chat/history/{second}").json()] == ["welcome to second"]
    assert api.get(f"/chat/history/{first}").json() == []


def test_join_with_bad_room_id_is_invalid_and_stays(server, api: Api):
    room = unique_room()
    token, _ = api.new_user()
    with ChatClient(server, token, room, v=2) as c:
        c.wait_welcome()
        c.join("no spaces allowed")
        c.recv_error("invalid")
        assert c.say("still here")["room_id"] == room


def test_room_id_is_folded_to_lower_case(server, api: Api):
    token, _ = api.new_user()
    room = unique_room("MiXeD")
    with ChatClient(server, token, room, v=2) as c:
        assert c.wait_welcome()["room_id"] == room.lower()
        assert c.say("case")["room_id"] == room.lower()
    assert len(api.get(f"/chat/history/{room.lower()}").json()) == 1


def test_roomId_alias(server, api: Api):
    token, _ = api.new_user()
    room = unique_room()
    with ChatClient(server, token, room, v=1, room_param="roomId") as c:
        assert c.say("alias")["room_id"] == room


def test_default_room_is_general(server, api: Api):
    token, _ = api.new_user()
    with ChatClient(server, token, None, v=2) as c:
        assert c.wait_welcome()["room_id"] == "general"


def test_token_in_authorization_header(server, api: Api):
    token, me = api.new_user()
    with ChatClient(server, None, unique_room(), v=2, headers=auth(token)) as c:
        w = c.wait_welcome()
        assert (w["user_id"], w["read_only"]) == (me["id"], False)


def test_token_in_cookie(server, api: Api):
    token, me = api.new_user()
    with ChatClient(server, None, unique_room(), v=2, headers={"Cookie": f"token={token}"}) as c:
        w = c.wait_welcome()
        assert (w["user_id"], w["read_only"]) == (me["id"], False)


def test_content_is_trimmed(server, api: Api):
    token, _ = api.new_user()
    room = unique_room()
    with ChatClient(server, token, room, v=1) as c:
        c.send_json({"content": "  \t padded \n "})
        assert c.recv_message()["content"] == "padded"
    assert api.get(f"/chat/history/{room}").json()[0]["content"] == "padded"


def test_unicode_content_round_trips(server, api: Api):
    token, _ = api.new_user()
    room = unique_room()
    text = "héllo 世界 🎉"
    with ChatClient(server, token, room, v=1) as c:
        c.send_raw(json.dumps({"content": text}, ensure_ascii=False))
        assert c.recv_message()["content"] == text
    assert api.get(f"/chat/history/{room}").json()[0]["content"] == text


def test_ping_pong(server, api: Api):
    token, _ = api.new_user()
    with ChatClient(server, token, unique_room(), v=2) as c:
        c.wait_welcome()
        c.send_json({"type": "ping"})
        assert c.recv_until(lambda f: f.get("type") not in ("presence",)) == {"type": "pong"}


def test_v2_history_request(server, api: Api):
    token, _ = api.new_user()
    room = unique_room()
    with ChatClient(server, token, room, v=2) as c:
        sent = [c.say(f"h{i}") for i in range(1, 6)]
        c.send_json({"type": "history", "before": 5, "limit": 2})
        h = c.recv_type("history")
        assert h["room_id"] == room
        assert [m["seq"] for m in h["messages"]] == [4, 3]
        v1 = [{k: m[k] for k in V1_KEYS} for m in sent]
        assert [{k: m[k] for k in V1_KEYS} for m in h["messages"]] == [v1[3], v1[2]]
        c.send_json({"type": "history"})
        h = c.recv_type("history")
        assert [m["seq"] for m in h["messages"]] == [5, 4, 3, 2, 1]
