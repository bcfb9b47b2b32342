"""A node's life: its heartbeat keeps it in the nodes' group past channels-redis's
group_expiry, and a clean stop (uvicorn's lifespan shutdown, daphne's reactor shutdown) says
BYE, so the other nodes drop it at once rather than after node_timeout (settings_expiry:
group_expiry 2 s, node_heartbeat 500 ms, node_timeout 30 s)."""

from __future__ import annotations

import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis

from .conftest import Cluster, Driver, running_cluster, wait_for

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
            auth = {"data": {"name": f"C{node}"}, "announce": True}
            driver("open", name=f"C{node}", url=cluster[node].url, auth=auth)
        driver("open", name="W", url=cluster[0].url, auth={"rooms": ["watchers"]})
        group = f"{cluster.env['CSIO_LAYER_PREFIX']}:group:channels_sio.nodes"
        client = redis.Redis.from_url(redis_url, socket_timeout=2)
        try:
            assert client.zcard(group) == 3
            # uvicorn: SIGTERM runs the lifespan shutdown, which stops the node.
            stopped_at = time.monotonic()
            # A clean exit (uvicorn re-raises the SIGTERM it handled).
            assert cluster[1].stop() in (0, -signal.SIGTERM), cluster[1].log()
            for node in (0, 2):
                expected = [cluster.ids[2 - node]]
                wait_for(
                    lambda n=node, e=expected: cluster.node(cluster[n])["peers"] == e,
                    2,
                    f"node {node} drops the stopped uvicorn node",
                )
            # Far sooner than node_timeout (30 s): because of its BYE.
            assert time.monotonic() - stopped_at < 5
            # It closed its sessions before leaving: its disconnect handler's broadcast
            # reached the watcher on node 0.
            left = driver("wait", name="W", event="left")
            assert left == [["left", "C1", "server shutting down"]]
            assert client.zcard(group) == 2
            # daphne runs no lifespan: its reactor shutdown stops the node.
            assert cluster[2].stop() in (0, -signal.SIGTERM), cluster[2].log()
            wait_for(lambda: cluster.node(cluster[0])["peers"] == [], 2, "daphne node dropped")
            left = driver("wait", name="W", event="left", count=2)
            assert left[1] == ["left", "C2", "server shutting down"]
            assert client.zcard(group) == 1
            assert driver("state", name="C0")["connected"] is True
        finally:
            client.close()


@pytest.mark.parametrize("owner_kind", ["uvicorn", "daphne"])
def test_a_poll_forwarded_to_a_stopping_node_gets_its_close_packet(
    redis_url: str, owner_kind: str
) -> None:
    """The stopping node closes its sessions before it leaves: a poll that another node
    forwarded to it is answered with the close packet, not after the forwarding limit
    (ping_interval + ping_timeout + 5 s = 20 s here)."""
    with running_cluster(redis_url, SETTINGS, (owner_kind, "uvicorn")) as cluster:
        owner, other = cluster[0], cluster[1]
        with httpx.Client(timeout=30) as http:
            opened = http.get(
                owner.url + "/socket.io/", params={"EIO": "4", "transport": "polling"}
            )
            params = {"EIO": "4", "transport": "polling", "sid": json.loads(opened.text[1:])["sid"]}
            assert http.post(other.url + "/socket.io/", params=params, content="40").text == "ok"
            assert http.get(other.url + "/socket.io/", params=params).text.startswith("40{")
            answered: dict[str, Any] = {}

            def poll() -> None:
                answer = http.get(other.url + "/socket.io/", params=params)
                answered["poll"] = (answer.status_code, answer.text, time.monotonic())

            poller = threading.Thread(target=poll)
            poller.start()
            time.sleep(0.5)  # the poll waits at the owner, through the other node
            stopping = time.monotonic()
            assert owner.stop() in (0, -signal.SIGTERM), owner.log()
            poller.join(25)
        status, body, at = answered["poll"]
        assert (status, body) == (200, "1")  # CLOSE ("server shutting down")
        assert at - stopping < 3


@pytest.mark.parametrize("attempt", range(3))
def test_nodes_start_with_the_server_and_a_first_broadcast_reaches_every_node(
    redis_url: str, driver: Driver, attempt: int
) -> None:
    # Fresh processes, and nothing asks for their nodes first: the first Socket.IO request of
    # each is a client connecting, and the very first broadcast must reach the other process.
    cluster = Cluster(redis_url, "tests.cluster.settings_cluster", ("uvicorn", "daphne"))
    group = f"{cluster.env['CSIO_LAYER_PREFIX']}:group:channels_sio.nodes"
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda server: server.start(), cluster.servers))
        with redis.Redis.from_url(redis_url, socket_timeout=2) as client:
            # Both nodes joined the group when their server started (lifespan / reactor start).
            wait_for(lambda: client.zcard(group) == 2, 5, "both nodes in the group")
        for node in (0, 1):
            driver("open", name=f"C{node}", url=cluster[node].url, auth={"rooms": ["r"]})
        driver(
            "call", name="C0", event="cast", args=[{"event": "tick", "args": [attempt], "to": "r"}]
        )
        assert driver("wait", name="C1", event="tick") == [["tick", attempt]]
        driver("call", name="C1", event="cast", args=[{"event": "tock", "to": "r"}])
        assert driver("wait", name="C0", event="tock") == [["tock"]]
    finally:
        cluster.stop()
    for server in cluster.servers:
        assert "Traceback" not in server.log(), server.log()
