#!/usr/bin/env python3
"""Real server processes for the tests, on free loopback ports, each with its own
directory for its log and data: redis-server (one standalone server, or a Redis Cluster
of N masters) and FerretDB (a MongoDB-wire server on SQLite; tools/build_ferretdb.sh
builds it, ./dev setup runs that).

As a module (pytest fixtures in tests/system/conftest.py):

    server = start_standalone(dir)         # RedisServer: .addr, .cli(...), .restart(...)
    cluster = start_cluster(dir, masters=3)  # RedisCluster: .nodes, .seeds, .stop()
    mongo = start_ferretdb(dir)            # FerretDB: .url, .command({...}), .restart()

Servers started this way are children of the calling process: they are killed when it
exits (a parent-death signal, and an atexit hook as well). The parent-death signal fires
when the *thread* that started them ends, so start them from a thread that lives as
long as they should (pytest's main thread does).

As a command (the ctest fixture, src/engine/redis/test_redis.hpp and
src/store/mongo/test_mongo.hpp):

    test_servers.py start DIR [--owner-pid PID]   # one standalone + one 3-master cluster + one FerretDB
    test_servers.py stop DIR

`start` detaches the servers (they outlive the command), writes DIR/redis.addr
("127.0.0.1:P"), DIR/redis-cluster.addr ("127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3"),
DIR/mongo.url ("mongodb://127.0.0.1:P/") and DIR/pids, and prints the three. It is a
no-op when the servers DIR names still answer (PING; a MongoDB hello). With --owner-pid,
a small watcher stops them once that process is gone, however it ended, and deletes DIR
(meant for a temporary DIR that process made). `stop` kills what `start` started and
removes those four files (the logs stay, for a post-mortem, until the next `start`).
FerretDB is $CHATORBIT_FERRETDB, else the binary tools/build_ferretdb.sh caches.

Standard library only: it runs under the system python3 as well as the test venv.
"""
from __future__ import annotations

import argparse
import atexit
import ctypes
import errno
import fcntl
import itertools
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import weakref
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
# FerretDB (a MongoDB-wire server on SQLite), as tools/build_ferretdb.sh builds it: the
# version tools/ferretdb/go.mod pins, at the machine-wide cache path that script uses.
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_GO_MOD = Path(__file__).resolve().parent / "ferretdb" / "go.mod"
HOST = "127.0.0.1"
READY_TIMEOUT = 10.0  # seconds, for any one server or the cluster to become usable
# `redis-cli --cluster create` polls the join once a second: ~2 s, sometimes a few more.
CREATE_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0  # seconds a server gets to exit on SIGTERM / SHUTDOWN before SIGKILL
PORT_ATTEMPTS = 5  # fresh ports tried when the one picked was taken in the meantime
CLUSTER_BUS_OFFSET = 10000  # a cluster node also listens on port + 10000
CLUSTER_SLOTS = 16384
# Short enough that a test killing a node sees cluster_state:fail within seconds, long
# enough that two busy cores never make a healthy node look dead.
CLUSTER_NODE_TIMEOUT_MS = 3000


class RedisError(Exception):
    """An error reply from a server (the text after '-')."""


class PortInUse(RuntimeError):
    """The server exited at start because its port (or its bus port) was taken."""


class CliError(subprocess.CalledProcessError):
    """redis-cli exited non-zero: an error reply (-e), or the server was unreachable."""

    def __str__(self) -> str:
        said = (self.stderr or "").strip() or (self.output or "").strip()
        return f"{' '.join(self.cmd)} exited with {self.returncode}: {said}"


# --- a minimal RESP client, for readiness checks without spawning redis-cli -----------


