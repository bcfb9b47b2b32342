"""Long-polling without sticky sessions: a round-robin proxy sends a polling-only client's
requests to two nodes in turn; the node that does not own the sid forwards them over the bus
(``forward_polling``), or answers "Session ID unknown" when that is turned off. A WebSocket
upgrade for a sid owned elsewhere takes the session over while its owner holds it
(``upgrade_window``); later, it is relayed to the owner."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import socketio
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support.servers import ServerProcess, socketio_leftovers

from .conftest import Cluster, Driver, proxied, running_cluster, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.node]

UNKNOWN_SID = {"code": 1, "message": "Session ID unknown"}
CHAT_SECONDS = 3.0  # with ping_interval 300 ms: about ten heartbeats


@pytest.fixture(scope="module")
def forwarding(redis_url: str) -> Iterator[Cluster]:
    """Two nodes forwarding polls (settings_polling), uvicorn and daphne."""
    settings = "tests.cluster.settings_polling"
    with running_cluster(redis_url, settings, ("uvicorn", "daphne")) as cluster:
        yield cluster


def _cast(driver: Driver, name: str, turn: int) -> str:
    spec = {"event": "chat", "args": [name, turn], "to": "chat"}
    return str(driver("call", name=name, event="cast", args=[spec]))


def test_polling_client_alternating_between_nodes_chats(
    forwarding: Cluster, driver: Driver
) -> None:
    cluster = forwarding
    with proxied(cluster.servers) as proxy:
        polling = driver(
            "open", name="P", url=proxy.url, transports="polling", auth={"rooms": ["chat"]}
        )
        owner = next(i for i in (0, 1) if polling["eio"].startswith(cluster.ids[i]))
        for node in (0, 1):
            driver("open", name=f"W{node}", url=cluster[node].url, auth={"rooms": ["chat"]})
        started = time.monotonic()
        turn = 0
        while time.monotonic() - started < CHAT_SECONDS:
            # The polling client emits with an acknowledgement, and gets broadcasts from
            # clients of both nodes.
            assert _cast(driver, "P", turn) == cluster.ids[owner]
            _cast(driver, f"W{turn % 2}", turn)
            turn += 1
            for name in ("P", "W0", "W1"):
                driver("wait", name=name, event="chat", count=2 * turn)
            time.sleep(0.1)
        expected = []
        for number in range(turn):
            expected += [["chat", "P", number], ["chat", f"W{number % 2}", number]]
        for name in ("P", "W0", "W1"):
            got = driver("events", name=name, event="chat")
            # Exactly once each; broadcasts from two different nodes may interleave, so only
            # each sender's own order is kept.
            assert sorted(got, key=repr) == sorted(expected, key=repr), name
            for sender in ("P", "W0", "W1"):
                mine = [event for event in got if event[1] == sender]
                assert mine == [event for event in expected if event[1] == sender], name
        state = driver("state", name="P")
        assert state["connected"] is True
        assert state["eio"] == polling["eio"]  # one session all along, through ~10 pings
        assert state["transport"] == "polling"

        def pending() -> list[str]:
            return [
                e["method"]
                for e in proxy.log()
                if e["sid"] == polling["eio"] and e["status"] is None
            ]

        # The long poll in progress, and nothing else for long: a pong's POST may be on its way
        # (the client answers every ping), but none waits for an answer that never comes.
        deadline = time.monotonic() + 5
        while "POST" in pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pending() in ([], ["GET"])
        log = [e for e in proxy.log() if e["sid"] == polling["eio"]]
        answered = [e for e in log if e["status"] is not None]
        assert all(e["status"] == 200 for e in answered), answered
        # Half of the requests landed on the node that does not own the sid.
        by_port = Counter(e["backend"] for e in log)
        assert set(by_port) == {cluster[0].port, cluster[1].port}
        assert min(by_port.values()) >= turn, by_port
        driver("close", name="P")


@pytest.mark.parametrize(
    ("upgrades_to", "transport"),
    [pytest.param(1, "websocket", id="to-other-node"), pytest.param(0, "websocket", id="to-owner")],
)
def test_upgrade_through_a_proxy_without_stickiness(
    forwarding: Cluster, driver: Driver, upgrades_to: int, transport: str
) -> None:
    """The client upgrades wherever its probe lands: on the owner, or on the other node,
    which takes the session over (it was held for ``upgrade_window``)."""
    cluster = forwarding
    with proxied(cluster.servers, upgrades_to) as proxy:
        client = driver(
            "open",
            name="U",
            url=proxy.url,
            transports="polling,websocket",
            auth={"rooms": ["chat"]},
        )
        # The handshake is the proxy's first request: node 0 owns the session.
        assert client["eio"].startswith(cluster.ids[0])
        driver("open", name="W1", url=cluster[1].url, auth={"rooms": ["chat"]})
        wait_for(
            lambda: [e["sid"] for e in proxy.log() if e["method"] == "UPGRADE"] == [client["eio"]],
            5,
            "the upgrade probe",
        )
        wait_for(lambda: driver("state", name="U")["transport"] == transport, 5, f"on {transport}")
        time.sleep(0.5)  # a refused probe leaves the client as it was
        for turn in range(5):
            _cast(driver, "U", turn)
            _cast(driver, "W1", turn)
            for name in ("U", "W1"):
                driver("wait", name=name, event="chat", count=2 * (turn + 1))
        state = driver("state", name="U")
        assert (state["connected"], state["eio"], state["transport"]) == (
            True,
            client["eio"],
            transport,
        )
        driver("close", name="U")


def test_without_forwarding_the_other_node_answers_session_id_unknown(
    redis_url: str, driver: Driver
) -> None:
    settings = "tests.cluster.settings_no_forward"
    with (
        running_cluster(redis_url, settings, ("uvicorn", "uvicorn")) as cluster,
        proxied(cluster.servers) as proxy,
    ):
        outcome = driver("tryOpen", name="P", url=proxy.url, transports="polling")
        if "error" not in outcome:
            # Connected through a lucky order of requests: the next one fails.
            assert driver("disconnected", name="P") == "transport error"
        assert driver("state", name="P")["connected"] is False
        log = proxy.log()
        handshake = log[0]
        assert (handshake["sid"], handshake["status"]) == (None, 200)
        refused = [e for e in log if e["status"] == 400]
        assert refused, log
        for entry in refused:
            assert entry["backend"] != handshake["backend"]  # the node not owning the sid
            assert json.loads(entry["body"]) == UNKNOWN_SID
        driver("close", name="P")


def _handshake(http: httpx.Client, server_url: str, **headers: str) -> str:
    opened = http.get(
        server_url + "/socket.io/", params={"EIO": "4", "transport": "polling"}, headers=headers
    )
    return str(json.loads(opened.text[1:])["sid"])


def _poll(http: httpx.Client, server_url: str, params: dict[str, str]) -> str:
    """One GET; a ping in it is answered."""
    answer = http.get(server_url + "/socket.io/", params=params)
    assert answer.status_code == 200, answer.text
    if "2" in answer.text.split("\x1e"):
        pong = http.post(server_url + "/socket.io/", params=params, content="3")
        assert pong.status_code == 200
    return answer.text


def _upgrade_relayed(
    ws: ClientConnection, http: httpx.Client, owner: ServerProcess, params: dict[str, str]
) -> None:
    """Upgrade the polling session of ``params`` onto ``ws``, a WebSocket that another node
    relays to ``owner``: probe, the owner's noop to the poll, the upgrade packet."""
    ws.send("2probe")
    assert ws.recv(timeout=3) == "3probe"
    wait_for(lambda: _poll(http, owner.url, params) == "6", 3, "the noop")
    ws.send("5")
    wait_for(
        lambda: (
            owner.state()["socketio"]["sessions"].get(params["sid"])  # type: ignore[index]
            == {"state": "open", "transport": "websocket"}
        ),
        3,
        "the upgrade on the owner",
    )


