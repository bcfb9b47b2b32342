"""SIGKILL one node of three: the others carry on at once, and within node_timeout they drop
it, so its sockets leave fetch_sockets (settings_fast_nodes: heartbeat 500 ms, timeout 1.5 s,
request_timeout 1 s)."""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Any

import httpx
import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from .conftest import Driver, running_cluster, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.node]

SETTINGS = "tests.cluster.settings_fast_nodes"
HEARTBEAT, NODE_TIMEOUT, REQUEST_TIMEOUT = 0.5, 1.5, 1.0
# More broadcasts than channels-redis keeps for a channel nobody reads (capacity 100).
BURST = 150


def test_killed_node_is_dropped_and_the_others_carry_on(redis_url: str, driver: Driver) -> None:
    with running_cluster(redis_url, SETTINGS, ("uvicorn", "daphne", "uvicorn")) as cluster:
        ids: dict[str, str] = {}
        for node in range(3):
            ids[f"A{node}"] = driver(
                "open", name=f"A{node}", url=cluster[node].url, auth={"rooms": ["r"]}
            )["id"]

        def fetched(via: str) -> list[str]:
            names = {socket_id: name for name, socket_id in ids.items()}
            found = driver("call", name=via, event="fetch", args=[{}], ms=4000)
            return sorted(names[s["id"]] for s in found)

        assert fetched("A0") == ["A0", "A1", "A2"]
        # A polling session of the victim, its long poll forwarded by node 0.
        http = httpx.Client(timeout=10)
        opened = http.get(
            cluster[2].url + "/socket.io/", params={"EIO": "4", "transport": "polling"}
        )
        params = {"EIO": "4", "transport": "polling", "sid": json.loads(opened.text[1:])["sid"]}
        assert http.post(cluster[0].url + "/socket.io/", params=params, content="40").text == "ok"
        assert http.get(cluster[0].url + "/socket.io/", params=params).text.startswith("40{")
        answered: dict[str, Any] = {}

        def poll() -> None:
            answer = http.get(cluster[0].url + "/socket.io/", params=params)
            answered["poll"] = (answer.status_code, answer.json(), time.monotonic())

        poller = threading.Thread(target=poll)
        poller.start()
        time.sleep(0.3)

        victim = cluster[2].proc
        assert victim is not None
        victim.send_signal(signal.SIGKILL)
        victim.wait(5)
        killed_at = time.monotonic()

        # Broadcasts from the survivors reach their clients at once, even a burst larger than
        # the dead node's channel holds.
        for number in range(BURST):
            sender = f"A{number % 2}"
            spec = {"event": "news", "args": [number], "to": "r"}
            assert driver("call", name=sender, event="cast", args=[spec], ms=2000)
        for name in ("A0", "A1"):
            got = driver("wait", name=name, event="news", count=BURST)
            # Each once; only the order of one sender's broadcasts is kept between nodes.
            assert sorted(e[1] for e in got) == list(range(BURST))
            assert [e[1] for e in got if e[1] % 2 == 0] == list(range(0, BURST, 2))

        # Within node_timeout (plus the heartbeat that notices it) the survivors drop the
        # killed node; meanwhile fetch_sockets answers after request_timeout without its sockets.
        bound = NODE_TIMEOUT + HEARTBEAT + 1.0
        for survivor in (0, 1):
            expected = [cluster.ids[1 - survivor]]
            wait_for(
                lambda s=survivor, e=expected: cluster.node(cluster[s])["peers"] == e,
                bound,
                f"node {survivor} drops the killed node",
            )
        assert time.monotonic() - killed_at < bound
        # ... and take its channel out of the nodes' group (else it stays for group_expiry).
        group = f"{cluster.env['CSIO_LAYER_PREFIX']}:group:channels_sio.nodes"
        with redis.Redis.from_url(redis_url, socket_timeout=2) as client:
            wait_for(lambda: client.zcard(group) == 2, 2, "the killed node leaves the group")
        # From then on, requests to every node no longer wait for the dead one.
        for via in ("A0", "A1"):
            started = time.monotonic()
            assert fetched(via) == ["A0", "A1"]
            answer = driver("call", name=via, event="ask-all", args=[{"timeout": 3000}])
            assert answer == {"responses": ["A0", "A1"]}
            assert time.monotonic() - started < REQUEST_TIMEOUT
        assert driver("disconnected", name="A2") == "transport close"
        # The forwarded poll was answered once its owner was declared lost, not after the
        # forwarding limit (ping_interval + ping_timeout + 5 s = 20 s here).
        poller.join(5)
        http.close()
        status, body, at = answered["poll"]
        assert (status, body) == (400, {"code": 1, "message": "Session ID unknown"})
        assert at - killed_at < bound


def _read_until_closed(ws: ClientConnection, timeout: float) -> None:
    while True:
        ws.recv(timeout=timeout)


def test_a_socket_relayed_to_a_killed_owner_closes(redis_url: str) -> None:
    """An upgrade relayed to its session's owner (it came after ``upgrade_window``): when the
    owner dies, the relaying node closes the socket once the owner is declared lost, and the
    client reconnects."""
    with (
        running_cluster(redis_url, SETTINGS, ("uvicorn", "daphne")) as cluster,
        httpx.Client(timeout=5) as http,
    ):
        owner, other = cluster[0], cluster[1]
        handshake = http.get(owner.url + "/socket.io/", params={"EIO": "4", "transport": "polling"})
        sid = json.loads(handshake.text[1:])["sid"]
        time.sleep(0.5)  # past the window: the session's connect handler has run
        query = f"EIO=4&transport=websocket&sid={sid}"
        with connect(f"ws://127.0.0.1:{other.port}/socket.io/?{query}", open_timeout=5) as ws:
            ws.send("2probe")
            assert ws.recv(timeout=3) == "3probe"  # the owner's answer, relayed
            params = {"EIO": "4", "transport": "polling", "sid": sid}
            assert http.get(owner.url + "/socket.io/", params=params).text == "6"
            ws.send("5")
            victim = owner.proc
            assert victim is not None
            victim.send_signal(signal.SIGKILL)
            victim.wait(5)
            killed_at = time.monotonic()
            with pytest.raises(ConnectionClosed):
                _read_until_closed(ws, NODE_TIMEOUT + 2 * HEARTBEAT + 2)
            assert time.monotonic() - killed_at < NODE_TIMEOUT + 2 * HEARTBEAT + 2
        assert "Traceback" not in other.log(), other.log()[-3000:]