def _encode(args: tuple) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _read_reply(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed by the server")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body.decode()
    if kind == b"-":
        raise RedisError(body.decode())
    if kind == b":":
        return int(body)
    if kind == b"$":
        n = int(body)
        if n < 0:
            return None
        data = f.read(n + 2)
        if len(data) != n + 2:
            raise ConnectionError("connection closed by the server")
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        n = int(body)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise ConnectionError(f"unexpected reply {line!r}")


def command(host: str, port: int, *args, timeout: float = 2.0):
    """Sends one command on a new connection and returns the reply (str, int, list or
    None); raises RedisError for an error reply, OSError when the server cannot be
    reached or does not answer within `timeout` seconds."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(_encode(args))
        with s.makefile("rb") as f:
            return _read_reply(f)


def answers_ping(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        return command(host, port, "PING", timeout=timeout) == "PONG"
    except (OSError, RedisError):
        return False


# --- a minimal MongoDB wire client (OP_MSG and just enough BSON), for readiness checks -----

OP_MSG = 2013
_request_ids = itertools.count(1)


def _bson(doc: dict) -> bytes:
    """A BSON document of str keys and None / bool / int32 / float / str / dict / list values."""
    body = bytearray()
    for key, value in doc.items():
        name = key.encode() + b"\0"
        if value is None:
            body += b"\x0a" + name
        elif isinstance(value, bool):
            body += b"\x08" + name + (b"\x01" if value else b"\x00")
        elif isinstance(value, int):
            body += b"\x10" + name + struct.pack("<i", value)
        elif isinstance(value, float):
            body += b"\x01" + name + struct.pack("<d", value)
        elif isinstance(value, str):
            text = value.encode() + b"\0"
            body += b"\x02" + name + struct.pack("<i", len(text)) + text
        elif isinstance(value, dict):
            body += b"\x03" + name + _bson(value)
        elif isinstance(value, list):
            body += b"\x04" + name + _bson({str(i): v for i, v in enumerate(value)})
        else:
            raise TypeError(f"_bson: cannot encode {key}={value!r}")
    return struct.pack("<i", len(body) + 5) + bytes(body) + b"\0"


# BSON types whose value has a fixed size: double, ObjectId, bool, datetime, null,
# int32, timestamp, int64, decimal128, min key, max key.
_BSON_FIXED = {0x01: 8, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4, 0x11: 8, 0x12: 8, 0x13: 16, 0xFF: 0, 0x7F: 0}
# Those of them decoded (the others are left as their bytes).
_BSON_SCALARS = {0x01: lambda b: struct.unpack("<d", b)[0], 0x08: lambda b: b != b"\0", 0x0A: lambda b: None,
                 0x10: lambda b: struct.unpack("<i", b)[0], 0x12: lambda b: struct.unpack("<q", b)[0]}


def _unbson(data: bytes, pos: int = 0) -> dict:
    """The BSON document at data[pos:]: doubles, strings, bools, int32s and int64s, and
    documents and arrays of them, decoded; other values left as their raw bytes."""
    (length,) = struct.unpack_from("<i", data, pos)
    end = pos + length - 1  # the document's trailing NUL
    pos += 4
    doc = {}
    while pos < end:
        kind = data[pos]
        name_end = data.index(b"\0", pos + 1)
        name = data[pos + 1:name_end].decode()
        pos = name_end + 1
        if kind == 0x02:
            (n,) = struct.unpack_from("<i", data, pos)
            value, pos = data[pos + 4:pos + 3 + n].decode(errors="replace"), pos + 4 + n
        elif kind in (0x03, 0x04):
            (n,) = struct.unpack_from("<i", data, pos)
            value = _unbson(data, pos)
            value, pos = (list(value.values()) if kind == 0x04 else value), pos + n
        elif kind == 0x05:
            (n,) = struct.unpack_from("<i", data, pos)
            value, pos = data[pos + 5:pos + 5 + n], pos + 5 + n
        elif kind in _BSON_FIXED:
            raw, pos = data[pos:pos + _BSON_FIXED[kind]], pos + _BSON_FIXED[kind]
            value = _BSON_SCALARS[kind](raw) if kind in _BSON_SCALARS else raw
        else:
            raise ValueError(f"BSON type 0x{kind:02x} ({name!r}) not understood")
        doc[name] = value
    return doc


def _recv_exactly(s: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed by the server")
        data += chunk
    return bytes(data)


def mongo_command(host: str, port: int, doc: dict, timeout: float = 2.0) -> dict:
    """Sends one command document (with its "$db") as an OP_MSG on a new connection and
    returns the reply document; raises OSError when the server cannot be reached or does
    not answer within `timeout` seconds, ValueError for a reply it cannot read."""
    body = struct.pack("<I", 0) + b"\0" + _bson(doc)  # no flags; one section of kind 0
    request_id = next(_request_ids) & 0x7FFFFFFF
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(struct.pack("<iiii", 16 + len(body), request_id, 0, OP_MSG) + body)
        length, _, response_to, opcode = struct.unpack("<iiii", _recv_exactly(s, 16))
        reply = _recv_exactly(s, length - 16)
    if opcode != OP_MSG or response_to != request_id:
        raise ValueError(f"unexpected reply: opcode {opcode}, responseTo {response_to}")
    (flags,) = struct.unpack_from("<I", reply)
    end = len(reply) - (4 if flags & 1 else 0)  # checksumPresent: a CRC-32C at the end
    pos = 4
    while pos < end:  # sections: kind 0 is the reply document, kind 1 a document sequence
        kind, pos = reply[pos], pos + 1
        (n,) = struct.unpack_from("<i", reply, pos)
        if kind == 0:
            return _unbson(reply, pos)
        pos += n
    raise ValueError("reply without a document")


def answers_hello(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        return mongo_command(host, port, {"hello": 1, "$db": "admin"}, timeout=timeout).get("ok") == 1
    except (OSError, ValueError, struct.error):
        return False


# --- ports -------------------------------------------------------------------------------


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as redis-server binds
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(cluster_bus: bool = False) -> int:
    """A port the kernel just handed out on 127.0.0.1 (and, for a cluster node, whose
    bus port + 10000 is free too). Another process may still take it before the server
    binds it: starting retries on that."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if not cluster_bus:
            return port
        if port + CLUSTER_BUS_OFFSET < 65536 and _bindable(port + CLUSTER_BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair (port, port + 10000) found for a cluster node")


# --- processes -----------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int):
    def preexec() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


_live: "weakref.WeakSet[ServerProcess]" = weakref.WeakSet()


@atexit.register
def _kill_live_servers() -> None:
    for server in list(_live):
        server.kill()


def _tail(path: Path, lines: int = 30, start: int = 0) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class ServerProcess:
    """One server process on 127.0.0.1 working in `dir`, on a port of its own: how
    RedisServer and FerretDB are started, waited for, stopped, killed, paused and resumed.
    A subclass says how to run it (_argv), where it logs (log_path; _log_to_stdout), and
    when it is ready (_answers). Not thread-safe: drive it from one thread."""

    program = "server"  # for messages: "<program> on <addr> exited with ..."
    readiness = "answer"  # for messages: "... did not <readiness> within 10 s"
    log_name = "server.log"
    _log_to_stdout = False  # whether the log file is the process's stdout and stderr

    def __init__(self, dir: str | os.PathLike, detached: bool = False):
        self.dir = Path(dir).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self.port: int | None = None
        self.detached = detached
        self.log_path = self.dir / self.log_name
        self.proc: subprocess.Popen | None = None
        self.paused = False
        self._log_start = 0

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.addr}, pid={self.pid}, dir={self.dir})"

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _answers(self, timeout: float) -> bool:
        raise NotImplementedError

    def _free_port(self) -> int:
        return free_port()

    # Starting is split in two so that a cluster (or `start DIR`) can launch all its
    # servers before it waits for the first one.
    def _spawn(self) -> None:
        assert not self.running, f"{self} is already running"
        if self.port is None:
            self.port = self._free_port()
        args = self._argv()
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        out = open(self.log_path, "ab") if self._log_to_stdout else subprocess.DEVNULL
        try:
            if self.detached:
                # Its own session, and no fd of ours: it must outlive us, and whoever reads
                # our stdout (ctest, a C++ test's pipe) must see EOF when we exit.
                self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                             start_new_session=True)
            else:
                self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                             preexec_fn=_die_with_parent(os.getpid()))
                _live.add(self)
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # the child has its own copy
        self.paused = False

    def _wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = _tail(self.log_path, start=self._log_start)
                if "address already in use" in log.lower():
                    raise PortInUse(f"port {self.port} was taken:\n{log}")
                raise RuntimeError(f"{self.program} on {self.addr} exited with {self.proc.returncode}:\n{log}")
            if self._answers(timeout=0.5):
                return
            time.sleep(0.01)
        self.kill()
        raise RuntimeError(f"{self.program} on {self.addr} did not {self.readiness} within {READY_TIMEOUT:.0f} s:\n"
                           + _tail(self.log_path, start=self._log_start))

    def start(self):
        """Starts the server (again): on a fresh free port the first time, on the same port
        afterwards, with whatever data its directory holds (see restart())."""
        first = self.port is None
        for attempt in range(PORT_ATTEMPTS if first else 1):
            self._spawn()
            try:
                self._wait_ready(time.monotonic() + READY_TIMEOUT)
                return self
            except PortInUse:
                if not first or attempt == PORT_ATTEMPTS - 1:
                    raise
                self.port = None
        raise AssertionError("unreachable")

    def _wait_exit(self, timeout: float) -> bool:
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self) -> None:
        """Stops the server (SIGTERM; SIGKILL if it does not exit within 5 s). Does
        nothing if it is not running."""
        if not self.running:
            return
        if self.paused:
            self.resume()
        self.proc.terminate()
        if not self._wait_exit(STOP_TIMEOUT):
            self.kill()
        _live.discard(self)

    def kill(self) -> None:
        """SIGKILL: the server dies at once, as in a crash, losing what it had not saved."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.paused = False
        _live.discard(self)

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections open but answers nothing. Returns once
        the kernel reports every thread stopped: the signal is delivered asynchronously,
        and a request made in between was seen answered (FerretDB under ASan load)."""
        self.proc.send_signal(signal.SIGSTOP)
        self._wait_for_state(stopped=True)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT: the server goes on with what it had been sent while paused."""
        self.proc.send_signal(signal.SIGCONT)
        self._wait_for_state(stopped=False)
        self.paused = False

    def _wait_for_state(self, stopped: bool, timeout: float = 5.0) -> None:
        """Waits until every thread of the process is stopped ('T' in /proc), or none is."""
        deadline = time.monotonic() + timeout
        task_dir = Path(f"/proc/{self.proc.pid}/task")
        while True:
            states = []
            for stat in task_dir.glob("*/stat"):
                try:
                    # The state follows the ")" that closes the command name.
                    states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
                except (OSError, IndexError):
                    continue  # a thread that ended meanwhile
            if states and all((st in ("T", "t")) == stopped for st in states):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self!r}: threads still {states} {timeout} s after the signal")
            time.sleep(0.002)


class RedisServer(ServerProcess):
    """One redis-server process on 127.0.0.1, working in `dir` (redis.log, dump.rdb and,
    for a cluster node, nodes.conf). It does not save on its own: stop() loses the data,
    restart(keep_data=True) keeps it. Not thread-safe: drive it from one thread."""

    program = "redis-server"
    readiness = "answer PING"
    log_name = "redis.log"

    def __init__(self, dir: str | os.PathLike, extra_args: list[str] | None = None,
                 cluster_bus: bool = False, detached: bool = False):
        super().__init__(dir, detached)
        self.extra_args = list(extra_args or [])
        self.cluster_bus = cluster_bus

    def _free_port(self) -> int:
        return free_port(self.cluster_bus)

    def _argv(self) -> list[str]:
        return [REDIS_SERVER, "--port", str(self.port), "--bind", self.host, "--protected-mode", "no",
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(self.dir),
                "--dbfilename", "dump.rdb", "--logfile", str(self.log_path),
                # Tests use DEBUG (SLEEP, SET-ACTIVE-EXPIRE, ...): Redis 7 refuses it by default.
                "--enable-debug-command", "yes", *self.extra_args]

    def _answers(self, timeout: float) -> bool:
        return answers_ping(self.host, self.port, timeout=timeout)

    def restart(self, keep_data: bool) -> "RedisServer":
        """Stops the server and starts it again on the same port. keep_data=True saves
        its dataset first (SHUTDOWN SAVE) and loads it back; keep_data=False comes back
        empty. A cluster node keeps its nodes.conf (its slots and peers) either way."""
        if self.running:
            if self.paused:
                self.resume()
            if keep_data:
                try:
                    command(self.host, self.port, "SHUTDOWN", "SAVE", timeout=STOP_TIMEOUT)
                except ConnectionError:
                    pass  # the server closes the connection as it exits: the normal answer
                if not self._wait_exit(STOP_TIMEOUT):
                    raise RuntimeError(f"{self} did not exit after SHUTDOWN SAVE:\n" + _tail(self.log_path))
                _live.discard(self)
            else:
                self.stop()
        if not keep_data:
            (self.dir / "dump.rdb").unlink(missing_ok=True)
        return self.start()

    def cli(self, *args, timeout: float = 10.0) -> str:
        """Runs redis-cli against the server (options such as "-c" may come first) and
        returns its stdout. Raises CliError (a CalledProcessError) on an error reply or when
        the server cannot be reached, subprocess.TimeoutExpired after `timeout` seconds."""
        argv = [REDIS_CLI, "-e", "-h", self.host, "-p", str(self.port), *map(str, args)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise CliError(done.returncode, argv, done.stdout, done.stderr)
        return done.stdout

    def command(self, *args, timeout: float = 2.0):
        """Runs one command over a socket, without a redis-cli process (see command())."""
        return command(self.host, self.port, *args, timeout=timeout)


def start_standalone(dir: str | os.PathLike, extra_args: list[str] | None = None,
                     detached: bool = False) -> RedisServer:
    """Starts one redis-server working in `dir` and returns it once it answers PING.
    extra_args (say ["--maxmemory", "10mb"]) come last, so they override the defaults."""
    return RedisServer(dir, extra_args, detached=detached).start()


# --- FerretDB -------------------------------------------------------------------------------


def ferretdb_binary() -> str:
    """The FerretDB binary: $CHATORBIT_FERRETDB, else the one tools/build_ferretdb.sh
    installs (${XDG_CACHE_HOME:-$HOME/.cache}/chatorbit-ferretdb/<version>/ferretdb).
    Raises RuntimeError saying what to run when there is none."""
    path = os.environ.get("CHATORBIT_FERRETDB")
    if not path:
        match = re.search(rf"^\s*{re.escape(FERRETDB_MODULE)} (v\S+)", FERRETDB_GO_MOD.read_text(), re.M)
        if not match:
            raise RuntimeError(f"no '{FERRETDB_MODULE} vX.Y.Z' requirement in {FERRETDB_GO_MOD}")
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(cache, "chatorbit-ferretdb", match.group(1), "ferretdb")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"no FerretDB binary at {path}: run ./dev setup (tools/build_ferretdb.sh builds it),"
                           " or point CHATORBIT_FERRETDB at one")
    return path


class FerretDB(ServerProcess):
    """One FerretDB process on 127.0.0.1 (the SQLite handler), working in `dir`: its
    databases in dir/data, its state in dir/state, its log in dir/ferretdb.log. Clients
    connect to .url, "mongodb://127.0.0.1:P/". On SIGTERM it waits up to ~3 s for
    connected clients before it exits, so stop() with clients still connected takes that
    long. Not thread-safe: drive it from one thread."""

    program = "ferretdb"
    readiness = "answer hello"
    log_name = "ferretdb.log"
    _log_to_stdout = True  # it logs to stderr

    def __init__(self, dir: str | os.PathLike, detached: bool = False):
        self.binary = ferretdb_binary()
        super().__init__(dir, detached)
        self.data_dir = self.dir / "data"
        self.state_dir = self.dir / "state"
        self.data_dir.mkdir(exist_ok=True)
        self.state_dir.mkdir(exist_ok=True)

    @property
    def url(self) -> str:
        return f"mongodb://{self.host}:{self.port}/"

    def _argv(self) -> list[str]:
        return [self.binary, "--handler=sqlite", f"--sqlite-url=file:{self.data_dir}/",
                f"--listen-addr={self.host}:{self.port}", f"--state-dir={self.state_dir}",
                # Nothing else: no telemetry beacon, no debug HTTP listener (metrics, pprof)
                # on a second port, and only what matters in the log.
                "--telemetry=disable", "--debug-addr=-", "--log-level=warn"]

    def _answers(self, timeout: float) -> bool:
        return answers_hello(self.host, self.port, timeout=timeout)

    def restart(self) -> "FerretDB":
        """Stops the server (as stop() does) and starts it again on the same port, with
        the databases its data directory holds."""
        self.stop()
        return self.start()

    def command(self, doc: dict, timeout: float = 2.0) -> dict:
        """Runs one command (a document with its "$db") and returns the reply document
        (see mongo_command())."""
        return mongo_command(self.host, self.port, doc, timeout=timeout)


def start_ferretdb(dir: str | os.PathLike, detached: bool = False) -> FerretDB:
    """Starts one FerretDB working in `dir` and returns it once it answers hello."""
    return FerretDB(dir, detached=detached).start()


# --- cluster -------------------------------------------------------------------------------


class RedisCluster:
    """A Redis Cluster of masters only (no replicas), every node on 127.0.0.1."""

    def __init__(self, nodes: list[RedisServer]):
        self.nodes = nodes

    @property
    def seeds(self) -> str:
        """Every node's address: "127.0.0.1:P1,127.0.0.1:P2,..."."""
        return ",".join(n.addr for n in self.nodes)

    def slot_map(self, node: RedisServer) -> list[tuple[int, int, str]]:
        """CLUSTER SLOTS as `node` sees it: sorted (first slot, last slot, master addr)."""
        ranges = [(r[0], r[1], f"{r[2][0]}:{r[2][1]}") for r in node.command("CLUSTER", "SLOTS")]
        return sorted(ranges)

    def wait_ok(self, timeout: float = READY_TIMEOUT) -> None:
        """Waits until every node reports cluster_state:ok, knows every other node, and
        all of them agree on a slot map covering all 16384 slots."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                last = self._disagreement()
                if not last:
                    return
            except (OSError, RedisError) as e:
                last = str(e)
            time.sleep(0.05)
        raise RuntimeError(f"cluster {self.seeds} not ready within {timeout:.0f} s: {last}\n"
                           + "\n".join(f"--- {n.addr} ---\n{_tail(n.log_path, 10)}" for n in self.nodes))

    def _disagreement(self) -> str:
        """What keeps the cluster from being ready, or "" when it is."""
        maps = []
        for n in self.nodes:
            info = dict(line.split(":", 1) for line in n.command("CLUSTER", "INFO").split("\r\n") if ":" in line)
            if info.get("cluster_state") != "ok":
                return f"{n.addr} reports cluster_state:{info.get('cluster_state')}"
            if info.get("cluster_known_nodes") != str(len(self.nodes)):
                return f"{n.addr} knows {info.get('cluster_known_nodes')} nodes"
            maps.append(self.slot_map(n))
        if any(m != maps[0] for m in maps):
            return "nodes disagree on the slot map"
        if sum(last - first + 1 for first, last, _ in maps[0]) != CLUSTER_SLOTS:
            return "the slot map does not cover every slot"
        return ""

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()

    def kill(self) -> None:
        for n in self.nodes:
            n.kill()


def start_cluster(dir: str | os.PathLike, masters: int = 3, detached: bool = False,
                  extra_args: list[str] | None = None) -> RedisCluster:
    """Starts `masters` cluster-enabled nodes in dir/node-<i>, joins them with
    `redis-cli --cluster create`, and returns the cluster once it is ready (wait_ok).
    `extra_args` go to every node (e.g. an append-only file)."""
    root = Path(dir)
    args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(CLUSTER_NODE_TIMEOUT_MS), *(extra_args or [])]
    nodes = [RedisServer(root / f"node-{i}", args, cluster_bus=True, detached=detached) for i in range(masters)]
    try:
        for n in nodes:
            n._spawn()
        deadline = time.monotonic() + READY_TIMEOUT
        for n in nodes:
            try:
                n._wait_ready(deadline)
            except PortInUse:
                n.port = None
                n.start()
        cluster = RedisCluster(nodes)
        create = subprocess.run([REDIS_CLI, "--cluster", "create", *(n.addr for n in nodes),
                                 "--cluster-replicas", "0", "--cluster-yes"],
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=CREATE_TIMEOUT)
        if create.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed ({create.returncode}):\n"
                               f"{create.stdout}{create.stderr}")
        cluster.wait_ok()
        return cluster
    except BaseException:
        for n in nodes:
            n.kill()
        raise


# --- command line ----------------------------------------------------------------------------

STANDALONE_FILE = "redis.addr"
CLUSTER_FILE = "redis-cluster.addr"
MONGO_FILE = "mongo.url"
PIDS_FILE = "pids"
FERRETDB_DIR = "ferretdb"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)  # readers never see half a file


def _is_our_server(pid: int, dir: Path) -> bool:
    """Whether pid is a live redis-server, or the FerretDB of dir (known by its state
    directory: any binary name will do), not a zombie, not a reused pid."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    ferretdb_state = f"--state-dir={dir / FERRETDB_DIR / 'state'}".encode()
    return state != "Z" and (b"redis-server" in argv[0] or ferretdb_state in argv[1:])


