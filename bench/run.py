"""Benchmarks side by side: channels_sio against python-socketio on the same ASGI servers.

    python bench/run.py [--rounds 3] [--quick] [--scenarios echo polling fanout connect cluster]
    python bench/run.py --scenarios recovery-echo recovery-fanout
    python bench/run.py --scenarios echo connect --baseline REV

One run alternates the servers A B A B over the rounds: channels_sio (the example project with
``example_project.settings_bench``) and python-socketio's ASGI app with the same handlers
(``bench/servers/pysio_app.py``), each under uvicorn and under daphne, and a raw ASGI WebSocket
echo under uvicorn as the floor (echo only), and Node's socket.io with the same handlers as a
column for reference (``bench/servers/socketio_server.js``; not in the cluster scenario, and not
in the ratios). The servers run a copy of the code under test taken
when the run starts (others may edit the work tree meanwhile). Every (round, scenario, server)
gets a fresh server process pinned to core 0; the load generator (``bench/client/bench.js``,
the official socket.io-client on Node) is pinned to core 1, and reads the server's CPU time
(utime + stime of /proc/PID/stat) right before and after its measured window.

The cluster scenario runs ``cluster.workers`` uvicorn processes of each app on Redis
(``settings_bench_redis``; ``bench/servers/pysio_redis_app.py``), all pinned to core 0, in a
Redis database of the benchmark's own (``--redis-url``), flushed before every measurement; the
server's CPU is summed over the processes, and Redis's command counts are read around the window.

The recovery scenarios (asked for with --scenarios: recovery-echo, an echo the server sends back
with ``socket.emit``, and recovery-fanout) run channels_sio with connection state recovery off
and on with each store (``channels_sio+memory``, ``+database``, ``+redis``: settings_bench's
RECOVERY_STORE), python-socketio, and Node's socket.io without and with
connectionStateRecovery (``socket.io+recovery``). The database store records in a PostgreSQL
database the run creates, migrates and drops (``--postgres-url``; or ``--recovery-database
sqlite``), the Redis store in the benchmark's Redis database. They add a table: each store's CPU
per unit over recovery off (RECOVERY_COST_TARGETS) and its margin over python-socketio.
bench/restore.py measures one client's restore per store.

Monitoring (the live-session registry, on by default) writes every channels_sio server's
sessions to the project's database: each server gets a SQLite file of the run (``EXAMPLE_DB``;
migrated once at the start with settings_bench, copied afresh for every measurement), or the
database store's database, and a row fails unless its node's row is in that registry (or, with
monitoring off, is not). ``channels_sio-nomon`` (settings_bench's MONITORING=0) runs in the
echo and connect scenarios (``--compare-scenarios``), and ``--baseline REV`` adds
``channels_sio@REV`` there: that git revision's channels_sio, example project and bench servers
(``git archive``), with its own settings_bench and its own migrated SQLite file. In the recovery
scenarios the baseline runs with recovery off and with each store of ``--apps``
(``channels_sio+redis@REV``, ...; the database store in a database of its own, migrated by that
revision), each right after this code's row. They add a table: channels_sio's CPU per unit (or
its row's of the same store) over the variant's, same server, same round (monitoring on / off,
this code / the baseline; MONITORING_COST_TARGET).

It prints a table per scenario (median and min-max of throughput and of the server's CPU time
per unit over the rounds), the ratio channels_sio / python-socketio per round on the same ASGI
server, and writes everything to ``bench/results/bench-<time>.json`` (``--out`` to choose).
Every subprocess and every wait is bounded in time; every process it started is stopped on exit,
on error and on SIGINT / SIGTERM. Only 127.0.0.1 is used. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import http.client
import io
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
CLIENT_DIR = BENCH_DIR / "client"
CLIENT_SCRIPT = CLIENT_DIR / "bench.js"
RESULTS_DIR = BENCH_DIR / "results"

SCENARIOS = (
    "echo",
    "polling",
    "fanout",
    "connect",
    "cluster",
    "recovery-echo",
    "recovery-fanout",
)
# Connection state recovery: the echo answered with socket.emit (recorded; an acknowledgement
# never is) and the fan-out, each server with recovery off and on (the APPS with ``store``).
RECOVERY_SCENARIOS = ("recovery-echo", "recovery-fanout")
# A run without --scenarios: the recovery scenarios need PostgreSQL as well, and are asked for.
DEFAULT_SCENARIOS = tuple(s for s in SCENARIOS if s not in RECOVERY_SCENARIOS)
# The load generator's scenario (bench/client/bench.js), where it is not the same name.
CLIENT_SCENARIOS = {"recovery-echo": "echo-emit", "recovery-fanout": "fanout"}
UNITS = {
    "echo": "msg",
    "polling": "msg",
    "fanout": "delivery",
    "connect": "conn",
    "cluster": "delivery",
    "recovery-echo": "msg",
    "recovery-fanout": "delivery",
}
SERVER_CORE = 0
CLIENT_CORE = 1


@dataclass(frozen=True)
class App:
    name: str
    target: str  # module:attribute of the ASGI application
    cwd: str  # relative to the source root (the work tree, or its snapshot)
    pythonpath: tuple[str, ...]  # idem
    env: tuple[tuple[str, str], ...] = ()
    socketio: bool = True  # False: the raw WebSocket echo (no Socket.IO, echo scenario only)
    node: bool = False  # True: ``target`` is a Node script, run by node rather than an ASGI server
    # With connection state recovery on: the app without it (its "off" row) and the store.
    # Such apps run in the recovery scenarios only.
    recovery_of: str | None = None
    store: str | None = None  # "memory", "database", "redis"; Node's: "memory" (its adapter)
    django: bool = False  # the example project: a database for monitoring's registry
    monitoring: bool = True  # (django) settings_bench's MONITORING: the registry is written
    # A variant of channels_sio compared with it (MONITORING_COST_TARGET): "nomon" (monitoring
    # off, in the --compare-scenarios only) or "baseline" (another revision's code: in the
    # --compare-scenarios, and in the recovery scenarios with recovery off and each store).
    variant: str | None = None
    # (variant) The app of the code under test that it is compared with, same server and round.
    counterpart: str = "channels_sio"


CHANNELS_SIO_ENV = (
    ("DJANGO_SETTINGS_MODULE", "example_project.settings_bench"),
    ("DJANGO_DEBUG", "0"),
)


def _channels_sio(store: str | None = None) -> App:
    """channels_sio, with recovery off or on with ``store`` (settings_bench's RECOVERY_STORE;
    the database store's DATABASE_URL and the Redis store's REDIS_URL are the run's)."""
    return App(
        "channels_sio" if store is None else f"channels_sio+{store}",
        "example_project.asgi:application",
        "example_project",
        ("example_project", "."),
        CHANNELS_SIO_ENV if store is None else (*CHANNELS_SIO_ENV, ("RECOVERY_STORE", store)),
        recovery_of=None if store is None else "channels_sio",
        store=store,
        django=True,
    )


#: channels_sio with monitoring off (settings_bench's MONITORING=0).
NOMON = "channels_sio-nomon"
#: The baseline's app: ``channels_sio@REV`` (--baseline REV), the code of that git revision;
#: with a store, ``channels_sio+STORE@REV``.
BASELINE_PREFIX = "channels_sio@"
#: The stores whose rows get a baseline row too (the recovery scenarios).
STORES = ("memory", "database", "redis")


def baseline_name(rev: str, store: str | None = None) -> str:
    """The baseline's app of ``rev``: recovery off, or on with ``store``."""
    return f"{BASELINE_PREFIX}{rev}" if store is None else f"channels_sio+{store}@{rev}"


def baseline_app(rev: str, store: str | None = None) -> App:
    """channels_sio at git revision ``rev`` (its own settings_bench; the run exports its code),
    with recovery off or on with ``store``, compared with this code's row of the same store."""
    this = _channels_sio(store)
    return replace(
        this,
        name=baseline_name(rev, store),
        recovery_of=None if store is None else baseline_name(rev),
        variant="baseline",
        counterpart=this.name,
    )


def parse_baseline(name: str) -> tuple[str, str | None] | None:
    """(rev, store) of a baseline's app name; None when it is not one."""
    head, at, rev = name.partition("@")
    if not at or not rev:
        return None
    if head == "channels_sio":
        return rev, None
    store = head.removeprefix("channels_sio+")
    return (rev, store) if store != head and store in STORES else None


NODE_SERVER = "bench/servers/socketio_server.js"
APPS = {
    "channels_sio": _channels_sio(),
    "channels_sio+memory": _channels_sio("memory"),
    "channels_sio+database": _channels_sio("database"),
    "channels_sio+redis": _channels_sio("redis"),
    NOMON: App(
        NOMON,
        "example_project.asgi:application",
        "example_project",
        ("example_project", "."),
        (*CHANNELS_SIO_ENV, ("MONITORING", "0")),
        django=True,
        monitoring=False,
        variant="nomon",
    ),
    "python-socketio": App("python-socketio", "bench.servers.pysio_app:app", ".", (".",)),
    "raw": App("raw", "bench.servers.raw_echo:app", ".", (".",), socketio=False),
    "socket.io": App("socket.io", NODE_SERVER, ".", (), node=True),
    # connectionStateRecovery on, Node's in-memory adapter recording.
    "socket.io+recovery": App(
        "socket.io+recovery",
        NODE_SERVER,
        ".",
        (),
        (("SOCKETIO_RECOVERY", "1"),),
        node=True,
        recovery_of="socket.io",
        store="memory",
    ),
}
# The same apps on Redis, for the cluster scenario: REDIS_URL is given to these only.
CLUSTER_APPS = {
    "channels_sio": App(
        "channels_sio",
        "example_project.asgi:application",
        "example_project",
        ("example_project", "."),
        (("DJANGO_SETTINGS_MODULE", "example_project.settings_bench_redis"), ("DJANGO_DEBUG", "0")),
        django=True,
    ),
    "python-socketio": App("python-socketio", "bench.servers.pysio_redis_app:app", ".", (".",)),
}
CLUSTER_ASGI = "uvicorn"
# The Redis database of the cluster scenario (on REDIS_URL's server): flushed before and after
# every measurement, so no run sees another run's nodes.
CLUSTER_REDIS_DB = 5
# The Redis command that carries one channel-layer message, per app. python-socketio publishes
# each broadcast once (PUBLISH; Redis pushes it to every subscribed process). channels-redis
# checks a channel's capacity with one ZCOUNT before it enqueues each message, in send() and,
# inside its Lua script, for each channel of a group_send: ZCOUNT counts the messages (ZADD
# would also count the receiver's backup copy and group joins).
LAYER_MESSAGE_COMMAND = {"channels_sio": "zcount", "python-socketio": "publish"}
ASGI_SERVERS = ("uvicorn", "daphne")
# What runs a Node app (APPS[...].node): not an ASGI server, so --asgi does not select it.
NODE = "node"
# The order of one round: the pair compared on each ASGI server runs back to back (A B), then
# the floor. Rounds repeat it: A B A B. In the recovery scenarios, channels_sio with recovery
# off is followed by its stores, then python-socketio. In the --compare-scenarios, channels_sio
# is followed by channels_sio-nomon and the baseline (ordered_configs).
CONFIGS = (
    ("channels_sio", "uvicorn"),
    (NOMON, "uvicorn"),
    ("channels_sio+memory", "uvicorn"),
    ("channels_sio+database", "uvicorn"),
    ("channels_sio+redis", "uvicorn"),
    ("python-socketio", "uvicorn"),
    ("channels_sio", "daphne"),
    (NOMON, "daphne"),
    ("channels_sio+memory", "daphne"),
    ("channels_sio+database", "daphne"),
    ("channels_sio+redis", "daphne"),
    ("python-socketio", "daphne"),
    ("socket.io", NODE),
    ("socket.io+recovery", NODE),
    ("raw", "uvicorn"),
    ("raw", "daphne"),
)
# Where channels_sio's variants run (channels_sio-nomon, the baseline), unless --compare-scenarios
# says otherwise: the "echo and connect within 3%".
COMPARE_SCENARIOS = ("echo", "connect")


def app_named(name: str) -> App:
    """APPS[name], or a baseline's app (``channels_sio@REV``, ``channels_sio+STORE@REV``)."""
    if name in APPS:
        return APPS[name]
    parsed = parse_baseline(name)
    if parsed is not None:
        return baseline_app(*parsed)
    raise KeyError(name)


def ordered_configs(apps: Iterable[str] = ()) -> list[tuple[str, str]]:
    """CONFIGS, with each baseline app among ``apps`` right after its counterpart's place on
    every ASGI server: channels_sio, channels_sio-nomon, channels_sio@REV, back to back, and
    each store's row, then its baseline (channels_sio+redis, channels_sio+redis@REV)."""
    after: dict[str, list[str]] = {}
    for name in dict.fromkeys(apps):
        if name not in APPS and parse_baseline(name) is not None:
            counterpart = app_named(name).counterpart
            after.setdefault(NOMON if counterpart == "channels_sio" else counterpart, []).append(
                name
            )
    configs = []
    for app, server in CONFIGS:
        configs.append((app, server))
        configs += [(baseline, server) for baseline in after.get(app, ())]
    return configs


# Client parameters per preset and scenario (bench/client/bench.js options, and the runner's:
# RUNNER_OPTIONS). count: round trips (echo, polling), broadcasts (fanout, cluster); clients:
# connections held (connect), spread round-robin over the workers (cluster). Polling keeps
# its HTTP connections alive, as browsers do (socket.io-client's Node default opens a connection
# per request, which costs the client core more than the server: --set polling.keepalive=0),
# and its requests are made by Node's http module (polling-impl "http", bench.js's
# NodeHttpPolling) rather than the XMLHttpRequest emulation, which caps the throughput at the
# load generator's core (--set polling.polling-impl=xhr).
Param = float | str
PRESETS: dict[str, dict[str, dict[str, Param]]] = {
    "full": {
        "echo": {"clients": 50, "count": 250000, "warmup": 20, "window-seconds": 25},
        "polling": {
            "clients": 50,
            "count": 30000,
            "warmup": 4,
            "window-seconds": 25,
            "keepalive": 1,
            "polling-impl": "http",
        },
        "fanout": {"clients": 1000, "count": 250, "warmup": 3, "window-seconds": 25},
        "connect": {"clients": 2000, "warmup": 20, "window-seconds": 25},
        "recovery-echo": {"clients": 50, "count": 250000, "warmup": 20, "window-seconds": 25},
        "recovery-fanout": {"clients": 1000, "count": 250, "warmup": 3, "window-seconds": 25},
        "cluster": {
            "workers": 2,
            "clients": 500,
            "count": 200,
            "warmup": 5,
            "window-seconds": 25,
        },
    },
    "quick": {
        "echo": {"clients": 50, "count": 4000, "warmup": 5, "window-seconds": 10},
        "polling": {
            "clients": 20,
            "count": 1000,
            "warmup": 2,
            "window-seconds": 10,
            "keepalive": 1,
            "polling-impl": "http",
        },
        "fanout": {"clients": 200, "count": 20, "warmup": 2, "window-seconds": 10},
        "connect": {"clients": 200, "warmup": 10, "window-seconds": 10},
        "cluster": {"workers": 2, "clients": 200, "count": 100, "warmup": 3, "window-seconds": 10},
        "recovery-echo": {"clients": 50, "count": 4000, "warmup": 5, "window-seconds": 10},
        "recovery-fanout": {"clients": 200, "count": 20, "warmup": 2, "window-seconds": 10},
    },
    "smoke": {
        "echo": {"clients": 4, "count": 100, "warmup": 2, "window-seconds": 5},
        "polling": {
            "clients": 3,
            "count": 30,
            "warmup": 1,
            "window-seconds": 5,
            "keepalive": 1,
            "polling-impl": "http",
        },
        "fanout": {"clients": 10, "count": 5, "warmup": 1, "window-seconds": 5},
        "connect": {"clients": 10, "warmup": 2, "window-seconds": 5, "settle-ms": 200},
        "cluster": {"workers": 2, "clients": 6, "count": 5, "warmup": 1, "window-seconds": 5},
        "recovery-echo": {"clients": 4, "count": 100, "warmup": 2, "window-seconds": 5},
        "recovery-fanout": {"clients": 10, "count": 5, "warmup": 1, "window-seconds": 5},
    },
}

# The targets: same-run ratio channels_sio / python-socketio on the same ASGI server.
# With recovery on, every store keeps the margins of the scenario without it.
TARGETS = {
    ("echo", "uvicorn"): 2.5,
    ("fanout", "uvicorn"): 2.5,
    ("polling", "uvicorn"): 1.5,
    ("connect", "uvicorn"): 1.3,
    ("echo", "daphne"): 1.8,
    ("recovery-echo", "uvicorn"): 2.5,
    ("recovery-fanout", "uvicorn"): 2.5,
    ("recovery-echo", "daphne"): 1.8,
}
# What recovery may cost (issue, section 6): the CPU per unit with it on over the same server's
# with it off, same round, at most this, per store (the record's ``recovery_store``; the
# database store's target is PostgreSQL's). Node's socket.io has no target: it is a reference.
RECOVERY_COST_TARGETS = {"memory": 1.15, "redis": 1.3, "postgresql": 1.5}
# What monitoring may cost (and what this code may cost against the baseline): channels_sio's
# CPU per unit over channels_sio-nomon's (over the baseline's), same server, same round.
MONITORING_COST_TARGET = 1.03
TARGET_RSS_KB_PER_IDLE_CONN = 28.0
# Scenario-specific columns of the tables: (title, key of the run record and of the summary).
EXTRA_COLUMNS = {
    "connect": (("RSS KB / idle conn", "rss_kb_per_idle_conn"),),
    "cluster": (
        ("Redis commands / broadcast", "redis_commands_per_broadcast"),
        ("layer messages / broadcast", "layer_messages_per_broadcast"),
        ("Redis CPU µs/delivery", "redis_cpu_us_per_unit"),
    ),
}
MIN_ROUNDS_FOR_VERDICT = 3

FLAG_OPTIONS = {"keepalive"}  # bench.js options without a value
RUNNER_OPTIONS = {"workers"}  # parameters of the servers, not of bench.js

SERVER_START_TIMEOUT = 40.0
SERVER_STOP_TIMEOUT = 10.0
CLIENT_SETUP_SECONDS = 60.0  # connecting the clients, warming up, closing: on top of the window


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -------------------------------------------------------------------------------------------
# Processes


_live: dict[int, subprocess.Popen[bytes]] = {}


def _child_setup(cores: set[int] | None) -> Any:
    """preexec_fn of every child: pinned to ``cores``; killed if this process dies."""
    try:
        libc: Any = ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - not Linux
        libc = None

    def setup() -> None:
        if cores:
            os.sched_setaffinity(0, cores)
        if libc is not None:
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return setup


def _terminate(proc: subprocess.Popen[bytes], timeout: float = SERVER_STOP_TIMEOUT) -> int | None:
    """SIGTERM, then SIGKILL after ``timeout``; forgets the process; returns its exit code."""
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    finally:
        _live.pop(proc.pid, None)
    return proc.returncode


def stop_all() -> None:
    for proc in list(_live.values()):
        with contextlib.suppress(Exception):
            _terminate(proc, 3.0)


def _on_signal(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def affinity() -> tuple[set[int] | None, set[int] | None, str]:
    """(server cores, client cores, description); no pinning with fewer than two cores."""
    try:
        available = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return None, None, "not pinned (no sched_setaffinity)"
    if len(available) < 2:
        return None, None, f"not pinned: only core(s) {available} available"
    server, client = (
        (SERVER_CORE, CLIENT_CORE)
        if {SERVER_CORE, CLIENT_CORE} <= set(available)
        else (available[0], available[1])
    )
    return {server}, {client}, f"server on core {server}, client on core {client}"


#: Variables a server gets from its app and the run only, never from this process's
#: environment: REDIS_URL turns the example project into a cluster member; DATABASE_URL,
#: RECOVERY_STORE and SOCKETIO_RECOVERY choose connection state recovery and its store;
#: DATABASE_URL and EXAMPLE_DB the database of monitoring's registry, MONITORING whether it is on.
NOT_INHERITED = frozenset(
    (
        "REDIS_URL",
        "DATABASE_URL",
        "EXAMPLE_DB",
        "MONITORING",
        "RECOVERY_STORE",
        "SOCKETIO_RECOVERY",
        "PYTHONASYNCIODEBUG",
    )
)

#: uvicorn's WebSocket implementation: ``websockets-sansio`` is the one uvicorn recommends (its
#: ``websockets`` is the deprecated legacy implementation, which ``--ws auto`` will stop using).
UVICORN_WS = ("websockets-sansio", "websockets", "wsproto")


class Server:
    """One ASGI server process serving one app; ``pid`` is the process the client measures."""

    def __init__(
        self,
        app: App,
        asgi: str,
        cores: set[int] | None,
        log_dir: Path,
        root: Path = ROOT,
        env: dict[str, str] | None = None,
        uvicorn_ws: str = UVICORN_WS[0],
    ) -> None:
        self.app = app
        self.root = root
        self.asgi = asgi
        self.uvicorn_ws = uvicorn_ws
        self.cores = cores
        self.env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        name = "".join(c if c.isalnum() or c in "+-_.@" else "_" for c in app.name)  # a rev's /
        self.log_path = log_dir / f"{name}-{asgi}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self.started = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        if self.app.node:
            return ["node", self.app.target, "--port", str(self.port)]
        if self.asgi == "uvicorn":
            return [
                sys.executable,
                "-m",
                "uvicorn",
                self.app.target,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--ws",
                self.uvicorn_ws,
                "--ws-per-message-deflate",
                "false",
                "--no-access-log",
                "--log-level",
                "warning",
                "--lifespan",
                "on",
            ]
        if self.asgi == "daphne":
            # No access log below verbosity 1; daphne (autobahn) does not negotiate
            # permessage-deflate unless told to, so compression is off as for uvicorn.
            return [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-v",
                "0",
                self.app.target,
            ]
        raise ValueError(f"unknown ASGI server {self.asgi}")

    def start(self, timeout: float = SERVER_START_TIMEOUT) -> float:
        """Start and wait until it answers HTTP; returns the seconds that took."""
        self.spawn()
        return self.wait_ready(self.started + timeout)

    def spawn(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        env.update(self.app.env)
        env.update(self.env)
        # First on the path: the source root's channels_sio wins over the editable install.
        env["PYTHONPATH"] = os.pathsep.join(str(self.root / p) for p in self.app.pythonpath)
        # A Node server's packages are the load generator's (bench/client/package-lock.json).
        env["NODE_PATH"] = str(CLIENT_DIR / "node_modules")
        self.started = time.monotonic()
        with self.log_path.open("wb") as log_file:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.root / self.app.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=_child_setup(self.cores),
            )
        _live[self.proc.pid] = self.proc

    def wait_ready(self, deadline: float) -> float:
        """Wait until it answers HTTP (until ``deadline``, monotonic); seconds since spawn()."""
        assert self.proc is not None
        # Any HTTP answer from the application: an Engine.IO error for an unknown transport
        # (no session is created), or the raw echo's 404.
        path = "/socket.io/?EIO=4&transport=bench-ready" if self.app.socketio else "/"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self} exited at start:\n{self.log_tail()}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", path)
                conn.getresponse().read()
                return time.monotonic() - self.started
            except OSError:
                time.sleep(0.1)
            finally:
                conn.close()
        waited = deadline - self.started
        raise RuntimeError(f"{self} did not answer within {waited:.0f} s:\n{self.log_tail()}")

    def stop(self) -> int | None:
        if self.proc is not None:
            self.exit_code = _terminate(self.proc)
        return self.exit_code

    def log_tail(self, size: int = 3000) -> str:
        return self.log_text()[-size:]

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __str__(self) -> str:
        return f"{self.app.name}@{self.asgi}"


def ensure_client() -> None:
    if shutil.which("node") is None:
        raise SystemExit("Node.js is required (node on PATH)")
    if not (CLIENT_DIR / "node_modules" / "socket.io-client").is_dir():
        log("installing the load generator's packages: npm ci in bench/client")
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CLIENT_DIR,
            check=True,
            timeout=300,
        )


