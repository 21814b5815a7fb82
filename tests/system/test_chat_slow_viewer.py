"""A viewer that stops reading in a busy room: the room's frames wait for it up to
CHATORBIT_WS_MAX_QUEUE_BYTES, then it is closed with 4008 ("too slow"), after whole frames
only; everyone else keeps receiving every message, in order, without waiting for it."""
import json

import pytest

from conftest import Api
from wsclient import ChatClient, RawWs, unique_room

# 6 MB in all: more than the kernel buffers between the server and the stalled viewer
# (its send buffer is autotuned to a few MB on loopback), however small the window.
MESSAGES = 120
CHARS = 50_000


@pytest.fixture
def server(start_server):
    return start_server({"CHATORBIT_WS_MAX_QUEUE_BYTES": "4096", "CHATORBIT_RATE_LIMIT": "100000/1s",
                         "CHATORBIT_MAX_MESSAGE_CHARS": str(CHARS),
                         "CHATORBIT_PING_INTERVAL": "300s", "CHATORBIT_IDLE_DROP": "600s"})


def test_a_stalled_viewer_is_dropped_with_4008_and_the_others_get_everything(server):
    api = Api(server)
    token, _ = api.new_user()
    room = unique_room()
    text = "x" * (CHARS - 10)
    with ChatClient(server, token, room, v=2) as sender, ChatClient(server, None, room, v=2) as viewer, \
            RawWs(server, room=room, v=2, rcvbuf=4096) as stalled:
        sender.wait_welcome()
        viewer.wait_welcome()
        # The stalled viewer reads nothing from here on: its kernel buffers fill first
        # (a 4 KiB window), then the server's backlog for it. The others keep reading
        # (their backlog is bounded the same way).
        got = []
        for start in range(0, MESSAGES, 10):
            for i in range(start, start + 10):
                sender.send_message(f"{i} {text}", cid=f"c{i}")
            for i in range(start, start + 10):
                sender.recv_type("ack", cid=f"c{i}")
            got += [viewer.recv_message()["content"] for _ in range(10)]
        assert got == [f"{i} {text}" for i in range(MESSAGES)]

        # Now it reads: whole frames (welcome, some messages in order), then the close.
        contents = []
        while True:
            fin, op, payload = stalled.recv_frame(timeout=5)
            if op == 0x8:
                code, reason = stalled._close_info(payload)
                break
            assert op == 0x1 and fin
            obj = json.loads(payload)
            if obj.get("type") == "message":
                contents.append(obj["content"])
        assert code == 4008, (code, reason)
        assert 0 < len(contents) < MESSAGES, len(contents)
        assert contents == [f"{i} {text}" for i in range(len(contents))], "a prefix, in order"
