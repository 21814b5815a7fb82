"""A sender may have many messages in flight: the server takes the next frame while the
previous messages are being stored (up to 32 per connection), but everything a client
sees stays in the order it sent: acks, sequence numbers, what viewers receive, and the
replies to frames that follow messages (ping, history, join)."""
import pytest

from conftest import Api
from wsclient import ChatClient, unique_room

BURST = 80  # more than the 32 a connection may have in the pipeline


@pytest.fixture
def server(start_server):
    """A server whose per-user rate limit lets a burst through."""
    return start_server({"CHATORBIT_RATE_LIMIT": "1000/1s"})


@pytest.fixture
def api(server) -> Api:
    return Api(server)


def _burst(c: ChatClient, prefix: str, n: int = BURST) -> None:
    for i in range(n):
        c.send_message(f"{prefix}{i}", cid=f"{prefix}{i}")


def _acks(c: ChatClient, n: int) -> list[dict]:
    acks = []
    while len(acks) < n:
        f = c.recv_until(lambda f: f.get("type") in ("ack", "error", "pong", "history"))
        assert f["type"] == "ack", f"expected ack #{len(acks) + 1}, got {f}"
        acks.append(f)
    return acks


def test_burst_is_acked_in_order_with_consecutive_seqs(server, api: Api):
    token, _ = api.new_user()
    room = unique_room()
    with ChatClient(server, token, room, v=2) as c, ChatClient(server, None, room, v=2) as viewer:
        c.wait_welcome()
        viewer.wait_welcome()
        _burst(c, "m")
        c.send_json({"type": "ping"})
        acks = _acks(c, BURST)
        assert [a["cid"] for a in acks] == [f"m{i}" for i in range(BURST)]
        assert [a["seq"] for a in acks] == list(range(1, BURST + 1))
        assert not any(a["duplicate"] for a in acks)
        # The ping was sent after the messages: its pong comes after every ack.
        assert c.recv_until(lambda f: f.get("type") in ("pong", "ack", "error")) == {"type": "pong"}
        got = [viewer.recv_message() for _ in range(BURST)]
        assert [m["content"] for m in got] == [f"m{i}" for i in range(BURST)]
        assert [m["id"] for m in got] == [a["id"] for a in acks]


def test_history_right_after_a_burst_holds_the_whole_burst(server, api: Api):
    token, _ = api.new_user()
    room = unique_room()
    with ChatClient(server, token, room, v=2) as c:
        c.wait_welcome()
        _burst(c, "h", 40)
        c.send_json({"type": "history", "limit": 200})
        _acks(c, 40)
        h = c.recv_type("history")
        assert [m["content"] for m in h["messages"]] == [f"h{i}" for i in reversed(range(40))]


def test_room_switch_after_a_burst_keeps_each_message_in_its_room(server, api: Api):
    token, _ = api.new_user()
    first, second = unique_room(), unique_room()
    with ChatClient(server, token, first, v=2) as c:
        c.wait_welcome()
        _burst(c, "a", 40)
        c.send_message("moved", cid="b0", room_id=second)
        acks = _acks(c, 41)
        assert [a["cid"] for a in acks] == [f"a{i}" for i in range(40)] + ["b0"]
        assert acks[-1]["seq"] == 1  # the first message of the second room
    old = api.get(f"/chat/history/{first}", params={"limit": 100}).json()
    new = api.get(f"/chat/history/{second}").json()
    assert sorted(m["content"] for m in old) == sorted(f"a{i}" for i in range(40))
    assert [m["content"] for m in new] == ["moved"]


def test_resends_inside_a_burst_are_acked_as_duplicates(server, api: Api):
    token, _ = api.new_user()
    with ChatClient(server, token, unique_room(), v=2) as c:
        c.wait_welcome()
        for i in range(10):
            c.send_message(f"r{i}", cid=f"r{i}")
            c.send_message(f"r{i}", cid=f"r{i}")  # an immediate resend, still in flight
        acks = _acks(c, 20)
    assert [a["cid"] for a in acks] == [f"r{i // 2}" for i in range(20)]
    assert [a["duplicate"] for a in acks] == [False, True] * 10
    assert [a["seq"] for a in acks] == [i // 2 + 1 for i in range(20)]
