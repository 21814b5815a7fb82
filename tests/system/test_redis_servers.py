"""The Redis fixtures themselves (conftest.py, tools/test_servers.py): the servers the
Redis engine's system tests stand on do what those tests will assume."""
from __future__ import annotations

import socket

import pytest

from conftest import test_servers


def raw_ping(server, timeout: float) -> bytes:
    """PING over a plain socket; raises socket.timeout if no answer comes in time."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        return s.recv(64)


def test_shared_server_answers_ping(redis_server):
    assert redis_server.cli("PING") == "PONG\n"
    assert redis_server.addr == f"127.0.0.1:{redis_server.port}"


def test_restart_keeping_data_keeps_keys_and_port(fresh_redis):
    port = fresh_redis.port
    fresh_redis.cli("SET", "kept", "value")
    fresh_redis.restart(keep_data=True)
    assert fresh_redis.port == port
    assert fresh_redis.cli("GET", "kept") == "value\n"


def test_restart_without_data_comes_back_empty(fresh_redis):
    fresh_redis.cli("SET", "lost", "value")
    fresh_redis.restart(keep_data=False)
    assert fresh_redis.cli("EXISTS", "lost") == "0\n"


def test_kill_then_start_again_on_the_same_port(fresh_redis):
    port = fresh_redis.port
    fresh_redis.kill()
    with pytest.raises(ConnectionRefusedError):
        raw_ping(fresh_redis, timeout=1.0)
    fresh_redis.start()
    assert fresh_redis.port == port
    assert raw_ping(fresh_redis, timeout=1.0) == b"+PONG\r\n"


def test_paused_server_keeps_the_connection_but_answers_nothing(fresh_redis):
    fresh_redis.pause()
    with pytest.raises(socket.timeout):
        raw_ping(fresh_redis, timeout=0.3)
    fresh_redis.resume()
    assert raw_ping(fresh_redis, timeout=1.0) == b"+PONG\r\n"


def test_error_replies_raise(fresh_redis):
    with pytest.raises(test_servers.CliError, match="unknown command"):
        fresh_redis.cli("NO-SUCH-COMMAND")


def test_cluster_is_ok_and_covers_every_slot(redis_cluster):
    assert len(redis_cluster.nodes) == 3
    assert redis_cluster.seeds == ",".join(f"127.0.0.1:{n.port}" for n in redis_cluster.nodes)
    for node in redis_cluster.nodes:
        assert "cluster_state:ok" in node.cli("CLUSTER", "INFO")
    slot_map = redis_cluster.slot_map(redis_cluster.nodes[0])
    assert sum(last - first + 1 for first, last, _ in slot_map) == 16384
    assert {owner for _, _, owner in slot_map} == {n.addr for n in redis_cluster.nodes}
    # A key lands on whichever master owns its slot; -c follows the MOVED there.
    node = redis_cluster.nodes[0]
    node.cli("-c", "SET", "{user:1}:name", "ada")
    assert node.cli("-c", "GET", "{user:1}:name") == "ada\n"
