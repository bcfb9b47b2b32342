"""Redis stopped for 10 s under traffic, then started again empty, on two nodes (uvicorn and
daphne) that use it for the channel layer and the recovery store: local delivery never stops,
no worker exits, the cluster bus and the store resume by themselves, and each outage is logged
once per component, not once per message."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.driver import Driver, driver, wait_for
from tests.support.faults import (
    NSP,
    STORE_BACK,
    STORE_DOWN,
    ThrowawayRedis,
    cast,
    redis_server,
    two_nodes,
)
from tests.support.node import require_node

__all__ = ["driver", "redis_server"]  # fixtures

pytestmark = [pytest.mark.node, pytest.mark.redis, pytest.mark.slow]

OUTAGE = 10.0  # seconds
#: Within this, once Redis is back, a broadcast from one node reaches the other again.
RESUME_BOUND = 5.0

BUS_DOWN = "the channel layer failed"
BUS_BACK = "the channel layer answers again"


def test_redis_stopped_and_started_again_under_traffic(
    redis_server: ThrowawayRedis, driver: Driver
) -> None:
    require_node()
    options = {"url": f"{redis_server.url}/1", "prefix": "outage"}
    env = {"CSIO_RECOVERY_STORE": "redis", "CSIO_RECOVERY_OPTIONS": json.dumps(options)}
    with two_nodes(redis_server, env) as (cluster, logs):
        for name, node in (("A0", 0), ("L0", 0), ("A1", 1)):
            driver(
                "open",
                name=name,
                url=cluster[node].url,
                nsp=NSP,
                transports="websocket",
                auth={"rooms": ["x"]},
            )
        cast(driver, "A0", "before")
        driver("wait", name="A1", event="before")

        redis_server.stop()
        stopped = time.monotonic()
        sent = 0
        while time.monotonic() - stopped < OUTAGE:
            # Each node's clients still get what is sent on that node, at once.
            cast(driver, "A0", "during", sent)
            cast(driver, "A1", "during", sent)
            sent += 1
            for name in ("L0", "A1"):
                driver("wait", name=name, event="during", count=sent)
            time.sleep(0.25)
        assert cluster.alive() == [0, 1], cluster.logs()
        # Sent while the store was down: no offset.
        assert [len(e) for e in driver("events", name="L0", event="during")] == [2] * sent

        redis_server.start()
        restarted = time.monotonic()

        def crossed() -> bool:
            cast(driver, "A0", "after")
            return bool(driver("events", name="A1", event="after"))

        wait_for(crossed, RESUME_BOUND, "a broadcast crosses nodes again", interval=0.2)
        resumed = time.monotonic() - restarted
        # ... and is recorded again: with an offset, its last argument.
        cast(driver, "A0", "recorded", 1)
        cast(driver, "A1", "recorded", 2)
        got = driver("wait", name="L0", event="recorded", count=2)
        assert sorted(event[1] for event in got) == [1, 2]
        assert all(len(event) == 3 and isinstance(event[-1], str) for event in got)
        assert cluster.alive() == [0, 1], cluster.logs()
        print(
            f"\n{sent} x 2 broadcasts during a {OUTAGE:.0f} s outage; cross-node again "
            f"{resumed:.1f} s after the restart"
        )

        for server, offset in zip(cluster.servers, logs, strict=True):
            log = server.log_since(offset)
            counts = {
                what: log.count(what) for what in (BUS_DOWN, BUS_BACK, STORE_DOWN, STORE_BACK)
            }
            # Once per component: not once per broadcast (2 x sent) or per retry.
            assert counts == dict.fromkeys(counts, 1), (server.kind, counts, log[-4000:])
            # And nothing else per message: a traceback per broadcast would be 2 kB each.
            assert len(log) < 12_000, (server.kind, len(log), log[-4000:])
