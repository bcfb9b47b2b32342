"""The nginx configurations of docs/deployment.md with Debian's nginx in front of two workers
(uvicorn and daphne) sharing Redis: sticky (``hash $remote_addr consistent``), and not
(``least_conn``, and round robin: the ``hash`` line dropped). socket.io-client from Node
connects through nginx over WebSocket, over long-polling, and with the default polling then
upgrade; it emits with an acknowledgement and gets a broadcast from a client of the other
worker. The Django pages go through the same server block."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import (
    SETTINGS,
    TRANSPORTS,
    Cluster,
    Driver,
    Nginx,
    ServerProcess,
    nginx,
    running_cluster,
    settled_transport,
    wait_for,
)

pytestmark = [pytest.mark.redis, pytest.mark.node]

NON_STICKY = ("least_conn", "round_robin")


@pytest.fixture(scope="module")
def workers(redis_url: str) -> Iterator[Cluster]:
    with running_cluster(redis_url, SETTINGS, ("uvicorn", "daphne")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def nginx_hash(workers: Cluster) -> Iterator[Nginx]:
    with nginx("hash", workers.servers) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def nginx_least_conn(workers: Cluster) -> Iterator[Nginx]:
    with nginx("least_conn", workers.servers) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def nginx_round_robin(workers: Cluster) -> Iterator[Nginx]:
    with nginx("round_robin", workers.servers) as proxy:
        yield proxy


def chat(driver: Driver, cluster: Cluster, proxy: Nginx, way: str) -> dict[str, Any]:
    """Client "N" through nginx, client "O" straight on the worker that does not own N's
    session: each emits with an acknowledgement (the id of the node that ran the handler) and
    gets the other's broadcasts, in order. N's final state, with the owner's index."""
    transports = TRANSPORTS[way]
    opened = driver(
        "open", name="N", url=proxy.url, transports=transports, auth={"rooms": ["chat"]}
    )
    transport = settled_transport(driver, "N") if way == "upgrade" else way
    # The worker holding the session: the handshake's, or the one its upgrade took it over.
    owner = next(
        i
        for i in (0, 1)
        if opened["eio"] in cluster[i].state()["socketio"]["sessions"]  # type: ignore[operator]
    )
    other = 1 - owner
    driver("open", name="O", url=cluster[other].url, auth={"rooms": ["chat"]})
    for turn in range(3):
        for name, node in (("N", owner), ("O", other)):
            spec = {"event": "chat", "args": [name, turn], "to": "chat"}
            assert driver("call", name=name, event="cast", args=[spec]) == cluster.ids[node]
        for name in ("N", "O"):
            got = driver("wait", name=name, event="chat", count=2 * (turn + 1))
            for sender in ("N", "O"):
                mine = [event for event in got if event[1] == sender]
                assert mine == [["chat", sender, t] for t in range(turn + 1)], name
    state = dict(driver("state", name="N"))
    # One session all along, on the transport it settled on.
    assert (state["connected"], state["eio"], state["transport"]) == (
        True,
        opened["eio"],
        transport,
    )
    state["owner"] = owner
    for name in ("N", "O"):
        driver("close", name=name)
    return state


def upstreams(proxy: Nginx, cluster: Cluster, sid: str | None = None) -> set[int]:
    """The workers (indexes) nginx sent Socket.IO requests to: the session's, or all (a
    WebSocket is logged once closed, and only an upgrade names its session)."""
    ports = {f"127.0.0.1:{server.port}": i for i, server in enumerate(cluster.servers)}
    return {
        ports[entry["upstream"]]
        for entry in proxy.requests()
        if entry["uri"] == "/socket.io/" and (sid is None or sid in entry["args"])
    }


@pytest.mark.parametrize("way", TRANSPORTS)
def test_sticky(workers: Cluster, nginx_hash: Nginx, driver: Driver, way: str) -> None:
    state = chat(driver, workers, nginx_hash, way)
    assert state["transport"] == ("polling" if way == "polling" else "websocket")
    # Every Socket.IO request from this address went to the one worker.
    wait_for(lambda: upstreams(nginx_hash, workers), 5, "the requests logged")
    assert upstreams(nginx_hash, workers) == {state["owner"]}


