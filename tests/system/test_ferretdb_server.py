"""The FerretDB of tools/test_servers.py itself (the MongoDB-wire server the store tests
stand on): it starts, keeps its databases across a restart, and dies, stalls and comes
back as the fault tests will assume."""
from __future__ import annotations

import socket

import pytest

from conftest import test_servers


@pytest.fixture
def ferretdb(tmp_path):
    server = test_servers.start_ferretdb(tmp_path / "ferretdb")
    yield server
    server.stop()


def insert(server, db: str, doc: dict) -> None:
    assert server.command({"insert": "c", "documents": [doc], "$db": db}) == {"n": 1, "ok": 1.0}


def find_all(server, db: str) -> list[dict]:
    docs = server.command({"find": "c", "filter": {}, "$db": db})["cursor"]["firstBatch"]
    return [{k: v for k, v in d.items() if k != "_id"} for d in docs]


def test_answers_hello_at_its_url(ferretdb):
    assert ferretdb.url == f"mongodb://127.0.0.1:{ferretdb.port}/"
    reply = ferretdb.command({"hello": 1, "$db": "admin"})
    assert reply["ok"] == 1.0 and reply["isWritablePrimary"] is True


def test_documents_round_trip(ferretdb):
    doc = {"s": "text", "i": 7, "f": 2.5, "b": False, "none": None, "nested": {"list": [1, "two"]}}
    insert(ferretdb, "roundtrip", doc)
    assert find_all(ferretdb, "roundtrip") == [doc]


def test_restart_keeps_the_data_and_the_port(ferretdb):
    port = ferretdb.port
    insert(ferretdb, "kept", {"k": 1})
    ferretdb.restart()
    assert ferretdb.port == port
    assert find_all(ferretdb, "kept") == [{"k": 1}]


def test_kill_then_start_again_on_the_same_port(ferretdb):
    port = ferretdb.port
    insert(ferretdb, "killed", {"k": 1})
    ferretdb.kill()
    assert not test_servers.answers_hello(ferretdb.host, port)
    ferretdb.start()
    assert ferretdb.port == port
    assert find_all(ferretdb, "killed") == [{"k": 1}]  # SQLite commits before it acknowledges


def test_paused_server_keeps_the_connection_but_answers_nothing(ferretdb):
    ferretdb.pause()
    with socket.create_connection((ferretdb.host, ferretdb.port), timeout=1.0):
        pass  # the kernel still accepts
    assert not test_servers.answers_hello(ferretdb.host, ferretdb.port, timeout=0.3)
    ferretdb.resume()
    assert test_servers.answers_hello(ferretdb.host, ferretdb.port)


def test_error_replies_come_back_as_documents(ferretdb):
    reply = ferretdb.command({"noSuchCommand": 1, "$db": "admin"})
    assert reply["ok"] == 0.0 and reply["errmsg"]
