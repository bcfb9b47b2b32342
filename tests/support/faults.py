"""Throwaway Redis and PostgreSQL servers that a fault test may stop and start again: never the
machine's own, which other test runs share. Each needs its binaries (Debian's redis-server,
PostgreSQL 15 under /usr/lib/postgresql/15/bin); without them the test skips, and fails in CI.

And what the fault tests of tests/reliability share: those servers as fixtures, their two nodes
(uvicorn and daphne, recovery on, the channel layer on the throwaway Redis), a broadcast through
a client, and the lines that say a node's recovery store failed and recovered.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import Cluster

from .ci import require
from .driver import Driver
from .servers import free_port

__all__ = [
    "NSP",
    "SETTINGS",
    "STORE_BACK",
    "STORE_DOWN",
    "ThrowawayPostgres",
    "ThrowawayRedis",
    "cast",
    "postgres",
    "redis_server",
    "throwaway_postgres",
    "throwaway_redis",
    "two_nodes",
]

PG_BIN = Path(os.environ.get("CSIO_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def _wait(port: int, up: bool, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while _answers(port) != up:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not {'start' if up else 'stop'} within {timeout}s")
        time.sleep(0.05)


class ThrowawayRedis:
    """A redis-server on a free port with no persistence: stopped, it forgets everything, as
    a Redis restarted without a dump does."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(self.port, True, 10, "redis-server")

    def stop(self) -> None:
        """Shut it down (SIGTERM: the server exits and its port closes)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        _wait(self.port, False, 10, "redis-server")


@contextlib.contextmanager
def throwaway_redis() -> Iterator[ThrowawayRedis]:
    require(shutil.which("redis-server") is not None, "redis-server")
    server = ThrowawayRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own in a temporary directory, run as the postgres user
    (trust authentication, TCP on 127.0.0.1 and a free port)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *command: str) -> None:
        run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*run_as, *command], check=True, capture_output=True, timeout=60, cwd=self.directory
        )

    def init(self) -> None:
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"
        )

    def _ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", *extra, action
        )

    def start(self) -> None:
        self._ctl("start", "-l", str(self.directory / "log"))
        _wait(self.port, True, 20, "PostgreSQL")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every backend is terminated, open transactions rolled
        back, and the server is back once it accepts connections again."""
        self._ctl("restart", "-m", "fast", "-l", str(self.directory / "log"))
        _wait(self.port, True, 20, "PostgreSQL")

    def stop(self) -> None:
        self._ctl("stop", "-m", "immediate")


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    require((PG_BIN / "pg_ctl").exists(), f"PostgreSQL's binaries in {PG_BIN}")
    if os.geteuid() == 0:
        require(shutil.which("runuser") is not None, "runuser (to run PostgreSQL as postgres)")
    directory = Path(tempfile.mkdtemp(prefix="csio-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    server = ThrowawayPostgres(directory)
    try:
        server.init()
        server.start()
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


# -- the fault tests' nodes ----------------------------------------------------------------

SETTINGS = "tests.recovery.settings_recovery_cluster"
NSP = "/recovery"

#: Logged by a node when its recovery store fails, and when it answers again.
STORE_DOWN = "packets go out unrecorded"
STORE_BACK = "recovery: the store answers again"


@pytest.fixture
def redis_server() -> Iterator[ThrowawayRedis]:
    with throwaway_redis() as server:
        yield server


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    with throwaway_postgres() as server:
        yield server


@contextlib.contextmanager
def two_nodes(redis: ThrowawayRedis, env: dict[str, str]) -> Iterator[tuple[Cluster, list[int]]]:
    """A uvicorn node and a daphne node of SETTINGS with ``env``, their channel layer on
    ``redis`` (database 0), started; with where each one's log was then, for what it logs
    after. Stopped afterwards."""
    cluster = Cluster(f"{redis.url}/0", SETTINGS, ("uvicorn", "daphne"), env)
    try:
        cluster.start()
        yield cluster, [server.log_offset() for server in cluster.servers]
    finally:
        cluster.stop()


def cast(driver: Driver, via: str, event: str, *args: object) -> None:
    """Broadcast ``event`` to room "x" through the client ``via``, acknowledged."""
    spec = {"event": event, "args": list(args), "to": ["x"]}
    assert driver("call", name=via, event="cast", args=[spec], ms=8000) is True