def run_client(
    scenario: str,
    servers: Sequence[Server],
    params: dict[str, Param],
    cores: set[int] | None,
    redis_url: str | None = None,
) -> dict[str, Any]:
    """Run the load generator once against ``servers`` (one, or the processes of a cluster);
    its JSON result (``ok`` false on error)."""
    if servers[0].app.socketio:
        client_scenario = CLIENT_SCENARIOS.get(scenario, scenario)
    else:
        client_scenario = "raw-echo"
    window = float(params.get("window-seconds", 25))
    deadline = window + CLIENT_SETUP_SECONDS
    args = [
        "node",
        str(CLIENT_SCRIPT),
        "--scenario",
        client_scenario,
        "--url",
        ",".join(server.url for server in servers),
        "--pid",
        ",".join(str(server.pid) for server in servers),
        "--clk-tck",
        str(os.sysconf("SC_CLK_TCK")),
        "--deadline-seconds",
        str(deadline),
    ]
    if redis_url:
        args += ["--redis-url", redis_url]
    for key, value in params.items():
        if key in RUNNER_OPTIONS:
            continue
        if key in FLAG_OPTIONS:
            args += [f"--{key}"] if value else []
        else:
            args += [f"--{key}", str(value)]
    try:
        proc = subprocess.run(
            args,
            cwd=CLIENT_DIR,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=deadline + 15,
            preexec_fn=_child_setup(cores),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"load generator still running after {deadline + 15} s"}
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {
            "ok": False,
            "error": f"load generator exited {proc.returncode} without a result",
            "stderr": proc.stderr[-2000:],
        }
    if proc.returncode != 0 or proc.stderr.strip():
        result.setdefault("stderr", proc.stderr[-2000:])
    return result


