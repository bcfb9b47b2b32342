"""A node's life: its heartbeat keeps it in the nodes' group past channels-redis's
group_expiry, and a clean stop (uvicorn's lifespan shutdown, daphne's reactor shutdown) says
BYE, so the other nodes drop it at once rather than after node_timeout (settings_expiry:
group_expiry 2 s, node_heartbeat 500 ms, node_timeout 30 s)."""

from __future__ import annotations

import time

import pytest
import redis

from .conftest import Driver, running_cluster, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.node]

SETTINGS = "tests.cluster.settings_expiry"
GROUP_EXPIRY = 2.0


def test_membership_outlives_group_expiry(redis_url: str, driver: Driver) -> None:
    with running_cluster(redis_url, SETTINGS, ("uvicorn", "daphne")) as cluster:
        for node in (0, 1):
            driver("open", name=f"C{node}", url=cluster[node].url, auth={"rooms": ["r"]})
        time.sleep(2.5 * GROUP_EXPIRY)
        # The group still holds both nodes, each re-added within the last heartbeats.
        group = f"{cluster.env['CSIO_LAYER_PREFIX']}:group:channels_sio.nodes"
        with redis.Redis.from_url(redis_url, socket_timeout=2) as client:
            members = client.zrange(group, 0, -1, withscores=True)
            now = float(client.time()[0])
        assert len(members) == 2
        assert all(now - score < GROUP_EXPIRY for _, score in members), (now, members)
        # channels_sio.emit from another process goes through the group: both nodes get it.
        cluster.django(
            "import channels_sio\nchannels_sio.emit('late', 'news', to='r', namespace='/cluster')"
        )
        for name in ("C0", "C1"):
            assert driver("wait", name=name, event="late") == [["late", "news"]]
        # And the nodes still know each other.
        cluster.wait_peers(timeout=1)
        driver("call", name="C1", event="cast", args=[{"event": "direct", "to": "r"}])
        assert driver("wait", name="C0", event="direct") == [["direct"]]


def test_a_stopping_node_says_bye(redis_url: str, driver: Driver) -> None:
    kinds = ("uvicorn", "uvicorn", "daphne")
    with running_cluster(redis_url, SETTINGS, kinds) as cluster:
        for node in range(3):
            driver("open", name=f"C{node}", url=cluster[node].url)
        group = f"{cluster.env['CSIO_LAYER_PREFIX']}:group:channels_sio.nodes"
        client = redis.Redis.from_url(redis_url, socket_timeout=2)
        try:
            assert client.zcard(group) == 3
            # uvicorn: SIGTERM runs the lifespan shutdown, which stops the node.
            stopped_at = time.monotonic()
            assert cluster[1].stop() == 0
            for node in (0, 2):
                expected = [cluster.ids[2 - node]]
                wait_for(
                    lambda n=node, e=expected: cluster.node(cluster[n])["peers"] == e,
                    2,
                    f"node {node} drops the stopped uvicorn node",
                )
            # Far sooner than node_timeout (30 s): because of its BYE.
            assert time.monotonic() - stopped_at < 5
            assert client.zcard(group) == 2
            # daphne runs no lifespan: its reactor shutdown stops the node.
            assert cluster[2].stop() == 0
            wait_for(lambda: cluster.node(cluster[0])["peers"] == [], 2, "daphne node dropped")
            assert client.zcard(group) == 1
            assert driver("state", name="C0")["connected"] is True
        finally:
            client.close()