def _connected(http: httpx.Client, server_url: str, auth: dict[str, Any]) -> dict[str, str]:
    """A long-polling session of ``server_url`` connected to /cluster with ``auth``; its
    query parameters."""
    sid = _handshake(http, server_url)
    params = {"EIO": "4", "transport": "polling", "sid": sid}
    answer = http.post(
        server_url + "/socket.io/", params=params, content=f"40/cluster,{json.dumps(auth)}"
    )
    assert (answer.status_code, answer.text) == (200, "ok")
    wait_for(lambda: "40/cluster,{" in _poll(http, server_url, params), 3, "the CONNECT")
    return params


@contextlib.contextmanager
def _relayed_not_reading(
    http: httpx.Client, owner: ServerProcess, relay: ServerProcess, auth: dict[str, Any]
) -> Iterator[tuple[ClientConnection, str, Callable[[], None]]]:
    """A session of ``owner`` connected to /cluster with ``auth``, upgraded onto a WebSocket
    that ``relay`` relays, whose client reads nothing until the caller calls ``resume`` (or
    leaves); the WebSocket, the sid and ``resume``."""
    params = _connected(http, owner.url, auth)
    sid = params["sid"]
    query = f"EIO=4&transport=websocket&sid={sid}"
    url = f"ws://127.0.0.1:{relay.port}/socket.io/?{query}"
    # A small receive buffer (Linux would grow it to 32 MB), so that the client's kernel
    # stops taking data soon after it stops reading.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65_536)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", relay.port))
    with connect(url, sock=sock, open_timeout=5, compression=None, max_size=None) as ws:
        _upgrade_relayed(ws, http, owner, params)
        # The client's reading thread stops (websockets holds this lock while it reads).
        ws.recv_flow_control.acquire()
        stopped = [True]

        def resume() -> None:
            if stopped:
                stopped.clear()
                ws.recv_flow_control.release()

        try:
            yield ws, sid, resume
        finally:
            resume()  # or closing would wait for the reading thread forever


