"""Short versions of bench/load.py's load and churn runs (docs/reliability.md), so that a
regression shows in CI: a few hundred clients, seconds long, the same checks.

Each run fails (its ``failures``) unless every client was served, the server's tables ended as
they began (sessions, clients, sockets, rooms, acknowledgements, tasks, cluster requests, the
monitoring registry) and nothing was logged as an error. Monitoring flushes every second here
(``FLUSH_INTERVAL``), so that the registry's last flush is not waited for long.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import httpx
import pytest

from bench import load
from tests.support.ci import require
from tests.support.services import redis_database

pytestmark = [pytest.mark.node, pytest.mark.timeout(120)]

#: The Redis database of the mass disconnect, flushed before and after.
REDIS_DB = int(os.environ.get("CSIO_RELIABILITY_REDIS_DB", "12"))


@pytest.fixture(autouse=True)
def _client(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench/client's npm packages, and monitoring's flush every second."""
    require(shutil.which("node") is not None, "Node.js")
    if not (load.CLIENT_DIR / "node_modules" / "socket.io-client").is_dir():
        require(shutil.which("npm") is not None, "npm (to install bench/client)")
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=load.CLIENT_DIR,
            check=True,
            timeout=120,
        )
    monkeypatch.setenv("FLUSH_INTERVAL", "1000")


def run(*argv: str) -> dict[str, Any]:
    result = load.run(argv)
    assert result["failures"] == [], result["failures"]
    return result


@pytest.mark.parametrize(("transport", "clients"), [("websocket", 300), ("polling", 200)])
def test_concurrent_clients_all_get_broadcasts_and_leave_nothing(
    transport: str, clients: int
) -> None:
    result = run(
        "concurrent",
        f"--transport={transport}",
        f"--clients={clients}",
        "--hold-seconds=2",
        "--warmup=20",
    )
    assert [b["received"] for b in result["broadcasts"]] == [clients, clients]
    # 35-75 KB on the full runs; only a gross regression (a buffer kept per session) shows at
    # a few hundred connections.
    assert result["rss_kb_per_connection"]["held"] < 200


def test_churn_soak_serves_every_cycle_and_leaves_nothing() -> None:
    result = run(
        "soak",
        "--minutes=0.25",
        "--warmup-minutes=0.08",
        "--clients=30",
        "--sample-seconds=1",
        # Ten seconds after a five-second warm-up: the bound catches a leak of whole sessions
        # (thousands of cycles, tens of KB each), not the slow growth the full run looks for.
        "--max-growth=0.5",
    )
    assert all(result["cycles"].values()), result["cycles"]


@pytest.mark.redis
def test_mass_disconnect_on_redis_leaves_nothing_but_expiring_keys() -> None:
    with redis_database(REDIS_DB) as url:
        result = run("mass-disconnect", "--clients=300", f"--redis-url={url}")
    assert result["rounds"]["server"]["sessions_per_server"] == [150, 150]
    assert all(ttl > 0 for ttl in result["redis_keys"].values())


def test_a_session_left_open_is_reported() -> None:
    """The check every run ends with finds what is left: here, a polling session."""
    with load.servers(load.parser().parse_args(["concurrent"]), 1) as (server,):
        idle = server.stats()
        response = httpx.get(server.url + "/socket.io/?EIO=4&transport=polling", timeout=5)
        assert response.status_code == 200
        problems = load.leftovers([server], [idle])
    assert any("engine_sessions 1 (before: 0)" in problem for problem in problems), problems
