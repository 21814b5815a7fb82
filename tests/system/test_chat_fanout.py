"""Fan-out: many clients in one room each receive every message exactly once, in order."""
import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect as aconnect

from conftest import SANITIZED, Api, wait_until
from wsclient import ChatClient, unique_room, ws_url

VIEWERS = 200
PER_SENDER = 50
DEADLINE = 60.0 if SANITIZED else 20.0

FANOUT_ENV = {
    "CHATORBIT_RATE_LIMIT": "100000/1s",
    "CHATORBIT_MAX_CONNECTIONS_PER_IP": "100000",
    "CHATORBIT_CONNECT_RATE_PER_IP": "100000/1s",
}


async def _open(url: str, sem: asyncio.Semaphore):
    async with sem:
        return await aconnect(url, compression=None, max_size=None, ping_interval=None,
                              open_timeout=DEADLINE)


async def _collect(ws, want: int, deadline: float) -> list[dict]:
    """Chat messages (v1 frames, or v2 `message` frames) until `want` have arrived."""
    got = []
    while len(got) < want:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            raw = await asyncio.wait_for(ws.recv(), left)
        except (asyncio.TimeoutError, Exception):
            break
        f = json.loads(raw)
        if f.get("type", "message") == "message":
            got.append(f)
    return got


async def _extra(ws, quiet: float) -> list[dict]:
    """Any chat message still arriving after the expected ones (duplicates)."""
    extra = []
    try:
        while True:
            f = json.loads(await asyncio.wait_for(ws.recv(), quiet))
            if f.get("type", "message") == "message":
                extra.append(f)
    except (asyncio.TimeoutError, Exception):
        return extra


@pytest.mark.parametrize("io_uring", ["true", "false"])
def test_200_clients_each_receive_every_message_once_in_order(start_server, io_uring):
    # false: the passes' one-sendmsg-per-connection path, also the fallback where the
    # kernel refuses io_uring.
    s = start_server({**FANOUT_ENV, "CHATORBIT_IO_URING": io_uring})
    api = Api(s)
    room = unique_room("fan")
    senders = [api.new_user() for _ in range(2)]
    started = time.monotonic()

    async def run():
        sem = asyncio.Semaphore(50)
        viewers = await asyncio.gather(*[_open(ws_url(s, None, room, v=1), sem) for _ in range(VIEWERS)])
        tx = [await _open(ws_url(s, tok, room, v=2), sem) for tok, _ in senders]
        try:
            ok = await asyncio.to_thread(
                wait_until, lambda: api.get(f"/chat/rooms/{room}/presence").json()["viewers"] == VIEWERS, DEADLINE, 0.05)
            assert ok, api.get(f"/chat/rooms/{room}/presence").json()
            total = 2 * PER_SENDER
            deadline = time.monotonic() + DEADLINE
            readers = [asyncio.create_task(_collect(v, total, deadline)) for v in viewers + tx]

            async def send_all(ws, who):
                for i in range(PER_SENDER):
                    await ws.send(json.dumps({"type": "message", "content": f"{who}-{i}", "cid": f"{who}-{i}"}))
            await asyncio.gather(send_all(tx[0], "A"), send_all(tx[1], "B"))
            results = await asyncio.gather(*readers)
            extras = await asyncio.gather(*[_extra(v, 0.3) for v in viewers])
            return results, extras
        finally:
            await asyncio.gather(*[w.close() for w in viewers + tx], return_exceptions=True)

    results, extras = asyncio.run(run())
    total = 2 * PER_SENDER
    reference = [(m["seq"], m["id"], m["content"]) for m in results[0]]
    assert len(reference) == total, f"client 0 got {len(reference)} of {total}"
    assert [r[0] for r in reference] == list(range(1, total + 1)), "seq 1..100, no gaps or duplicates"
    for who in ("A", "B"):
        assert [r[2] for r in reference if r[2].startswith(who + "-")] == [f"{who}-{i}" for i in range(PER_SENDER)]
    for n, got in enumerate(results):
        seen = [(m["seq"], m["id"], m["content"]) for m in got]
        assert seen == reference, f"client {n}: got {len(seen)} messages, first difference at " \
            f"{next((i for i, (a, b) in enumerate(zip(seen, reference)) if a != b), len(seen))}"
    assert all(e == [] for e in extras), "no client receives a message twice"
    hist = api.get(f"/chat/history/{room}?limit=200").json()
    assert [(m["seq"], m["id"], m["content"]) for m in reversed(hist)] == reference
    assert time.monotonic() - started < DEADLINE + 10


def test_presence_is_coalesced_in_big_rooms(start_server):
    s = start_server({**FANOUT_ENV, "CHATORBIT_PRESENCE_EVENTS_MAX": "5"})
    api = Api(s)
    room = unique_room("big")
    token, _ = api.new_user()
    with ChatClient(s, token, room, v=2) as watcher:
        watcher.wait_welcome()
        viewers = [ChatClient(s, None, room, v=1) for _ in range(20)]
        try:
            assert wait_until(lambda: api.get(f"/chat/rooms/{room}/presence").json()["viewers"] == 20, DEADLINE)
            t0 = time.monotonic()
            frames = []
            while time.monotonic() - t0 < 2.5:
                frames += [f for f in watcher.drain(0.2) if f.get("type") == "presence"]
                if frames and frames[-1]["viewers"] == 20 and time.monotonic() - t0 > 1.2:
                    break
            assert frames and frames[-1]["viewers"] == 20 and frames[-1]["chatters"] == 1, frames
            big = [f for f in frames if f["chatters"] + f["viewers"] > 5]
            assert not any(f.get("event") in ("join", "leave") for f in big), "no per-member events above the threshold"
            assert len(big) <= 4, f"counts are coalesced, got {len(big)} frames"
        finally:
            for v in viewers:
                v.close()