def _mongo_port(url: str) -> int:
    """P, from "mongodb://127.0.0.1:P/"."""
    match = re.fullmatch(r"mongodb://[^/:]+:(\d+)/?", url)
    if not match:
        raise ValueError(f"not a mongodb://host:port/ URL: {url!r}")
    return int(match.group(1))


def _running(dir: Path) -> tuple[str, str, str] | None:
    """The addresses of the servers a previous `start` left in dir, if all still answer."""
    try:
        standalone = (dir / STANDALONE_FILE).read_text().strip()
        cluster = (dir / CLUSTER_FILE).read_text().strip()
        mongo = (dir / MONGO_FILE).read_text().strip()
        (dir / PIDS_FILE).read_text()
        mongo_port = _mongo_port(mongo)
    except (OSError, ValueError):
        return None
    for addr in [standalone, *cluster.split(",")]:
        host, _, port = addr.rpartition(":")
        if not answers_ping(host, int(port)):
            return None
    if not answers_hello(HOST, mongo_port):
        return None
    return standalone, cluster, mongo


def _kill_pids(dir: Path) -> None:
    try:
        pids = [int(p) for p in (dir / PIDS_FILE).read_text().split()]
    except (OSError, ValueError):
        pids = []
    pids = [p for p in pids if _is_our_server(p, dir)]
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    # They are not our children: poll until they are gone (or left as zombies of init).
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(_is_our_server(p, dir) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    for name in (STANDALONE_FILE, CLUSTER_FILE, MONGO_FILE, PIDS_FILE):
        (dir / name).unlink(missing_ok=True)


class _Lock:
    """An exclusive flock on dir/.lock: two `start`s on one dir cannot interleave."""

    def __init__(self, dir: Path):
        dir.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)

    def __enter__(self):
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def _wait_started(server: ServerProcess) -> None:
    """Waits for a server _spawn()ed earlier; on a port taken meanwhile, starts it on another."""
    try:
        server._wait_ready(time.monotonic() + READY_TIMEOUT)
    except PortInUse:
        server.port = None
        server.start()