def _wait_closed_on(owner: ServerProcess, sid: str) -> None:
    wait_for(
        lambda: sid not in owner.state()["socketio"]["sessions"],  # type: ignore[index]
        3,
        "the session closed on its owner",
    )


def test_websocket_upgrade_on_another_node_takes_the_held_session_over(
    forwarding: Cluster,
) -> None:
    """Within ``upgrade_window`` the session is held on its owner, with the CONNECT the
    client posted; the node the upgrade reaches takes it over, CONNECT included."""
    owner, other = forwarding[0], forwarding[1]
    with httpx.Client(timeout=5) as http:
        sid = _handshake(http, owner.url)
        assert sid.startswith(forwarding.ids[0])
        params = {"EIO": "4", "transport": "polling", "sid": sid}
        answer = http.post(owner.url + "/socket.io/", params=params, content="40")
        assert (answer.status_code, answer.text) == (200, "ok")
        query = f"EIO=4&transport=websocket&sid={sid}"
        with connect(f"ws://127.0.0.1:{other.port}/socket.io/?{query}", open_timeout=5) as ws:
            ws.send("2probe")
            assert ws.recv(timeout=3) == "3probe"
            # The owner answers the pending (or next) poll with a noop, so the client pauses.
            answer = http.get(owner.url + "/socket.io/", params=params)
            assert (answer.status_code, answer.text) == (200, "6")
            ws.send("5")
            connected = ws.recv(timeout=3)
            assert isinstance(connected, str)
            assert connected.startswith("40{")
            taken = other.state()["socketio"]["sessions"]  # type: ignore[index]
            assert taken[sid] == {"state": "open", "transport": "websocket"}
            assert sid not in owner.state()["socketio"]["sessions"]  # type: ignore[index]
            # The session goes on over its WebSocket, heartbeats included.
            for _ in range(2):
                assert ws.recv(timeout=3) == "2"
                ws.send("3")
            # Polling for it is over: the owner no longer knows it.
            answer = http.get(owner.url + "/socket.io/", params=params)
            assert (answer.status_code, answer.json()) == (400, UNKNOWN_SID)
        assert not socketio_leftovers(other.wait_idle())


