"""PostgreSQL restarted (``pg_ctl restart -m fast``: every backend terminated) under traffic,
on two nodes (uvicorn and daphne) whose recovery store and Django ORM use it: no worker
exits, handlers that use the ORM and connection state recovery resume by themselves (the
store's connections are made again, the idle ones before their next statement), and the outage
is logged once per node."""

from __future__ import annotations

import threading
import time

import pytest

from tests.cluster.conftest import Cluster
from tests.support import servers
from tests.support.driver import Driver, driver, wait_for
from tests.support.faults import (
    NSP,
    SETTINGS,
    STORE_BACK,
    STORE_DOWN,
    ThrowawayPostgres,
    ThrowawayRedis,
    cast,
    postgres,
    redis_server,
    two_nodes,
)
from tests.support.node import require_node

__all__ = ["driver", "postgres", "redis_server"]  # fixtures

pytestmark = [pytest.mark.node, pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

RESUME_BOUND = 5.0  # seconds after the restart


def open_on(driver: Driver, cluster: Cluster, node: int, name: str) -> dict[str, object]:
    url = cluster[node].url
    return dict(
        driver("open", name=name, url=url, nsp=NSP, transports="websocket", auth={"rooms": ["x"]})
    )


def kept(postgres: ThrowawayPostgres, pid: str) -> bool:
    import psycopg

    with psycopg.connect(postgres.url, autocommit=True) as connection:
        query = "SELECT 1 FROM channels_sio_recoverysession WHERE pid = %s"
        return connection.execute(query, [pid]).fetchone() is not None


def test_postgres_restarted_under_traffic(
    postgres: ThrowawayPostgres, redis_server: ThrowawayRedis, driver: Driver
) -> None:
    require_node()
    env = {"CSIO_RECOVERY_STORE": "database", "DATABASE_URL": postgres.url}
    servers.manage(SETTINGS, {**env, "REDIS_URL": f"{redis_server.url}/0"}, "migrate", "--noinput")
    with two_nodes(redis_server, env) as (cluster, logs):
        a = open_on(driver, cluster, 0, "A")
        open_on(driver, cluster, 1, "B")
        c = open_on(driver, cluster, 0, "C")
        assert driver("call", name="A", event="users") == 0
        cast(driver, "B", "before")
        driver("wait", name="A", event="before")
        driver("drop", name="A")
        wait_for(lambda: kept(postgres, str(a["pid"])), 5, "A's session kept")

        restarting = threading.Thread(target=postgres.restart)
        restarting.start()
        sent = 0
        while restarting.is_alive():  # broadcasts go on while the database restarts
            cast(driver, "B", "during", sent)
            sent += 1
            time.sleep(0.05)
        restarting.join()
        restarted = time.monotonic()
        driver("wait", name="C", event="during", count=sent)  # none lost for live sockets

        def recorded_again() -> bool:
            cast(driver, "B", "after")
            # B's own broadcast came before its acknowledgement: the last, with an offset?
            last = driver("events", name="B", event="after")[-1]
            return len(last) == 2 and isinstance(last[-1], str)

        wait_for(recorded_again, RESUME_BOUND, "the store records again", interval=0.2)
        for via in ("B", "C"):  # handlers that use the ORM work again, on both nodes
            assert driver("call", name=via, event="users") == 0
        resumed = time.monotonic() - restarted
        # A session kept before the restart is restored after it, on the other node ...
        back = driver("reconnect", name="A", url=cluster[1].url)
        assert (back["recovered"], back["id"]) == (True, a["id"])
        # ... and one kept after it too: node 0's store thread had nothing to do across the
        # restart, and its connection, ended by it, is made again before C's session is
        # written, rather than failing that write.
        driver("drop", name="C")
        wait_for(lambda: kept(postgres, str(c["pid"])), 5, "C's session kept")
        assert driver("reconnect", name="C", url=cluster[1].url)["recovered"] is True
        assert cluster.alive() == [0, 1], cluster.logs()
        print(
            f"\n{sent} broadcasts while PostgreSQL restarted; recorded again {resumed:.1f} s after"
        )
        for server, offset in zip(cluster.servers, logs, strict=True):
            log = server.log_since(offset)
            counts = {what: log.count(what) for what in (STORE_DOWN, STORE_BACK)}
            assert counts[STORE_DOWN] <= 1, (server.kind, counts, log[-4000:])  # per outage
            assert counts[STORE_BACK] == counts[STORE_DOWN], (server.kind, counts)
            assert len(log) < 20_000, (server.kind, len(log), log[-4000:])
