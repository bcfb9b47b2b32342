"""Long-polling without sticky sessions: a round-robin proxy sends a polling-only client's
requests to two nodes in turn; the node that does not own the sid forwards them over the bus
(``forward_polling``), or answers "Session ID unknown" when that is turned off. A WebSocket
upgrade for a sid owned elsewhere is refused and the session carries on over polling."""

from __future__ import annotations

import json
import time
from collections import Counter

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from .conftest import Driver, Proxy, running_cluster

pytestmark = [pytest.mark.redis, pytest.mark.node]

UNKNOWN_SID = {"code": 1, "message": "Session ID unknown"}
CHAT_SECONDS = 3.0  # with ping_interval 300 ms: about ten heartbeats


def test_polling_client_alternating_between_nodes_chats(redis_url: str, driver: Driver) -> None:
    settings = "tests.cluster.settings_polling"
    with running_cluster(redis_url, settings, ("uvicorn", "daphne")) as cluster:
        proxy = Proxy(cluster.servers)
        try:
            polling = driver(
                "open",
                name="P",
                url=proxy.url,
                transports="polling",
                auth={"rooms": ["chat"]},
            )
            owner = cluster.ids[0] if polling["eio"].startswith(cluster.ids[0]) else cluster.ids[1]
            assert polling["eio"].startswith(owner)
            for node in (0, 1):
                driver("open", name=f"W{node}", url=cluster[node].url, auth={"rooms": ["chat"]})
            started = time.monotonic()
            turn = 0
            while time.monotonic() - started < CHAT_SECONDS:
                # The polling client emits with an acknowledgement, and is broadcast to.
                sent_from = driver(
                    "call",
                    name="P",
                    event="cast",
                    args=[{"event": "chat", "args": ["P", turn], "to": "chat"}],
                )
                assert sent_from == owner
                other = f"W{turn % 2}"
                driver(
                    "call",
                    name=other,
                    event="cast",
                    args=[{"event": "chat", "args": [other, turn], "to": "chat"}],
                )
                for name in ("P", "W0", "W1"):
                    driver("wait", name=name, event="chat", count=2 * (turn + 1))
                turn += 1
                time.sleep(0.1)
            expected = []
            for number in range(turn):
                expected += [["chat", "P", number], ["chat", f"W{number % 2}", number]]
            for name in ("P", "W0", "W1"):
                assert driver("events", name=name, event="chat") == expected, name
            state = driver("state", name="P")
            assert state["connected"] is True
            assert state["eio"] == polling["eio"]  # the same session all along
            assert state["transport"] == "polling"

            log = [e for e in proxy.log() if e["sid"] == polling["eio"]]
            pending = [e for e in log if e["status"] is None]
            assert [e["method"] for e in pending] in ([], ["GET"])  # the long poll in progress
            answered = [e for e in log if e["status"] is not None]
            assert all(e["status"] == 200 for e in answered), answered
            by_node = Counter(
                cluster.ids[0] if e["backend"] == cluster[0].port else cluster.ids[1] for e in log
            )
            # Half of the requests landed on the node that does not own the sid.
            assert min(by_node.values()) >= turn, by_node
            assert set(by_node) == set(cluster.ids.values())
        finally:
            driver("close", name="P")
            proxy.close()


def test_without_forwarding_the_other_node_answers_session_id_unknown(
    redis_url: str, driver: Driver
) -> None:
    settings = "tests.cluster.settings_no_forward"
    with running_cluster(redis_url, settings, ("uvicorn", "uvicorn")) as cluster:
        proxy = Proxy(cluster.servers)
        try:
            outcome = driver("tryOpen", name="P", url=proxy.url, transports="polling")
            if "error" not in outcome:
                # Connected through a lucky order of requests: the next one fails.
                assert driver("disconnected", name="P") == "transport error"
            log = proxy.log()
            handshake = log[0]
            assert handshake["sid"] is None and handshake["status"] == 200
            refused = [e for e in log if e["status"] == 400]
            assert refused, log
            for entry in refused:
                assert entry["backend"] != handshake["backend"]  # the node not owning the sid
                assert json.loads(entry["body"]) == UNKNOWN_SID
        finally:
            driver("close", name="P")
            proxy.close()


def test_websocket_upgrade_on_another_node_is_refused(redis_url: str) -> None:
    settings = "tests.cluster.settings_polling"
    with running_cluster(redis_url, settings, ("uvicorn", "daphne")) as cluster:
        owner, other = cluster[0], cluster[1]
        with httpx.Client(timeout=5) as http:
            opened = http.get(
                owner.url + "/socket.io/", params={"EIO": "4", "transport": "polling"}
            )
            sid = json.loads(opened.text[1:])["sid"]
            assert sid.startswith(cluster.ids[0])
            query = f"EIO=4&transport=websocket&sid={sid}"
            with connect(f"ws://127.0.0.1:{other.port}/socket.io/?{query}", open_timeout=5) as ws:
                # Accepted, then closed at once, with nothing sent.
                with pytest.raises(ConnectionClosed):
                    ws.recv(timeout=3)
            # The session carries on over polling, through either node.
            params = {"EIO": "4", "transport": "polling", "sid": sid}
            answer = http.post(other.url + "/socket.io/", params=params, content="40")
            assert (answer.status_code, answer.text) == (200, "ok")
            answer = http.get(other.url + "/socket.io/", params=params)
            assert answer.status_code == 200
            assert answer.text.startswith("40{")  # the CONNECT reply, forwarded
            answer = http.get(owner.url + "/socket.io/", params=params)
            assert (answer.status_code, answer.text) == (200, "2")  # the next ping
            # And over WebSocket through its owner, with the probe.
            with connect(f"ws://127.0.0.1:{owner.port}/socket.io/?{query}", open_timeout=5) as ws:
                ws.send("2probe")
                assert ws.recv(timeout=3) == "3probe"
