"""A worker killed with SIGKILL, in a two-process server (channels-redis, PostgreSQL): the
surviving node marks it gone, raises the critical "node gone" alarm naming the sessions it
left, purges its rows after the retention, and the alarm resolves itself."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests.support.ci import require
from tests.support.services import postgres_database, postgres_reachable, redis_database

from .e2e import RawClient, manage, postgres_registry, start

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

#: The Redis database of this suite (cluster 7, recovery 8, bench 5).
REDIS_DB = 11

T = TypeVar("T")


async def off(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(function, *args, **kwargs)


@pytest.fixture
def cluster_env() -> Iterator[dict[str, str]]:
    """Redis and a fresh, migrated PostgreSQL database for the processes of one server."""
    require(postgres_reachable(), "PostgreSQL (CSIO_POSTGRES_URL)")
    with redis_database(REDIS_DB) as redis_url, postgres_database("monitoring") as database_url:
        env = {
            "REDIS_URL": redis_url,
            "CSIO_LAYER_PREFIX": f"csio{secrets.token_hex(4)}",
            "DATABASE_URL": database_url,
        }
        manage(env, "migrate", "--noinput")
        yield env


@pytest.fixture
async def raw() -> AsyncIterator[Callable[..., RawClient]]:
    made: list[RawClient] = []

    def make(*args: Any, **kwargs: Any) -> RawClient:
        client = RawClient(*args, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


async def test_a_killed_worker_is_a_node_gone_alarm_until_its_rows_expire(
    cluster_env: dict[str, str], raw: Callable[..., RawClient]
) -> None:
    registry = postgres_registry(cluster_env["DATABASE_URL"])
    victim = await off(start, "uvicorn", cluster_env, registry)
    survivor = None
    try:
        survivor = await off(start, "uvicorn", cluster_env, registry)
        left = await raw(victim.process, "10.20.0.1", "victim/1.0").open()
        stays = await raw(survivor.process, "10.20.0.2", "survivor/1.0").open()
        for client in (left, stays):
            await off(registry.wait, lambda c=client: registry.session(c.sid), f"{client.sid}")
        victim_id = victim.node()["id"]
        assert registry.session(left.sid)["node_id"] == victim_id  # type: ignore[index]

        assert victim.process.proc is not None
        victim.process.proc.kill()
        await off(victim.process.proc.wait)
        await left.closed_by_server()  # its TCP connection died with the process

        alarm = await off(registry.wait_alarm, "node_gone", victim_id)
        assert alarm["severity"] == "critical"
        assert alarm["sids"] == [left.sid]
        assert alarm["details"]["sessions"] == 1
        assert alarm["details"]["pid"] == victim.pid
        assert registry.table("node", "id = ?", victim_id)[0]["gone_at"] is not None
        row = registry.session(left.sid)
        assert row is None or row["state"] == "gone"  # (or already purged)

        # Its rows expire (retention: 3 s), and with them the alarm.
        await off(
            registry.wait,
            lambda: not registry.table("node", "id = ?", victim_id),
            "the killed node's row purged",
        )
        assert registry.sessions("node_id = ?", victim_id) == []
        await off(
            registry.wait,
            lambda: registry.alarms("node_gone")[0]["resolved_at"],
            "the node gone alarm resolved",
        )
        # The survivor and its session were never in doubt.
        assert registry.session(stays.sid)["state"] == "live"  # type: ignore[index]
        assert [a["kind"] for a in registry.alarms()] == ["node_gone"]
        log = survivor.log()
        assert log.count("leak alarm raised: node gone (critical)") == 1, log
        assert f"signal leak_resolved node_gone {victim_id} resolved=True" in log
        await stays.close()
        await off(survivor.stop_cleanly)
    finally:
        victim.process.stop()
        if survivor is not None:
            survivor.process.stop()