# -------------------------------------------------------------------------------------------
# The run


def configs_for(
    scenario: str,
    apps: Sequence[str],
    servers: Sequence[str],
    compare: Sequence[str] = COMPARE_SCENARIOS,
) -> list[tuple[str, str]]:
    """The (app, server) pairs of one scenario, in the order of a round. ``apps`` may name
    baselines (``channels_sio@REV``, ``channels_sio+STORE@REV``); channels_sio's variants run in
    ``compare`` only, but for the baseline's, which also run in the recovery scenarios."""
    chosen = []
    for app, asgi in ordered_configs(apps):
        definition = app_named(app)
        if app not in apps or (asgi not in servers and not definition.node):
            continue
        if not definition.socketio and scenario != "echo":
            continue
        if definition.recovery_of and scenario not in RECOVERY_SCENARIOS:
            continue
        compared_here = scenario in compare or (
            definition.variant == "baseline" and scenario in RECOVERY_SCENARIOS
        )
        if definition.variant and (not compared_here or scenario == "cluster"):
            continue
        if scenario == "cluster" and (app not in CLUSTER_APPS or asgi != CLUSTER_ASGI):
            continue
        chosen.append((app, asgi))
    return chosen


def default_redis_url() -> str:
    """The cluster scenario's Redis: REDIS_URL's server (else 127.0.0.1:6379), its own database."""
    base = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379"
    return urlunsplit(urlsplit(base)._replace(path=f"/{CLUSTER_REDIS_DB}"))


@contextlib.contextmanager
def redis_client(url: str) -> Iterator[Any]:
    """A redis-py client, bounded in time; its errors become RuntimeError (a failed run)."""
    import redis  # only the Redis rows need it; channels-redis depends on it

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        yield client
    except redis.RedisError as exc:
        raise RuntimeError(f"Redis at {url}: {exc}") from exc
    finally:
        client.close()