def test_websocket_upgrade_on_another_node_after_the_window_is_relayed(
    forwarding: Cluster,
) -> None:
    """Once its connect handler ran, the session stays with its owner: the node the upgrade
    reaches relays the WebSocket's frames both ways, and the owner upgrades the session onto
    it. Closing the socket there closes the session on its owner."""
    owner, other = forwarding[0], forwarding[1]
    with httpx.Client(timeout=5) as http:
        sid = _handshake(http, owner.url)
        assert sid.startswith(forwarding.ids[0])
        params = {"EIO": "4", "transport": "polling", "sid": sid}
        answer = http.post(other.url + "/socket.io/", params=params, content="40")
        assert (answer.status_code, answer.text) == (200, "ok")
        # The CONNECT reply comes after the window (with a ping perhaps first), forwarded.
        wait_for(lambda: "40{" in _poll(http, other.url, params), 3, "the CONNECT reply")
        query = f"EIO=4&transport=websocket&sid={sid}"
        with connect(f"ws://127.0.0.1:{other.port}/socket.io/?{query}", open_timeout=5) as ws:
            _upgrade_relayed(ws, http, owner, params)
            assert sid not in other.state()["socketio"]["sessions"]  # type: ignore[index]
            for _ in range(2):  # the owner's heartbeat, through the relay
                assert ws.recv(timeout=3) == "2"
                ws.send("3")
        _wait_closed_on(owner, sid)
        assert not socketio_leftovers(owner.wait_idle())


def test_forwarded_answers_carry_cors_headers_once(forwarding: Cluster) -> None:
    owner, other = forwarding[0], forwarding[1]
    origin = "http://client.example"
    with httpx.Client(timeout=5, headers={"origin": origin}) as http:
        sid = _handshake(http, owner.url)
        params = {"EIO": "4", "transport": "polling", "sid": sid}
        for server in (owner, other):  # direct, then forwarded
            answer = http.post(server.url + "/socket.io/", params=params, content="3")
            assert (answer.status_code, answer.text) == (200, "ok")
            assert answer.headers.get_list("access-control-allow-origin") == [origin]
            assert answer.headers.get_list("access-control-allow-credentials") == ["true"]
        answer = http.post(other.url + "/socket.io/", params=params, content="1")  # close
        assert answer.status_code == 200


async def test_python_client_upgrading_on_another_node_is_taken_over(forwarding: Cluster) -> None:
    """python-socketio's client probes before it sends its CONNECT: the node the probe
    reaches takes the session over, and the client's namespace connects there."""
    client = socketio.AsyncClient(reconnection=False)
    with proxied(forwarding.servers, 1) as proxy:
        try:
            await client.connect(
                proxy.url, namespaces=["/cluster"], socketio_path="socket.io", wait_timeout=5
            )
            assert client.transport() == "websocket"
            assert client.eio.sid.startswith(forwarding.ids[0])  # the handshake's node
            node = await client.call("node", namespace="/cluster", timeout=5)
            assert node["id"] == forwarding.ids[1]  # the node the upgrade reached
        finally:
            await client.disconnect()
            await client.eio.disconnect()
    assert not socketio_leftovers(forwarding[1].wait_idle())


@pytest.fixture(scope="module")
def relaying(redis_url: str) -> Iterator[Cluster]:
    """Two nodes with slow heartbeats: daphne owns the sessions, uvicorn relays them (its ASGI
    send waits while a socket's buffer is full; daphne's never does)."""
    settings = "tests.cluster.settings_cluster"
    with running_cluster(redis_url, settings, ("daphne", "uvicorn")) as cluster:
        yield cluster


