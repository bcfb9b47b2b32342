"""Clusters of real server processes sharing one Redis database.

Redis: ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``) with the database number replaced
by ``CSIO_CLUSTER_REDIS_DB`` (default 7), flushed before and after the suite. Every cluster has a
channel-layer prefix of its own, so two clusters never merge.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.support.driver import Driver, driver, wait_for
from tests.support.node import NODE_DIR, TESTS_DIR, require_node
from tests.support.servers import EXAMPLE_DIR, ServerProcess
from tests.support.services import redis_database

__all__ = ["Driver", "driver", "wait_for"]

REDIS_DB = int(os.environ.get("CSIO_CLUSTER_REDIS_DB", "7"))


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The suite's Redis database, flushed before and after; skips (fails in CI) without Redis."""
    with redis_database(REDIS_DB) as url:
        yield url


class Cluster:
    """Server processes of one settings module sharing a Redis database and a layer prefix."""

    def __init__(
        self,
        redis_url: str,
        settings: str,
        kinds: Sequence[str],
        env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.env = {
            "REDIS_URL": redis_url,
            "CSIO_LAYER_PREFIX": f"csio{secrets.token_hex(4)}",
            **(env or {}),
        }
        self.servers = [ServerProcess(kind, settings, env=self.env) for kind in kinds]
        self.ids: dict[int, str] = {}  # server index -> node id

    def __getitem__(self, index: int) -> ServerProcess:
        return self.servers[index]

    def start(self) -> None:
        with ThreadPoolExecutor(len(self.servers)) as pool:
            for future in [pool.submit(server.start) for server in self.servers]:
                future.result()
        for index, server in enumerate(self.servers):
            self.ids[index] = self.node(server)["id"]
        self.wait_peers()

    def stop(self) -> None:
        with ThreadPoolExecutor(len(self.servers)) as pool:
            list(pool.map(lambda server: server.stop(), self.servers))

    def alive(self) -> list[int]:
        return [
            i for i, s in enumerate(self.servers) if s.proc is not None and s.proc.poll() is None
        ]

    def node(self, server: ServerProcess) -> dict[str, Any]:
        """The node of ``server`` (GET /_cluster/node/ starts it if no client did)."""
        response = httpx.get(server.url + "/_cluster/node/", timeout=5)
        response.raise_for_status()
        return dict(response.json())

    def wait_peers(self, timeout: float = 10.0) -> None:
        """Wait until every live node knows exactly the other live nodes."""
        live = self.alive()

        def settled() -> bool:
            for i in live:
                expected = sorted(self.ids[j] for j in live if j != i)
                if self.node(self.servers[i])["peers"] != expected:
                    return False
            return True

        wait_for(settled, timeout, f"nodes {[self.ids[i] for i in live]} know each other")

    def django(self, code: str, timeout: float = 30.0) -> str:
        """Run ``code`` in ``manage.py shell`` of this cluster's settings: another process."""
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env.update(self.env, DJANGO_SETTINGS_MODULE=self.settings)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(EXAMPLE_DIR), str(EXAMPLE_DIR.parent), env.get("PYTHONPATH", "")]
        )
        proc = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=EXAMPLE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert proc.returncode == 0, f"manage.py shell failed:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def logs(self) -> str:
        return "\n".join(f"--- {s.kind} {s.url}\n{s.log()}" for s in self.servers)


@contextlib.contextmanager
def running_cluster(
    redis_url: str, settings: str, kinds: Sequence[str], env: dict[str, str] | None = None
) -> Iterator[Cluster]:
    """A started cluster, stopped afterwards whatever happens."""
    require_node()
    cluster = Cluster(redis_url, settings, kinds, env)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
    # Whatever a handler or a node task raised was logged: the test did not see it.
    for server in cluster.servers:
        log = server.log_path.read_text(errors="replace")
        assert "Traceback" not in log, f"{server.kind} {server.url} logged an error:\n{log[-6000:]}"


class Proxy:
    """tests/node/cluster_proxy.js: round-robin HTTP proxy in front of some servers."""

    def __init__(self, servers: Sequence[ServerProcess], upgrades_to: int | None = None) -> None:
        require_node()
        args = [str(s.port) for s in servers]
        if upgrades_to is not None:  # else WebSocket upgrades are refused
            args.insert(0, f"--upgrades-to={upgrades_to}")
        self.proc = subprocess.Popen(
            ["node", str(NODE_DIR / "cluster_proxy.js"), *args],
            cwd=TESTS_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        stdout = self.proc.stdout
        assert stdout is not None
        ready: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: ready.put(stdout.readline()), daemon=True).start()
        try:
            line = ready.get(timeout=10)
        except queue.Empty:
            self.close()
            raise AssertionError("the proxy did not start") from None
        self.url = f"http://127.0.0.1:{json.loads(line)['port']}"

    def log(self) -> list[dict[str, Any]]:
        return list(httpx.get(self.url + "/_proxy/log", timeout=5).json())

    def close(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # the proxy exits
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextlib.contextmanager
def proxied(servers: Sequence[ServerProcess], upgrades_to: int | None = None) -> Iterator[Proxy]:
    """A round-robin proxy in front of ``servers``, closed afterwards."""
    proxy = Proxy(servers, upgrades_to)
    try:
        yield proxy
    finally:
        proxy.close()