def default_postgres_url() -> str:
    """The PostgreSQL server of the database store's rows: ``CSIO_POSTGRES_URL``, as for the
    test suite (else the local server, user postgres); the run connects to that URL's database
    to create and drop a database of its own."""
    return os.environ.get("CSIO_POSTGRES_URL") or "postgres://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def postgres(url: str) -> Iterator[Any]:
    """A psycopg connection in autocommit, bounded in time; its errors become RuntimeError."""
    import psycopg  # only the database store's rows on PostgreSQL need it (the dev extras)

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
            yield connection
    except psycopg.Error as exc:
        raise RuntimeError(f"PostgreSQL at {url}: {exc}") from exc


#: How the database store's rows get their database (--recovery-database).
RECOVERY_DATABASES = ("postgres", "sqlite")
MIGRATE_TIMEOUT = 120.0


class RecoveryDatabase:
    """The database of the ``channels_sio+database`` rows, migrated once, at the start.

    PostgreSQL: a database of the run's own on the server of ``postgres_url``, emptied before
    every measurement (channels_sio's tables truncated) and dropped at the end. SQLite: a
    migrated file in the run's directory, copied afresh for every measurement.
    """

    def __init__(self, kind: str, postgres_url: str, workdir: Path, root: Path = ROOT) -> None:
        if kind not in RECOVERY_DATABASES:
            raise ValueError(f"unknown recovery database {kind!r}")
        self.kind = kind
        self.postgres_url = postgres_url
        self.root = root
        self.name = f"csio_bench_{os.getpid()}_{secrets.token_hex(3)}"
        self.version = ""
        self.created = False
        #: Whether its migrations made monitoring's registry (set by create()).
        self.has_registry = False
        self._template = workdir / "recovery-template.sqlite3"
        self._file = workdir / "recovery.sqlite3"

    @property
    def backend(self) -> str:
        """The store of the rows in the results (``recovery_store``): postgresql or sqlite."""
        return "postgresql" if self.kind == "postgres" else "sqlite"

    @property
    def url(self) -> str:
        """The servers' DATABASE_URL."""
        if self.kind == "postgres":
            return urlunsplit(urlsplit(self.postgres_url)._replace(path=f"/{self.name}"))
        return f"sqlite:///{self._file}"

    def create(self) -> None:
        """Create the database and migrate it (every app of settings_bench)."""
        if self.kind == "sqlite":
            self.version = f"SQLite {sqlite3.sqlite_version}"
            migrate(self.root, {"DATABASE_URL": f"sqlite:///{self._template}"})
            self.has_registry = REGISTRY_TABLE in sqlite_tables(self._template)
            return
        with postgres(self.postgres_url) as connection:
            row = connection.execute("SHOW server_version").fetchone()
            self.version = f"PostgreSQL {row[0] if row else '?'}"
            connection.execute(f'CREATE DATABASE "{self.name}"')
        self.created = True
        migrate(self.root, {"DATABASE_URL": self.url})
        with postgres(self.url) as connection:
            row = connection.execute("SELECT to_regclass(%s)", (REGISTRY_TABLE,)).fetchone()
            self.has_registry = bool(row and row[0])

    def node_pids(self) -> set[int] | None:
        """The process ids of the nodes in monitoring's registry; None without the registry."""
        if not self.has_registry:
            return None
        if self.kind == "sqlite":
            return sqlite_node_pids(self._file)
        with postgres(self.url) as connection:
            return {pid for (pid,) in connection.execute(f"SELECT pid FROM {REGISTRY_TABLE}")}

    def reset(self) -> None:
        """Before a measurement: no packet or session of an earlier one."""
        if self.kind == "sqlite":
            for suffix in ("-wal", "-shm", "-journal"):
                self._file.with_name(self._file.name + suffix).unlink(missing_ok=True)
            shutil.copyfile(self._template, self._file)
            return
        with postgres(self.url) as connection:
            tables = [
                f'"{name}"'
                for (name,) in connection.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                    "AND tablename LIKE 'channels\\_sio\\_%'"
                )
            ]
            if tables:
                connection.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")

    def drop(self) -> None:
        if self.created:
            with postgres(self.postgres_url) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created = False

    def describe(self) -> str:
        if self.kind == "sqlite":
            return f"{self.version}, a migrated file copied afresh for every measurement"
        where = urlsplit(self.postgres_url)
        return (
            f"{self.version} at {where.hostname}:{where.port or 5432}, database {self.name}: "
            "migrated at the start, channels_sio's tables truncated before every measurement, "
            "dropped at the end"
        )


#: Monitoring's registry: a node's row (its process id) per server process that wrote it.
REGISTRY_TABLE = "channels_sio_node"