def cli_start(dir: Path, owner_pid: int | None) -> int:
    with _Lock(dir):
        running = _running(dir)
        if running:
            print(*running, sep="\n")
            return 0
        _kill_pids(dir)  # a partly dead previous run
        for old in ("standalone", "cluster", FERRETDB_DIR):
            shutil.rmtree(dir / old, ignore_errors=True)  # its nodes.conf would stop a new cluster
        started = time.monotonic()
        # Each server is launched before the first one is waited for: FerretDB and the
        # standalone redis-server come up while the cluster forms.
        mongo = FerretDB(dir / FERRETDB_DIR, detached=True)  # fails here, before any start, without a binary
        server = RedisServer(dir / "standalone", detached=True)
        spawned: list[ServerProcess] = []
        try:
            mongo._spawn()
            spawned.append(mongo)
            server._spawn()
            spawned.append(server)
            cluster = start_cluster(dir / "cluster", 3, detached=True)  # kills its nodes if it fails
            spawned += cluster.nodes
            _wait_started(server)
            _wait_started(mongo)
        except BaseException:
            for s in spawned:
                s.kill()
            raise
        _write(dir / PIDS_FILE, "".join(f"{s.pid}\n" for s in [server, *cluster.nodes, mongo]))
        _write(dir / STANDALONE_FILE, server.addr + "\n")
        _write(dir / CLUSTER_FILE, cluster.seeds + "\n")
        _write(dir / MONGO_FILE, mongo.url + "\n")
        if owner_pid is not None:
            subprocess.Popen([sys.executable, os.path.abspath(__file__), "_watch", str(dir), str(owner_pid)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        print(server.addr, cluster.seeds, mongo.url, sep="\n")
        print(f"started in {time.monotonic() - started:.2f} s under {dir}", file=sys.stderr)
        return 0


def cli_stop(dir: Path) -> int:
    if dir.is_dir():
        with _Lock(dir):
            _kill_pids(dir)
    return 0


def cli_watch(dir: Path, owner_pid: int) -> int:
    """Blocks until owner_pid has exited, then stops the servers in dir and deletes it."""
    try:
        fd = os.pidfd_open(owner_pid)
    except OSError as e:
        if e.errno != errno.ESRCH:
            raise
    else:
        select.select([fd], [], [])
        os.close(fd)
    cli_stop(dir)
    shutil.rmtree(dir, ignore_errors=True)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    start = sub.add_parser("start", help="start a standalone server, a 3-master cluster and a FerretDB under DIR")
    start.add_argument("dir", type=Path)
    start.add_argument("--owner-pid", type=int, help="stop them and delete DIR once this process has exited")
    stop = sub.add_parser("stop", help="kill what `start DIR` started")
    stop.add_argument("dir", type=Path)
    watch = sub.add_parser("_watch")  # internal: the --owner-pid watcher
    watch.add_argument("dir", type=Path)
    watch.add_argument("owner_pid", type=int)
    a = parser.parse_args(argv)
    dir = a.dir.resolve()
    if a.action == "start":
        return cli_start(dir, a.owner_pid)
    if a.action == "stop":
        return cli_stop(dir)
    return cli_watch(dir, a.owner_pid)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except RuntimeError as e:
        print(f"test_servers.py: {e}", file=sys.stderr)
        sys.exit(1)