def test_a_relayed_client_that_does_not_read_holds_up_nothing_else(relaying: Cluster) -> None:
    """The client of a relayed socket asks for about 27 MB (uncompressed: no
    permessage-deflate) and reads none of it, so the relaying node's writes to it stop.
    Meanwhile that node still carries the cluster's other messages (a poll it forwards to the
    owner and the answer back); then the client reads all of it, in order."""
    owner, relay = relaying[0], relaying[1]
    count, big = 30, "x" * 900_000
    with httpx.Client(timeout=10) as http:
        with _relayed_not_reading(http, owner, relay, {"rooms": ["big"]}) as (ws, sid, resume):
            for n in range(count):
                spec = {"event": "big", "args": [n, big], "to": "big"}
                ws.send("42/cluster," + json.dumps(["cast", spec]))
            time.sleep(2)  # the owner broadcasts them back; the relaying node's writes stop

            other = _handshake(http, owner.url)
            forwarded = {"EIO": "4", "transport": "polling", "sid": other}
            started = time.monotonic()
            answer = http.post(relay.url + "/socket.io/", params=forwarded, content="1")
            assert (answer.status_code, answer.text) == (200, "ok")
            assert time.monotonic() - started < 2

            resume()
            received = []
            while len(received) < count:
                frame = ws.recv(timeout=10)
                if frame == "2":
                    ws.send("3")
                    continue
                event, n, data = json.loads(str(frame).removeprefix("42/cluster,"))
                assert (event, data) == ("big", big)
                received.append(n)
            assert received == list(range(count))
        _wait_closed_on(owner, sid)


@pytest.fixture(scope="module")
def relaying_small_queue(redis_url: str) -> Iterator[Cluster]:
    """As ``relaying``, with ``max_queued_packets`` 8."""
    settings = "tests.cluster.settings_small_queue"
    with running_cluster(redis_url, settings, ("daphne", "uvicorn")) as cluster:
        yield cluster


def test_a_relayed_client_that_does_not_read_ends_with_send_queue_full(
    relaying_small_queue: Cluster,
) -> None:
    """Past ``max_queued_packets`` frames waiting in the relaying node, the socket closes and
    the session ends on its owner with ``send queue full``, as a local session's does (a
    reason connection state recovery does not keep a session for; ``transport close`` does).
    A watcher on the owner sends the events one at a time, each acknowledged, so that only
    the relaying node has any queue."""
    owner, relay = relaying_small_queue[0], relaying_small_queue[1]
    big = "x" * 900_000
    with httpx.Client(timeout=10) as http:
        params = _connected(http, owner.url, {"rooms": ["watchers"]})
        auth = {"rooms": ["big"], "announce": True, "data": {"name": "slow"}}
        with _relayed_not_reading(http, owner, relay, auth) as (ws, sid, resume):
            seen: list[str] = []

            def came(prefix: str) -> bool:
                return any(packet.startswith(prefix) for packet in seen)

            def poll_until(prefix: str) -> None:
                while not came(prefix):
                    seen.extend(_poll(http, owner.url, params).split("\x1e"))

            left = '42/cluster,["left"'
            for n in range(30):
                spec = {"event": "big", "args": [n, big], "to": "big"}
                cast = f"42/cluster,{n}" + json.dumps(["cast", spec])
                answer = http.post(owner.url + "/socket.io/", params=params, content=cast)
                assert (answer.status_code, answer.text) == (200, "ok")
                poll_until(f"43/cluster,{n}[")
                if came(left):
                    break
            poll_until(left)
            assert '42/cluster,["left","slow","send queue full"]' in seen
            _wait_closed_on(owner, sid)
            # The relaying node closes the socket after the frame it was writing.
            resume()
            for _ in range(40):  # at most the frames queued before the overflow
                try:
                    ws.recv(timeout=10)
                except ConnectionClosed:
                    break
            else:
                pytest.fail("the relaying node did not close the socket")
