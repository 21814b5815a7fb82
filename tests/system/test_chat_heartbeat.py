"""Heartbeat: the server pings, and drops a connection that stays silent."""
import time

from wsclient import RawWs


def test_server_pings_and_drops_a_silent_connection(start_server):
    s = start_server({"CHATORBIT_PING_INTERVAL": "1s", "CHATORBIT_IDLE_DROP": "3s"})
    # Before the handshake: the server's idle clock starts during it, so a start taken
    # after it could see the drop a fraction of a millisecond before 3 s.
    started = time.monotonic()
    ws = RawWs(s, room="heartbeat", v=2)
    pings = 0
    # Read everything the server sends and never answer: pings arrive, then the drop.
    try:
        while True:
            fin, opcode, payload = ws.recv_frame(timeout=10)
            if opcode == 0x9:
                pings += 1
    except (ConnectionError, OSError, EOFError):
        pass
    elapsed = time.monotonic() - started
    assert pings >= 1, "the server pings idle connections"
    assert 3 <= elapsed < 8, f"dropped after {elapsed:.1f}s; the limit is 3s (checked each second)"


def test_a_connection_answering_pings_stays(start_server):
    s = start_server({"CHATORBIT_PING_INTERVAL": "1s", "CHATORBIT_IDLE_DROP": "3s"})
    ws = RawWs(s, room="heartbeat", v=2)
    deadline = time.monotonic() + 5
    pongs = 0
    while time.monotonic() < deadline:
        fin, opcode, payload = ws.recv_frame(timeout=5)
        if opcode == 0x9:
            ws.send_frame(0xA, payload)
            pongs += 1
    assert pongs >= 3
    ws.send_json({"type": "ping"})
    assert ws.recv_json(timeout=5, skip=("presence", "welcome"))["type"] == "pong", "still open past the idle limit"