@pytest.mark.parametrize("way", TRANSPORTS)
@pytest.mark.parametrize("balance", NON_STICKY)
def test_non_sticky(
    workers: Cluster,
    request: pytest.FixtureRequest,
    driver: Driver,
    balance: str,
    way: str,
) -> None:
    """The session works whichever worker each request reaches, and an upgrade ends on
    websocket wherever its probe lands."""
    proxy: Nginx = request.getfixturevalue(f"nginx_{balance}")
    state = chat(driver, workers, proxy, way)
    assert state["transport"] == ("polling" if way == "polling" else "websocket")
    if way == "polling":
        # Some of the session's requests reached the worker that does not own it, which
        # forwarded them.
        assert upstreams(proxy, workers, state["eio"]) == {0, 1}


@pytest.fixture(scope="module")
def nginx_three(workers: Cluster) -> Iterator[Nginx]:
    """Round robin over three workers: a third (uvicorn) joins the two.

    socket.io-client's first requests are the handshake, the POST of its CONNECT packet, the
    upgrade probe, then the first long poll. Over two workers and an idle nginx, round robin
    sends the probe to the worker of the handshake, the session's owner, and so did
    least_conn in every run (the other worker was still forwarding the POST). Over three, round
    robin sends it to another worker.
    """
    third = ServerProcess("uvicorn", SETTINGS, env=workers.env)
    third.start()
    try:
        wait_for(lambda: len(workers.node(third)["peers"]) == 2, 10, "the third node's peers")
        with nginx("round_robin", [*workers.servers, third]) as proxy:
            yield proxy
    finally:
        third.stop()
    assert "Traceback" not in third.log(), third.log()


def upgrade_elsewhere(driver: Driver, cluster: Cluster, proxy: Nginx, name: str) -> str:
    """A client upgrading through ``proxy`` (``nginx_three``): it emits with an
    acknowledgement and gets its own broadcast back, its probe having reached a worker that
    does not own its session. The transport it ended on."""
    opened = driver(
        "open", name=name, url=proxy.url, transports=TRANSPORTS["upgrade"], auth={"rooms": [name]}
    )
    transport = settled_transport(driver, name)
    spec = {"event": "chat", "args": [name], "to": name}
    driver("call", name=name, event="cast", args=[spec])
    assert driver("wait", name=name, event="chat") == [["chat", name]]
    state = driver("state", name=name)
    assert (state["connected"], state["eio"], state["transport"]) == (
        True,
        opened["eio"],
        transport,
    )
    driver("close", name=name)
    owner = next(s for s in proxy.backends if opened["eio"].startswith(cluster.node(s)["id"]))

    def probe() -> list[dict[str, str]]:
        return [
            entry
            for entry in proxy.requests()
            if f"transport=websocket&sid={opened['eio']}" in entry["args"]
        ]

    (logged,) = wait_for(probe, 5, "the probe logged")
    assert logged["upstream"] != owner.url.removeprefix("http://"), logged
    return transport


def test_non_sticky_upgrade_to_another_worker_ends_on_websocket(
    workers: Cluster, nginx_three: Nginx, driver: Driver
) -> None:
    """The worker the probe reaches takes the session over (``upgrade_window``)."""
    assert upgrade_elsewhere(driver, workers, nginx_three, "W") == "websocket"


@pytest.mark.parametrize("balance", ["hash", *NON_STICKY])
def test_django_pages_through_nginx(
    workers: Cluster, request: pytest.FixtureRequest, balance: str
) -> None:
    """``location /``: the plain Django pages, balanced between both workers."""
    proxy: Nginx = request.getfixturevalue(f"nginx_{balance}")
    for _ in range(4):
        page = httpx.get(proxy.url + "/", timeout=5)
        assert page.status_code == 200
        assert "channels_sio example project" in page.text
    served = {entry["upstream"] for entry in proxy.requests() if entry["uri"] == "/"}
    assert served == {server.url.removeprefix("http://") for server in workers.servers}