def migrate(root: Path, database: dict[str, str]) -> None:
    """``manage.py migrate`` of the example project under ``root`` (that tree's code and
    migrations, settings_bench) on the database that ``database`` names (DATABASE_URL, or the
    SQLite file of EXAMPLE_DB)."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env.update(CHANNELS_SIO_ENV)
    env.update(database)
    env["PYTHONPATH"] = os.pathsep.join(str(root / p) for p in ("example_project", "."))
    where = " ".join(f"{k}={v}" for k, v in database.items())
    try:
        proc = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=root / "example_project",
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=MIGRATE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"migrate on {where}: still running after {MIGRATE_TIMEOUT} s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"migrate on {where} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")


def _sqlite_read(path: Path, query: str) -> list[tuple[Any, ...]]:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            return db.execute(query).fetchall()
    except sqlite3.Error as exc:
        raise RuntimeError(f"SQLite file {path}: {exc}") from exc


def sqlite_tables(path: Path) -> set[str]:
    return {name for (name,) in _sqlite_read(path, "SELECT name FROM sqlite_master")}


def sqlite_node_pids(path: Path) -> set[int]:
    """The process ids of the nodes in the registry of the SQLite file at ``path`` (none
    without its table)."""
    if REGISTRY_TABLE not in sqlite_tables(path):
        return set()
    return {pid for (pid,) in _sqlite_read(path, f"SELECT pid FROM {REGISTRY_TABLE}")}


class MonitoringDatabase:
    """The database of monitoring's registry for one source tree's channels_sio servers (the
    code under test, or the baseline's): a SQLite file, migrated once, at the start, by that
    tree's own ``manage.py`` with settings_bench, copied afresh for every measurement, and given
    to the servers as ``EXAMPLE_DB``. The database store's rows use that store's database
    instead (:class:`RecoveryDatabase`)."""

    def __init__(self, workdir: Path, root: Path = ROOT, label: str = "monitoring") -> None:
        self.root = root
        self.template = workdir / f"{label}-template.sqlite3"
        self.file = workdir / f"{label}.sqlite3"
        #: Whether that tree's migrations made the registry (a baseline may predate it).
        self.has_registry = False

    def create(self) -> None:
        migrate(self.root, {"EXAMPLE_DB": str(self.template)})
        self.has_registry = REGISTRY_TABLE in sqlite_tables(self.template)

    def env(self) -> dict[str, str]:
        return {"EXAMPLE_DB": str(self.file)}

    def reset(self) -> None:
        """Before a measurement: no node or session of an earlier one."""
        for suffix in ("-wal", "-shm", "-journal"):
            self.file.with_name(self.file.name + suffix).unlink(missing_ok=True)
        shutil.copyfile(self.template, self.file)

    def node_pids(self) -> set[int] | None:
        """The process ids of the nodes in the registry; None without the registry."""
        return sqlite_node_pids(self.file) if self.has_registry else None

    def describe(self) -> str:
        registry = "with" if self.has_registry else "without"
        return (
            f"SQLite {sqlite3.sqlite_version} (EXAMPLE_DB), {registry} monitoring's registry: "
            "migrated at the start with settings_bench, copied afresh for every measurement"
        )


@contextlib.contextmanager
def recovery_database(
    kind: str, postgres_url: str, workdir: Path, root: Path = ROOT
) -> Iterator[RecoveryDatabase]:
    """A created and migrated :class:`RecoveryDatabase`, dropped on the way out."""
    database = RecoveryDatabase(kind, postgres_url, workdir, root)
    try:
        database.create()
        yield database
    finally:
        try:
            database.drop()
        except RuntimeError as exc:
            log(f"WARNING: could not drop the benchmark's database {database.name}: {exc}")


def recovery_store(app: App, database: RecoveryDatabase | None) -> str | None:
    """Where ``app`` records (the results' ``recovery_store``); None with recovery off."""
    if app.store is None:
        return None
    if app.node:
        return f"node-{app.store}"  # socket.io's in-memory adapter
    if app.store == "database":
        return database.backend if database is not None else "database"
    return app.store


def check_recording(app: App, record: dict[str, Any]) -> None:
    """With recovery on, every measured unit came with an offset (it was recorded); with it
    off, none did. A row where that is not so measures something else: it fails."""
    offsets, units = record.get("offsets"), record.get("units")
    expected = units if app.store else 0
    if offsets != expected:
        record["ok"] = False
        record["error"] = (
            f"{offsets} of {units} {record.get('unit')}s came with an offset, not {expected}"
        )


def start_servers(servers: Sequence[Server], timeout: float = SERVER_START_TIMEOUT) -> float:
    """Start the servers together and wait until all answer; returns the seconds that took."""
    for server in servers:
        server.spawn()
    deadline = time.monotonic() + timeout
    return max([server.wait_ready(deadline) for server in servers])


def layer_costs(app: str, record: dict[str, Any]) -> dict[str, float]:
    """Redis commands per measured broadcast: all of them, and those carrying a message."""
    broadcasts = record.get("broadcasts") or 0
    commands: dict[str, int] = record.get("redis_commands") or {}
    if not broadcasts:
        return {}
    return {
        "redis_commands_per_broadcast": round(sum(commands.values()) / broadcasts, 2),
        "layer_messages_per_broadcast": round(
            commands.get(LAYER_MESSAGE_COMMAND[app], 0) / broadcasts, 2
        ),
    }


def check_registry(
    record: dict[str, Any],
    servers: Sequence[Server],
    registry: RecoveryDatabase | MonitoringDatabase,
    expected: bool,
) -> None:
    """After the servers stopped: with monitoring on (``expected``), every server process
    wrote its node's row to the registry and none logged that monitoring is off; with it off,
    none wrote. A row where that is not so measures something else: it fails."""
    pids = {server.pid for server in servers}
    written = pids & (registry.node_pids() or set())
    record["monitoring"] = expected
    record["registry_nodes"] = len(written)
    if expected:
        off = [str(server) for server in servers if MONITORING_OFF in server.log_text().lower()]
        if written != pids or off:
            record["ok"] = False
            record["error"] = (
                f"monitoring did not write its registry: {len(written)} of {len(pids)} server "
                f"processes have a node row in {registry.describe()}"
                + (f"; the log of {', '.join(off)} says monitoring is off" if off else "")
            )
    elif written:
        record["ok"] = False
        record["error"] = (
            f"monitoring was to be off, yet {len(written)} server process(es) wrote a node row"
        )


#: What the server logs when the registry cannot be used (no tables: not migrated), lower case.
MONITORING_OFF = "monitoring is off"


def run_one(
    round_no: int,
    scenario: str,
    app: str,
    asgi: str,
    params: dict[str, Param],
    cores: tuple[set[int] | None, set[int] | None],
    log_dir: Path,
    root: Path = ROOT,
    redis_url: str | None = None,
    uvicorn_ws: str = UVICORN_WS[0],
    database: RecoveryDatabase | None = None,
    registry: MonitoringDatabase | None = None,
) -> dict[str, Any]:
    """One measurement. The cluster scenario and the Redis store's rows use ``redis_url``'s
    database, flushed before and after; the database store's rows ``database``, reset before.
    channels_sio's servers write monitoring's registry to the database store's database, or to
    ``registry`` (reset before), and are checked to have written it (or not, monitoring off).
    """
    record: dict[str, Any] = {"round": round_no, "scenario": scenario, "app": app, "asgi": asgi}
    definition = app_named(app)
    cluster_redis = (redis_url or default_redis_url()) if scenario == "cluster" else None
    store_redis = (redis_url or default_redis_url()) if definition.store == "redis" else None
    flushed = cluster_redis or store_redis
    env = {"REDIS_URL": flushed} if flushed else {}
    # Where monitoring writes its registry: the database store's database, or the SQLite file.
    written: RecoveryDatabase | MonitoringDatabase | None = None
    if definition.store == "database" and database is not None:
        env["DATABASE_URL"] = database.url
        written = database
    elif definition.django and registry is not None:
        env.update(registry.env())
        written = registry
    servers: list[Server] = []
    if cluster_redis:
        record["workers"] = int(params["workers"])
        servers = [
            Server(CLUSTER_APPS[app], asgi, cores[0], log_dir, root, env, uvicorn_ws)
            for _ in range(record["workers"])
        ]
    else:
        servers = [Server(definition, asgi, cores[0], log_dir, root, env, uvicorn_ws)]
    store = recovery_store(definition, database)
    if store:
        record["recovery_store"] = store
    try:
        if flushed:
            with redis_client(flushed) as client:
                client.flushdb()
        if definition.store == "database":
            if database is None:
                raise RuntimeError("the database store's rows need the run's database")
            database.reset()
        elif isinstance(written, MonitoringDatabase):
            written.reset()
        record["server_start_s"] = round(start_servers(servers), 3)
        result = run_client(scenario, servers, params, cores[1], cluster_redis)
        result["client_scenario"] = result.pop("scenario", None)
        record.update({k: v for k, v in result.items() if k not in record})
        if cluster_redis and record.get("ok"):
            record.update(layer_costs(app, record))
        if scenario in RECOVERY_SCENARIOS and record.get("ok"):
            check_recording(definition, record)
    except RuntimeError as exc:
        record.update(ok=False, error=str(exc))
    finally:
        for server in servers:
            server.stop()
        if flushed:
            # Leave nothing behind (the nodes' channels and group; the store's keys).
            with contextlib.suppress(RuntimeError), redis_client(flushed) as client:
                client.flushdb()
    if written is not None and record.get("ok"):
        # Stopped: every node said goodbye (its row stays, marked gone).
        try:
            check_registry(record, servers, written, definition.monitoring and written.has_registry)
        except RuntimeError as exc:
            record.update(ok=False, error=f"reading the registry: {exc}")
    codes = [server.exit_code for server in servers]
    record["server_exit_code"] = next((code for code in codes if code), codes[0])
    with contextlib.suppress(OSError):
        record["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
    if not record.get("ok"):
        record["server_log_tail"] = "\n".join(
            f"== {server.log_path.name}\n{server.log_tail()}" for server in servers
        )
    return record


def describe(record: dict[str, Any]) -> str:
    head = f"round {record['round']} {record['scenario']:8} {record['app']}@{record['asgi']}"
    if record.get("recovery_store"):
        head += f" ({record['recovery_store']})"
    if not record.get("ok"):
        error = record.get("error") or "; ".join(record.get("errors") or []) or "failed"
        return f"{head}: FAILED {error.splitlines()[0] if error else ''}"
    text = (
        f"{head}: {record['throughput']:.0f} {record['unit']}/s, "
        f"{record['server_cpu_us_per_unit']} µs CPU/{record['unit']}, "
        f"client core {record['client_cpu_util']:.0%}"
    )
    if record.get("other_cpu_util") is not None:
        text += f", other load {record['other_cpu_util']:.2f} cores"
    if record.get("p50_ms") is not None:
        text += f", p50 {record['p50_ms']} ms p99 {record['p99_ms']} ms"
    if record.get("rss_kb_per_idle_conn") is not None:
        text += f", {record['rss_kb_per_idle_conn']} KB RSS/idle conn"
    if record.get("redis_commands_per_broadcast") is not None:
        text += (
            f", {record['workers']} workers, {record['redis_commands_per_broadcast']} Redis "
            f"commands/broadcast ({record['layer_messages_per_broadcast']} layer messages), "
            f"Redis {record['redis_cpu_us_per_unit']} µs CPU/{record['unit']}"
        )
    return text


# What the servers run: copied at the start of a run (see snapshot()).
SOURCE_PARTS = ("channels_sio", "example_project", "bench/__init__.py", "bench/servers")

#: ``sitecustomize.py`` at the top of every copy of the code the servers import (the snapshot,
#: the baseline), which is on their PYTHONPATH. The editable install's import hook (setuptools)
#: finds a module of channels_sio that such a copy lacks, a newer subpackage, in the work tree;
#: an older baseline would then run part of today's code. Without the hook, it is an ImportError.
ISOLATION = """# Written by bench/run.py: channels_sio is imported from this source tree only.

import sys

sys.meta_path[:] = [
    finder
    for finder in sys.meta_path
    if not str(getattr(finder, "__module__", "")).startswith("__editable___channels_sio")
]
"""


def isolate(root: Path) -> None:
    """Make the processes that import from ``root`` blind to the editable install's hook."""
    (root / "sitecustomize.py").write_text(ISOLATION)


def snapshot(destination: Path) -> Path:
    """Copy the code under test to ``destination``; the servers of the run import it from there,
    so that edits to the work tree while the benchmark runs do not mix versions in one run."""
    ignore = shutil.ignore_patterns(
        "__pycache__", "*.pyc", "node_modules", "db.sqlite3*", "staticfiles"
    )
    for part in SOURCE_PARTS:
        source, target = ROOT / part, destination / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore)
        else:
            shutil.copy2(source, target)
    isolate(destination)
    return destination


#: What --baseline exports of its revision (channels_sio's servers need the first two).
BASELINE_PARTS = ("channels_sio", "example_project", "bench/servers")
GIT_TIMEOUT = 120.0


def _git(*args: str, timeout: float = GIT_TIMEOUT) -> subprocess.CompletedProcess[bytes]:
    """A read-only git command in the repository (it never takes the index's lock)."""
    return subprocess.run(
        ["git", *args],
        cwd=ROOT,
        env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def resolve_revision(rev: str) -> str:
    """The full commit of ``rev`` (SystemExit if git does not know it)."""
    try:
        proc = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except (OSError, subprocess.SubprocessError) as exc:
        raise SystemExit(f"--baseline {rev}: git: {exc}") from None
    commit = proc.stdout.decode().strip()
    if proc.returncode != 0 or not commit:
        raise SystemExit(f"--baseline {rev}: not a commit of this repository")
    return commit


def export_revision(commit: str, destination: Path) -> Path:
    """``git archive commit channels_sio example_project bench/servers | tar -x`` into
    ``destination`` (bench/servers only if that revision has it); returns ``destination``."""
    parts = [
        part
        for part in BASELINE_PARTS
        if _git("cat-file", "-e", f"{commit}:{part}").returncode == 0
    ]
    if not {"channels_sio", "example_project"} <= set(parts):
        raise RuntimeError(f"{commit} has no channels_sio/ or example_project/")
    proc = _git("archive", "--format=tar", commit, "--", *parts)
    if proc.returncode != 0:
        raise RuntimeError(f"git archive {commit}: {proc.stderr.decode(errors='replace')[-2000:]}")
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as archive:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4+
            archive.extractall(destination, filter="data")
        else:  # pragma: no cover - our own repository's archive
            archive.extractall(destination)
    isolate(destination)
    return destination


def source_digest(root: Path = ROOT) -> str:
    """A digest of the code under test (channels_sio/, the example project, bench/servers/):
    runs with equal digests measured the same code."""
    digest = hashlib.sha256()
    for part in SOURCE_PARTS:
        base = root / part
        paths = sorted(base.rglob("*.py")) if base.is_dir() else [base]
        for path in paths:
            if "node_modules" in path.parts:
                continue
            with contextlib.suppress(OSError):
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_kb"] = int(line.split()[1])
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["node"] = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    packages = {}
    for name in (
        "channels-sio",
        "django",
        "channels",
        "python-socketio",
        "python-engineio",
        "channels-redis",
        "redis",
        "uvicorn",
        "websockets",
        "uvloop",
        "httptools",
        "daphne",
        "twisted",
        "autobahn",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            packages[name] = metadata.version(name)
    info["packages"] = packages
    with contextlib.suppress(OSError):
        lock = json.loads((CLIENT_DIR / "package-lock.json").read_text())
        for npm_name in ("socket.io-client", "socket.io"):
            info["packages"][f"{npm_name} (npm)"] = lock["packages"][f"node_modules/{npm_name}"][
                "version"
            ]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # never writes the index
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=20,
            env=env,
        ).stdout
        info["git_dirty"] = bool(status.strip())
    with contextlib.suppress(OSError):
        info["loadavg_at_start"] = Path("/proc/loadavg").read_text().split()[:3]
    return info


# -------------------------------------------------------------------------------------------
# Summary


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def _per_round(
    rows: list[dict[str, Any]], asgi: str, ours: str, theirs: str
) -> tuple[list[float], list[float]]:
    """The rounds on ``asgi`` where both apps ran fine: ours' throughput over theirs', and
    theirs' CPU per unit over ours' (both > 1 where ours does better)."""
    throughput, cpu = [], []
    for round_no in sorted({r["round"] for r in rows if r["asgi"] == asgi}):
        pair = {
            r["app"]: r
            for r in rows
            if r["asgi"] == asgi and r["round"] == round_no and r.get("ok")
        }
        a, b = pair.get(ours), pair.get(theirs)
        if not a or not b:
            continue
        throughput.append(round(a["throughput"] / b["throughput"], 3))
        if a.get("server_cpu_us_per_unit") and b.get("server_cpu_us_per_unit"):
            cpu.append(round(b["server_cpu_us_per_unit"] / a["server_cpu_us_per_unit"], 3))
    return throughput, cpu


def _ratio(
    throughput: list[float],
    cpu: list[float],
    target: float | None,
    *,
    at_most: bool = False,
    also: bool = True,
) -> dict[str, Any]:
    """A comparison's entry of the summary. The verdicts are the medians over at least 3
    rounds against ``target`` (a minimum, or with ``at_most`` a maximum), ``also`` holding too
    (connect: the RSS): the traffic one server core carries (CPU per unit), and the
    throughput of the run."""
    met_per_core = met_throughput = None
    if target is not None and len(throughput) >= MIN_ROUNDS_FOR_VERDICT:

        def met(values: list[float]) -> bool:
            if not values:
                return False
            median = statistics.median(values)
            return median <= target if at_most else median >= target

        met_per_core = also and met(cpu)
        met_throughput = also and met(throughput)
    return {
        "throughput_ratio_per_round": throughput,
        "throughput_ratio": _spread(throughput),
        "cpu_ratio_per_round": cpu,
        "cpu_ratio": _spread(cpu),
        "target": target,
        "met_per_core": met_per_core,
        "met_throughput": met_throughput,
    }


#: What each variant of channels_sio measures, against channels_sio (App.variant).
COMPARISONS = {"nomon": "monitoring on / off", "baseline": "this code / baseline"}


def _variant_ratios(
    rows: list[dict[str, Any]], configs: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """Per ASGI server and variant of channels_sio (monitoring off, the baseline): its
    counterpart's CPU per unit over the variant's, same round (> 1: the code under test costs
    more; at most MONITORING_COST_TARGET), the throughput the variant's over the counterpart's,
    and in the connect scenario the RSS per idle connection the counterpart's over the
    variant's. A baseline's store row is compared with this code's row of the same store."""
    found: dict[str, Any] = {}
    for app, server in configs:
        definition = app_named(app)
        if definition.variant is None or not any(
            r["app"] == app and r["asgi"] == server for r in rows
        ):
            continue
        counterpart = definition.counterpart
        throughput, cpu = _per_round(rows, server, app, counterpart)
        entry: dict[str, Any] = {
            "comparison": COMPARISONS[definition.variant],
            "of": counterpart,
            "against": app,
            **_ratio(throughput, cpu, MONITORING_COST_TARGET, at_most=True),
        }
        rss = []
        for round_no in sorted({r["round"] for r in rows}):
            pair = {
                r["app"]: r.get("rss_kb_per_idle_conn")
                for r in rows
                if r["asgi"] == server and r["round"] == round_no and r.get("ok")
            }
            ours, theirs = pair.get(counterpart), pair.get(app)
            if ours and theirs:
                rss.append(round(ours / theirs, 3))
        if rss:
            entry["rss_ratio_per_round"] = rss
            entry["rss_ratio"] = _spread(rss)
        found.setdefault(server, {})[app] = entry
    return found


def _recovery_ratios(
    rows: list[dict[str, Any]], scenario: str, configs: Sequence[tuple[str, str]] = CONFIGS
) -> dict[str, Any]:
    """Per server (ASGI server, or Node) and app with recovery on: what recovery costs (its
    CPU per unit over the same server's with recovery off, same round; the throughput off over
    on) and, for channels_sio (and its baseline), the margin over python-socketio (as the other
    ratios)."""
    found: dict[str, Any] = {}
    for app, server in configs:
        definition = app_named(app)
        mine = [r for r in rows if r["app"] == app and r["asgi"] == server]
        if definition.recovery_of is None or not mine:
            continue
        stores = {r.get("recovery_store") for r in mine}
        store = stores.pop() if len(stores) == 1 else None
        ours = not definition.node
        cost = _per_round(rows, server, definition.recovery_of, app)
        entry: dict[str, Any] = {
            "recovery_store": store,
            # On over off: > 1 is what recovery costs.
            "cost": _ratio(
                *cost, RECOVERY_COST_TARGETS.get(store or "") if ours else None, at_most=True
            ),
        }
        if ours:
            ahead = _per_round(rows, server, app, "python-socketio")
            entry["vs_python_socketio"] = _ratio(*ahead, TARGETS.get((scenario, server)))
        found.setdefault(server, {})[app] = entry
    return found


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per scenario and server: median and min-max over the rounds; ratios per round."""
    servers: dict[str, dict[str, Any]] = {}
    ratios: dict[str, dict[str, Any]] = {}
    recovery: dict[str, dict[str, Any]] = {}
    monitoring: dict[str, dict[str, Any]] = {}
    configs = ordered_configs(r["app"] for r in runs)
    scenarios = [s for s in SCENARIOS if any(r["scenario"] == s for r in runs)]
    for scenario in scenarios:
        rows = [r for r in runs if r["scenario"] == scenario]
        per_server: dict[str, Any] = {}
        for app, asgi in configs:
            mine = [r for r in rows if r["app"] == app and r["asgi"] == asgi]
            if not mine:
                continue
            ok = [r for r in mine if r.get("ok")]
            entry: dict[str, Any] = {
                "runs": len(mine),
                "failed": len(mine) - len(ok),
                "unit": UNITS[scenario],
                "throughput": _spread([r["throughput"] for r in ok]),
                "cpu_us_per_unit": _spread(
                    [r["server_cpu_us_per_unit"] for r in ok if r.get("server_cpu_us_per_unit")]
                ),
                "p50_ms": _spread([r["p50_ms"] for r in ok if r.get("p50_ms") is not None]),
                "p99_ms": _spread([r["p99_ms"] for r in ok if r.get("p99_ms") is not None]),
                "client_cpu_util": _spread([r["client_cpu_util"] for r in ok]),
                "other_cpu_util": _spread(
                    [r["other_cpu_util"] for r in ok if r.get("other_cpu_util") is not None]
                ),
            }
            for _, key in EXTRA_COLUMNS.get(scenario, ()):
                entry[key] = _spread([r[key] for r in ok if r.get(key) is not None])
            stores = sorted({r["recovery_store"] for r in mine if r.get("recovery_store")})
            if stores:
                entry["recovery_store"] = ", ".join(stores)
            per_server[f"{app}@{asgi}"] = entry
        servers[scenario] = per_server
        per_asgi: dict[str, Any] = {}
        for asgi in ASGI_SERVERS:
            # python-socketio's CPU per unit over ours: > 1 when channels_sio costs less.
            throughput, cpu = _per_round(rows, asgi, "channels_sio", "python-socketio")
            if not throughput:
                continue
            rss_ok = True
            if scenario == "connect":
                rss = per_server.get(f"channels_sio@{asgi}", {}).get("rss_kb_per_idle_conn")
                rss_ok = bool(rss) and rss["median"] <= TARGET_RSS_KB_PER_IDLE_CONN
            per_asgi[asgi] = _ratio(throughput, cpu, TARGETS.get((scenario, asgi)), also=rss_ok)
        if per_asgi:
            ratios[scenario] = per_asgi
        if scenario in RECOVERY_SCENARIOS:
            recovery[scenario] = _recovery_ratios(rows, scenario, configs)
        variants = _variant_ratios(rows, configs)
        if variants:
            monitoring[scenario] = variants
    return {"servers": servers, "ratios": ratios, "recovery": recovery, "monitoring": monitoring}


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(spread: dict[str, float] | None) -> str:
    if not spread:
        return "-"
    if spread["n"] == 1:
        return _fmt(spread["median"])
    return f"{_fmt(spread['median'])} ({_fmt(spread['min'])}-{_fmt(spread['max'])})"


def _target(scenario: str, target: float | None) -> str:
    if target is None:
        return "-"
    if scenario == "connect":
        return f"≥ {target}, ≤ {TARGET_RSS_KB_PER_IDLE_CONN:.0f} KB/conn"
    return f"≥ {target}"


def _verdict(entry: dict[str, Any]) -> str:
    if entry["met_per_core"] is None:
        return "-" if entry["target"] is None else f"(< {MIN_ROUNDS_FOR_VERDICT} rounds)"
    return " / ".join("yes" if entry[key] else "no" for key in ("met_per_core", "met_throughput"))


def _rounds(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values) or "-"


def _median(spread: dict[str, float] | None) -> str:
    return _fmt(spread["median"]) if spread else "-"


def _recovery_table(recovery: dict[str, Any]) -> list[str]:
    out = [
        "### connection state recovery: on against off, and against python-socketio "
        "(same server, same round)\n",
        "CPU cost: CPU per unit with recovery on over the same server's with it off (the "
        "throughput: off over on). python-socketio (no recovery) / it: python-socketio's CPU "
        "per unit over this row's.\n",
        "| scenario | server | store | CPU cost per round | median | throughput off/on | "
        "target | met: per core / throughput | python-socketio / it, CPU per round | median | "
        "target | met: per core / throughput |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario, per_server in recovery.items():
        for server, apps in per_server.items():
            for app, entry in apps.items():
                cost = entry["cost"]
                limit = "-" if cost["target"] is None else f"≤ {cost['target']}"
                row = (
                    f"| {scenario} | {app}@{server} | {entry['recovery_store'] or '-'} | "
                    f"{_rounds(cost['cpu_ratio_per_round'])} | {_median(cost['cpu_ratio'])} | "
                    f"{_median(cost['throughput_ratio'])} | {limit} | {_verdict(cost)} |"
                )
                ahead = entry.get("vs_python_socketio")
                if ahead is None:
                    row += " - | - | - | - |"
                else:
                    row += (
                        f" {_rounds(ahead['cpu_ratio_per_round'])} | "
                        f"{_median(ahead['cpu_ratio'])} | "
                        f"{_target(scenario, ahead['target'])} | {_verdict(ahead)} |"
                    )
                out.append(row)
    out.append("")
    return out


def _monitoring_table(monitoring: dict[str, Any]) -> list[str]:
    out = [
        "### channels_sio against itself: monitoring on / off, this code / baseline "
        "(same server, same round)\n",
        "CPU ratio: the CPU per unit of channels_sio (or of its row of the same store) over the "
        "variant's (> 1: the code under test costs more). Throughput: the variant's over "
        "channels_sio's. RSS (connect): channels_sio's RSS per idle connection over the "
        "variant's.\n",
        "| scenario | server | comparison | against | CPU ratio per round | median | "
        "throughput ratio | RSS ratio | target | met: per core / throughput |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario, per_server in monitoring.items():
        for server, apps in per_server.items():
            for app, entry in apps.items():
                out.append(
                    f"| {scenario} | {server} | {entry['comparison']} | {app} | "
                    f"{_rounds(entry['cpu_ratio_per_round'])} | {_median(entry['cpu_ratio'])} | "
                    f"{_median(entry['throughput_ratio'])} | {_median(entry.get('rss_ratio'))} | "
                    f"≤ {entry['target']} | {_verdict(entry)} |"
                )
    out.append("")
    return out


def format_tables(summary: dict[str, Any]) -> str:
    """Markdown tables: one per scenario, then the ratios."""
    out = []
    for scenario, per_server in summary["servers"].items():
        unit = UNITS[scenario]
        extra = EXTRA_COLUMNS.get(scenario, ())
        out.append(f"### {scenario}\n")
        out.append(
            f"| server | {unit}/s | server CPU µs/{unit} | p50 ms | p99 ms | client core "
            f"| other load |" + "".join(f" {title} |" for title, _ in extra)
        )
        out.append("|---|---|---|---|---|---|---|" + "---|" * len(extra))
        for name, entry in per_server.items():
            failed = f" ({entry['failed']} failed)" if entry["failed"] else ""
            store = entry.get("recovery_store")
            if store and store not in name:
                name += f" ({store})"
            row = (
                f"| {name}{failed} | {_cell(entry['throughput'])} | "
                f"{_cell(entry['cpu_us_per_unit'])} | {_cell(entry['p50_ms'])} | "
                f"{_cell(entry['p99_ms'])} | {_cell(entry['client_cpu_util'])} | "
                f"{_cell(entry['other_cpu_util'])} |"
            )
            out.append(row + "".join(f" {_cell(entry.get(key))} |" for _, key in extra))
        out.append("")
    if summary["ratios"]:
        out.append("### channels_sio / python-socketio, same ASGI server, same round\n")
        out.append(
            "| scenario | ASGI server | throughput ratio per round | median | "
            "CPU-per-unit ratio (theirs/ours) per round | median | target | "
            "met: per core / throughput |"
        )
        out.append("|---|---|---|---|---|---|---|---|")
        for scenario, per_asgi in summary["ratios"].items():
            for asgi, entry in per_asgi.items():
                out.append(
                    f"| {scenario} | {asgi} | {_rounds(entry['throughput_ratio_per_round'])} | "
                    f"{entry['throughput_ratio']['median']:.2f} | "
                    f"{_rounds(entry['cpu_ratio_per_round'])} | {_median(entry['cpu_ratio'])} | "
                    f"{_target(scenario, entry['target'])} | {_verdict(entry)} |"
                )
        out.append("")
    if any(summary.get("recovery", {}).values()):
        out += _recovery_table(summary["recovery"])
    if summary.get("monitoring"):
        out += _monitoring_table(summary["monitoring"])
    return "\n".join(out)


# -------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="channels_sio vs python-socketio, side by side (docs/benchmarks.md)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds, A B A B (default 3)")
    parser.add_argument(
        "--quick", action="store_true", help="smaller counts (same as --preset quick)"
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="full")
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=SCENARIOS,
        default=list(DEFAULT_SCENARIOS),
        help=f"default: {' '.join(DEFAULT_SCENARIOS)} (the recovery scenarios when asked for)",
    )
    parser.add_argument("--apps", nargs="+", choices=list(APPS), default=list(APPS))
    parser.add_argument("--asgi", nargs="+", choices=ASGI_SERVERS, default=list(ASGI_SERVERS))
    parser.add_argument(
        "--uvicorn-ws",
        choices=UVICORN_WS,
        default=UVICORN_WS[0],
        help=f"uvicorn's WebSocket implementation (default {UVICORN_WS[0]})",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SCENARIO.OPTION=VALUE",
        help="override a client parameter, e.g. fanout.clients=500 (bench/client/bench.js)",
    )
    parser.add_argument("--out", type=Path, help="results JSON (default bench/results/...)")
    parser.add_argument(
        "--redis-url",
        default=default_redis_url(),
        help="the Redis database of the cluster scenario and of the Redis store's rows, "
        "flushed before and after every measurement "
        f"(default: REDIS_URL's server, database {CLUSTER_REDIS_DB})",
    )
    parser.add_argument(
        "--recovery-database",
        choices=RECOVERY_DATABASES,
        default=RECOVERY_DATABASES[0],
        help="the database store's rows (channels_sio+database): a database of the run's own on "
        "the PostgreSQL server of --postgres-url (default), or a SQLite file",
    )
    parser.add_argument(
        "--postgres-url",
        default=default_postgres_url(),
        help="the PostgreSQL server where the run creates, and then drops, its database "
        "(default: CSIO_POSTGRES_URL, else postgres://postgres@127.0.0.1:5432/postgres)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run channels_sio at git revision REV (its channels_sio, example project and "
        "bench servers, by git archive; its own settings_bench and migrated SQLite file) as "
        "channels_sio@REV, in the --compare-scenarios, and in the recovery scenarios with each "
        "store of --apps too (channels_sio+redis@REV, ...; the database store in a database "
        "of its own, migrated by REV): the ratio this code / baseline, per row",
    )
    parser.add_argument(
        "--compare-scenarios",
        nargs="+",
        choices=[s for s in SCENARIOS if s != "cluster"],
        default=list(COMPARE_SCENARIOS),
        help=f"where {NOMON} and the baseline run (default: {' '.join(COMPARE_SCENARIOS)})",
    )
    parser.add_argument(
        "--no-snapshot",
        action="store_true",
        help="run the work tree itself, not a copy taken at the start (edits then show mid-run)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.quick:
        args.preset = "quick"
    return args


def _option_value(value: str) -> Param:
    """A number where the text is one; else the text (e.g. polling.polling-impl=fetch)."""
    try:
        return float(value) if "." in value else int(value)
    except ValueError:
        if not value:
            raise
        return value


def scenario_params(preset: str, overrides: Sequence[str]) -> dict[str, dict[str, Param]]:
    params = {scenario: dict(values) for scenario, values in PRESETS[preset].items()}
    for item in overrides:
        try:
            key, value = item.split("=", 1)
            scenario, option = key.split(".", 1)
            params[scenario][option] = _option_value(value)
        except (ValueError, KeyError):
            raise SystemExit(f"--set {item}: expected SCENARIO.OPTION=VALUE") from None
    return params


@contextlib.contextmanager
def cleanup_on_exit() -> Iterator[None]:
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    params = scenario_params(args.preset, args.set)
    ensure_client()
    server_cores, client_cores, pinning = affinity()
    if client_cores:
        # This process mostly waits; keep it off the server's core too.
        os.sched_setaffinity(0, client_cores)
    started = datetime.now(UTC)
    out = args.out or RESULTS_DIR / f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": " ".join(
            ["python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "started": started.isoformat(timespec="seconds"),
        "rounds": args.rounds,
        "preset": args.preset,
        "params": params,
        "pinning": pinning,
        "uvicorn": f"--ws {args.uvicorn_ws} --ws-per-message-deflate false --no-access-log "
        "--log-level warning --lifespan on (loop and http: auto)",
        "daphne": "-v 0 (no access log; permessage-deflate not negotiated)",
        "machine": machine(),
        "snapshot": not args.no_snapshot,
    }
    baseline_commit = resolve_revision(args.baseline) if args.baseline else None
    apps = list(args.apps)
    if args.baseline:
        # The baseline runs with recovery off, and with each store that --apps runs.
        apps += [baseline_name(args.baseline)]
        apps += [
            baseline_name(args.baseline, APPS[app].store)
            for app in args.apps
            if APPS[app].store in STORES and not APPS[app].node
        ]
    plan = {
        scenario: configs_for(scenario, apps, args.asgi, args.compare_scenarios)
        for scenario in args.scenarios
    }
    planned = {app for configs in plan.values() for app, _ in configs}
    baselines = [
        app
        for app in dict.fromkeys(apps)
        if app in planned and app_named(app).variant == "baseline"
    ]
    if args.baseline and not baselines:
        log(
            f"--baseline {args.baseline}: none of --compare-scenarios nor of the recovery "
            "scenarios runs; nothing to compare"
        )
    # channels_sio's servers of the code under test, but the database store's rows: they write
    # the registry to that store's database.
    with_django = any(app_named(app).django for app in planned)
    with_registry = any(
        app_named(app).django
        and app_named(app).variant != "baseline"
        and app_named(app).store != "database"
        for app in planned
    )
    recovery_apps = [
        app
        for app in args.apps
        if APPS[app].store and any(s in RECOVERY_SCENARIOS for s in args.scenarios)
    ]
    if "cluster" in args.scenarios or "channels_sio+redis" in recovery_apps:
        try:
            with redis_client(args.redis_url) as client:
                version = client.info("server")["redis_version"]
        except RuntimeError as exc:
            raise SystemExit(
                f"the cluster scenario and the Redis store's rows need Redis: {exc} "
                "(--redis-url, or other --scenarios / --apps)"
            ) from None
        meta["redis"] = {"url": args.redis_url, "version": version}
    if "cluster" in args.scenarios:
        meta["cluster"] = {
            "redis_url": args.redis_url,
            "redis_version": meta["redis"]["version"],
            "workers": "cluster.workers uvicorn processes, a port each, all on the server "
            "core; clients round-robin over them, the emitter on the first",
            "layer_message_command": LAYER_MESSAGE_COMMAND,
        }
    with_database = "channels_sio+database" in recovery_apps
    baseline_with_database = any(app_named(app).store == "database" for app in baselines)
    if with_database and args.recovery_database == "postgres":
        try:
            with postgres(args.postgres_url) as connection:
                connection.execute("SELECT 1")
        except RuntimeError as exc:
            raise SystemExit(
                f"the database store's rows need PostgreSQL: {exc} (--postgres-url, "
                "--recovery-database sqlite, or other --apps)"
            ) from None
    if recovery_apps:
        meta["recovery"] = {
            "channels_sio": "example_project.settings_bench with RECOVERY_STORE (its defaults: "
            "2 minutes, the store's own options; the Redis store on --redis-url)",
            "socket.io": "connectionStateRecovery (2 minutes, skipMiddlewares) on the default "
            "in-memory adapter",
            "cost_targets": RECOVERY_COST_TARGETS,
        }
    runs: list[dict[str, Any]] = []

    def write() -> None:
        document = {"meta": meta, "runs": runs, "summary": summarize(runs)}
        out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")

    log(f"benchmark: {args.rounds} round(s), preset {args.preset}, {pinning}; results -> {out}")
    with (
        cleanup_on_exit(),
        tempfile.TemporaryDirectory(prefix="csio-bench-") as tmp,
        contextlib.ExitStack() as services,
    ):
        log_dir = Path(tmp) / "logs"
        log_dir.mkdir()
        root = ROOT if args.no_snapshot else snapshot(Path(tmp) / "src")
        meta["source_digest"] = source_digest(root)

        def open_database(whose: str, workdir: Path, source: Path) -> RecoveryDatabase:
            """The database of ``whose`` rows, migrated by the code under ``source``."""
            log(f"creating and migrating {whose} database ({args.recovery_database})")
            try:
                return services.enter_context(
                    recovery_database(args.recovery_database, args.postgres_url, workdir, source)
                )
            except RuntimeError as exc:
                raise SystemExit(f"{whose} rows: {exc}") from None

        database = None
        if with_database:
            database = open_database("the database store's", Path(tmp), root)
            meta["recovery"]["database"] = database.describe()
        registry = baseline_root = baseline_registry = baseline_database = None
        try:
            if with_registry:
                log("migrating the SQLite file of monitoring's registry")
                registry = MonitoringDatabase(Path(tmp), root)
                registry.create()
            if with_django:
                meta["monitoring"] = {
                    "channels_sio": "example_project.settings_bench: monitoring on (its "
                    f"defaults); {NOMON}: MONITORING=0",
                    "registry": registry.describe() if registry else None,
                    "registry_of_the_database_store": "the store's database",
                    "compare_scenarios": args.compare_scenarios,
                    "cost_target": MONITORING_COST_TARGET,
                }
            if baselines and baseline_commit:
                log(f"exporting {args.baseline} ({baseline_commit[:12]}) and migrating its file")
                baseline_root = export_revision(baseline_commit, Path(tmp) / "baseline")
                baseline_registry = MonitoringDatabase(Path(tmp), baseline_root, "baseline")
                baseline_registry.create()
                meta["baseline"] = {
                    "rev": args.baseline,
                    "commit": baseline_commit,
                    "apps": baselines,
                    "source_digest": source_digest(baseline_root),
                    "registry": baseline_registry.describe(),
                    # Whether its migrations made monitoring's registry: if so, its rows are
                    # checked to have written it.
                    "has_registry": baseline_registry.has_registry,
                }
        except RuntimeError as exc:
            raise SystemExit(f"monitoring's registry: {exc}") from None
        if baseline_with_database and baseline_root is not None:
            # A database of its own, migrated by the baseline's migrations.
            baseline_dir = Path(tmp) / "baseline-database"
            baseline_dir.mkdir()
            baseline_database = open_database(
                "the baseline's database store's", baseline_dir, baseline_root
            )
            meta["baseline"]["database"] = baseline_database.describe()
        for round_no in range(1, args.rounds + 1):
            for scenario in args.scenarios:
                for app, asgi in plan[scenario]:
                    of_baseline = app in baselines
                    record = run_one(
                        round_no,
                        scenario,
                        app,
                        asgi,
                        params[scenario],
                        (server_cores, client_cores),
                        log_dir,
                        baseline_root if of_baseline and baseline_root else root,
                        args.redis_url,
                        args.uvicorn_ws,
                        baseline_database if of_baseline else database,
                        baseline_registry if of_baseline else registry,
                    )
                    runs.append(record)
                    log(describe(record))
                    write()
        meta["source_digest_at_end"] = source_digest(root)
    meta["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    write()
    if meta["source_digest_at_end"] != meta["source_digest"]:
        log("WARNING: the code under test changed while the benchmark ran: rounds mixed versions")
    summary = summarize(runs)
    print(format_tables(summary))
    print(f"results: {out}")
    failed = [r for r in runs if not r.get("ok")]
    if failed:
        log(f"{len(failed)} of {len(runs)} runs failed (see 'error' in the results)")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:
        log(f"interrupted ({exc or 'SIGINT'}): every process it started is stopped")
        sys.exit(130)
