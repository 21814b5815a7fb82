"""A viewer that stops reading in a busy room: the room's frames wait for it up to
CHATORBIT_WS_MAX_QUEUE_BYTES, then it is closed with 4008 ("too slow"), after whole frames
only; everyone else keeps receiving every message, in order, without waiting for it."""
import pytest

from conftest import Api
from wsclient import flood_past_a_stalled_viewer, unique_room

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
    # The stalled viewer's kernel buffers fill first (a 4 KiB window), then the server's
    # backlog for it; the others keep reading (their backlog is bounded the same way).
    flood_past_a_stalled_viewer(server, token, room, CHARS, MESSAGES)
