"""Presence: who is in a room, counted per user (chatters) and per anonymous connection (viewers)."""
import time

from conftest import Api, wait_until
from wsclient import QUIET, TIMEOUT, ChatClient, unique_room


def presence(api: Api, room: str) -> dict:
    r = api.get(f"/chat/rooms/{room}/presence")
    assert r.status_code == 200
    return r.json()


def test_two_tabs_count_as_one_chatter(server, api: Api):
    room = unique_room()
    token, _ = api.new_user()
    tab1 = ChatClient(server, token, room, v=2)
    tab2 = ChatClient(server, token, room, v=2)
    try:
        tab1.wait_welcome()
        tab2.wait_welcome()
        assert presence(api, room) == {"room_id": room, "online": 1, "chatters": 1, "viewers": 0}
        tab1.close()
        time.sleep(QUIET)  # give the server time to (wrongly) drop the user
        assert presence(api, room) == {"room_id": room, "online": 1, "chatters": 1, "viewers": 0}
        assert tab2.say("still here")["content"] == "still here"
    finally:
        tab1.close()
        tab2.close()
    assert wait_until(lambda: presence(api, room)["chatters"] == 0, timeout=TIMEOUT), presence(api, room)
    assert presence(api, room) == {"room_id": room, "online": 0, "chatters": 0, "viewers": 0}


def test_anonymous_connections_count_as_viewers(server, api: Api):
    room = unique_room()
    token, _ = api.new_user()
    anons = [ChatClient(server, None, room, v=2) for _ in range(2)]
    try:
        for a in anons:
            a.wait_welcome()
        p = presence(api, room)
        assert (p["chatters"], p["viewers"]) == (0, 2)
        with ChatClient(server, token, room, v=2) as c:
            c.wait_welcome()
            p = presence(api, room)
            assert (p["chatters"], p["viewers"]) == (1, 2)
            assert p["online"] in (1, 3), "online counts the users, or everyone"
        anons[0].close()
        assert wait_until(lambda: presence(api, room)["viewers"] == 1, timeout=TIMEOUT)
        assert wait_until(lambda: presence(api, room)["chatters"] == 0, timeout=TIMEOUT)
    finally:
        for a in anons:
            a.close()
    assert wait_until(lambda: presence(api, room)["viewers"] == 0, timeout=TIMEOUT)


def test_presence_frames_announce_join_and_leave(server, api: Api):
    room = unique_room()
    t1, _ = api.new_user()
    t2, bob = api.new_user()
    with ChatClient(server, t1, room, v=2) as watcher:
        watcher.wait_welcome()
        with ChatClient(server, t2, room, v=2) as b:
            b.wait_welcome()
            j = watcher.recv_until(lambda f: f.get("type") == "presence" and f.get("event") == "join"
                                 and f.get("user_id") == bob["id"])
            assert (j["room_id"], j["user_id"], j["username"]) == (room, bob["id"], bob["username"])
            assert (j["online"], j["chatters"], j["viewers"]) == (2, 2, 0)
        left = watcher.recv_until(lambda f: f.get("type") == "presence" and f.get("event") == "leave"
                                      and f.get("user_id") == bob["id"])
        assert (left["room_id"], left["user_id"], left["username"]) == (room, bob["id"], bob["username"])
        assert (left["online"], left["chatters"], left["viewers"]) == (1, 1, 0)


def test_presence_frames_count_viewers(server, api: Api):
    room = unique_room()
    token, _ = api.new_user()
    with ChatClient(server, token, room, v=2) as watcher:
        watcher.wait_welcome()
        with ChatClient(server, None, room, v=2) as anon:
            anon.wait_welcome()
            p = watcher.recv_until(lambda f: f.get("type") == "presence" and f.get("viewers") == 1)
            assert (p["room_id"], p["chatters"]) == (room, 1)
        p = watcher.recv_until(lambda f: f.get("type") == "presence" and f.get("viewers") == 0)
        assert p["chatters"] == 1


def test_moving_rooms_updates_presence(server, api: Api):
    first, second = unique_room(), unique_room()
    token, _ = api.new_user()
    with ChatClient(server, token, first, v=2) as c:
        c.wait_welcome()
        assert presence(api, first)["chatters"] == 1
        c.join(second)
        c.recv_type("welcome", room_id=second)
        assert wait_until(lambda: presence(api, first)["chatters"] == 0, timeout=TIMEOUT)
        assert presence(api, second)["chatters"] == 1


def test_anonymous_viewer_receives_but_cannot_send(server, api: Api):
    room = unique_room()
    token, _ = api.new_user()
    with ChatClient(server, None, room, v=2) as anon, ChatClient(server, token, room, v=2) as c:
        w = anon.wait_welcome()
        assert (w["user_id"], w["read_only"]) == (None, True)
        c.send_message("for everyone")
        assert anon.recv_message()["content"] == "for everyone"
        anon.send_message("let me talk")
        err = anon.recv_error("forbidden")
        assert isinstance(err["message"], str)
        # The viewer stays connected and keeps receiving.
        c.send_message("still for everyone")
        assert anon.recv_message()["content"] == "still for everyone"
    assert [m["content"] for m in api.get(f"/chat/history/{room}").json()] == ["still for everyone", "for everyone"]


def test_anonymous_v1_viewer_is_forbidden_to_send(server, api: Api):
    room = unique_room()
    with ChatClient(server, None, room, v=1) as anon:
        anon.send_json({"room_id": room, "content": "hi"})
        f = anon.recv_json()
        assert f.get("code") == "forbidden" and "content" not in f, f
    assert api.get(f"/chat/history/{room}").json() == []
