"""Chat REST routes: rooms, history, presence."""
import pytest

from conftest import Api
from wsclient import V1_KEYS, ChatClient, unique_room


def test_create_room(server, api: Api):
    room = unique_room()
    r = api.post("/chat/rooms", json={"room_id": room})
    assert r.status_code == 200
    assert r.json() == {"room_id": room}
    assert r.headers["Content-Type"].startswith("application/json")


def test_create_room_is_idempotent_and_lower_cases(server, api: Api):
    room = unique_room("UPPER")
    r1 = api.post("/chat/rooms", json={"room_id": room})
    r2 = api.post("/chat/rooms", json={"room_id": room.lower()})
    assert (r1.status_code, r2.status_code) == (200, 200)
    assert r1.json() == r2.json() == {"room_id": room.lower()}
    listed = [x["room_id"] for x in api.get("/chat/rooms").json()]
    assert listed.count(room.lower()) == 1
    assert room not in listed


@pytest.mark.parametrize("body", [{}, {"room_id": ""}, {"room_id": 5}, {"room_id": None}, {"room_id": ["a"]},
                                  {"name": "music"}])
def test_create_room_requires_room_id(server, api: Api, body):
    r = api.post("/chat/rooms", json=body)
    assert r.status_code == 400
    assert r.json()["error"] == "room_id is required"


@pytest.mark.parametrize("room", ["has space", "semi;colon", "slash/room", "dot.room", "x" * 65, "ünï"])
def test_create_room_rejects_bad_room_ids(server, api: Api, room):
    r = api.post("/chat/rooms", json={"room_id": room})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid room_id"
    assert isinstance(r.json().get("detail"), str) and r.json()["detail"]


def test_create_room_accepts_64_characters_and_all_allowed_characters(server, api: Api):
    for room in ("a" * 64, "a-b_c-0-9", "_", "-"):
        r = api.post("/chat/rooms", json={"room_id": room})
        assert r.status_code == 200 and r.json() == {"room_id": room}, room


def test_create_room_rejects_non_json(server, api: Api):
    r = api.post("/chat/rooms", data="room_id=music", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert "error" in r.json()


def test_list_rooms(server, api: Api):
    room = unique_room()
    api.post("/chat/rooms", json={"room_id": room})
    rooms = api.get("/chat/rooms")
    assert rooms.status_code == 200
    entry = next(x for x in rooms.json() if x["room_id"] == room)
    assert entry == {"room_id": room, "online": 0, "chatters": 0, "viewers": 0, "slow_mode_seconds": 0}


def test_list_rooms_counts_connections(server, api: Api):
    room = unique_room()
    token, _ = api.new_user()
    with ChatClient(server, token, room, v=2) as c, ChatClient(server, None, room, v=2) as anon:
        c.wait_welcome()
        anon.wait_welcome()
        entry = next(x for x in api.get("/chat/rooms").json() if x["room_id"] == room)
        assert (entry["chatters"], entry["viewers"]) == (1, 1)
        assert entry["slow_mode_seconds"] == 0


def test_room_created_by_connecting_is_listed(server, api: Api):
    room = unique_room()
    token, _ = api.new_user()
    with ChatClient(server, token, room, v=2) as c:
        c.wait_welcome()
    assert room in [x["room_id"] for x in api.get("/chat/rooms").json()]


def test_history_newest_first_in_v1_shape(server, api: Api):
    room = unique_room()
    token, _ = api.new_user()
    with ChatClient(server, token, room, v=1) as c:
        sent = [c.say(f"m{i}") for i in range(4)]
    r = api.get(f"/chat/history/{room}")
    assert r.status_code == 200
    hist = r.json()
    assert hist == list(reversed(sent))
    for m in hist:
        assert list(m) == V1_KEYS


def test_history_of_unknown_or_empty_room_is_empty_list(server, api: Api):
    r = api.get(f"/chat/history/{unique_room()}")
    assert r.status_code == 200 and r.text.strip() == "[]"
    room = unique_room()
    api.post("/chat/rooms", json={"room_id": room})
    r = api.get(f"/chat/history/{room}")
    assert r.status_code == 200 and r.json() == []


def test_history_room_is_case_insensitive(server, api: Api):
    room = unique_room()
    token, _ = api.new_user()
    with ChatClient(server, token, room, v=1) as c:
        c.say("case")
    assert [m["content"] for m in api.get(f"/chat/history/{room.upper()}").json()] == ["case"]


@pytest.fixture(scope="module")
def busy_room(busy_server):
    """A server whose room holds 230 messages (seq 1..230)."""
    s = busy_server
    api = Api(s)
    token, _ = api.new_user()
    room = unique_room()
    with ChatClient(s, token, room, v=2) as c:
        for i in range(1, 231):
            c.say(f"b{i}")
    return api, room


@pytest.fixture(scope="module")
def busy_server(binary):
    from conftest import Server
    s = Server({"CHATORBIT_RATE_LIMIT": "1000/1s"}).start()
    yield s
    code = s.stop()
    s.cleanup()
    assert code == 0, "\n".join(s.logs[-40:])


def test_history_default_limit_is_50(busy_room):
    api, room = busy_room
    hist = api.get(f"/chat/history/{room}").json()
    assert [m["seq"] for m in hist] == list(range(230, 180, -1))
    assert [m["content"] for m in hist[:2]] == ["b230", "b229"]


def test_history_limit(busy_room):
    api, room = busy_room
    assert [m["seq"] for m in api.get(f"/chat/history/{room}?limit=3").json()] == [230, 229, 228]
    assert len(api.get(f"/chat/history/{room}?limit=200").json()) == 200
    assert [m["seq"] for m in api.get(f"/chat/history/{room}?limit=1").json()] == [230]


@pytest.mark.parametrize("query", ["limit=201", "limit=1000", "limit=abc", "limit=0", "before=0", "before=-1",
                                   "before=9223372036854775808", "before=abc"])
def test_history_rejects_bad_parameters(busy_room, query):
    api, room = busy_room
    r = api.get(f"/chat/history/{room}?{query}")
    assert r.status_code == 400
    assert isinstance(r.json()["error"], str)


def test_history_before_pages_backwards(busy_room):
    api, room = busy_room
    page1 = api.get(f"/chat/history/{room}?limit=100").json()
    page2 = api.get(f"/chat/history/{room}?limit=100&before={page1[-1]['seq']}").json()
    page3 = api.get(f"/chat/history/{room}?limit=100&before={page2[-1]['seq']}").json()
    seqs = [m["seq"] for m in page1 + page2 + page3]
    assert seqs == list(range(230, 0, -1))
    assert api.get(f"/chat/history/{room}?before=1").json() == []
    assert [m["seq"] for m in api.get(f"/chat/history/{room}?before=4").json()] == [3, 2, 1]
    # The documented range of before is 1 to 2^63-1 (a seq is a signed 64-bit integer in storage).
    assert len(api.get(f"/chat/history/{room}?before=9223372036854775807").json()) == 50


def test_presence_route(server, api: Api):
    room = unique_room()
    r = api.get(f"/chat/rooms/{room}/presence")
    assert r.status_code == 200
    assert r.json() == {"room_id": room, "online": 0, "chatters": 0, "viewers": 0}
    token, _ = api.new_user()
    with ChatClient(server, token, room, v=2) as c:
        c.wait_welcome()
        p = api.get(f"/chat/rooms/{room}/presence").json()
        assert p == {"room_id": room, "online": 1, "chatters": 1, "viewers": 0}
