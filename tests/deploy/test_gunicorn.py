"""The gunicorn recipe of docs/deployment.md: its command, with uvicorn-worker's workers (two
here), serving the example project on Redis. The workers share one listening socket, so the
kernel picks the worker of each connection: socket.io-client connects over WebSocket, over
long-polling (its requests forwarded to the worker that owns the session when they land on the
other) and with the default upgrade, emits with an acknowledgement and gets a broadcast from a
client of the other worker. SIGTERM then stops gunicorn cleanly: every session is closed with
``server shutting down`` by its worker's lifespan shutdown."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator

import pytest

from .conftest import SETTINGS, TRANSPORTS, Driver, Gunicorn, ServerProcess, settled_transport

pytestmark = [pytest.mark.redis, pytest.mark.node]


@contextlib.contextmanager
def gunicorn(redis_url: str) -> Iterator[Gunicorn]:
    """gunicorn with two workers of a cluster of its own, stopped afterwards (if the test did
    not); nothing of it logged a traceback."""
    env = {"REDIS_URL": redis_url, "CSIO_LAYER_PREFIX": f"csio{secrets.token_hex(4)}"}
    server = Gunicorn(SETTINGS, env)
    server.start()
    try:
        yield server
    finally:
        server.stop()
    assert "Traceback" not in server.log_path.read_text(errors="replace"), server.log()


@pytest.fixture(scope="module")
def shared(redis_url: str) -> Iterator[Gunicorn]:
    with gunicorn(redis_url) as server:
        yield server


def open_on_each_worker(
    driver: Driver, server: Gunicorn, ids: set[str], prefix: str, **options: object
) -> tuple[dict[str, str], list[str]]:
    """Clients named ``<prefix><i>``, opened until one is on each worker: the first on each
    (node id -> name), and all of them."""
    first: dict[str, str] = {}
    names: list[str] = []
    while len(first) < len(ids):
        assert len(names) < 20, f"20 connections all reached {list(first)}"
        name = f"{prefix}{len(names)}"
        names.append(name)
        first.setdefault(driver("open", name=name, url=server.url, **options)["eio"][:8], name)
    return first, names


@pytest.mark.parametrize("way", TRANSPORTS)
def test_gunicorn(shared: Gunicorn, driver: Driver, way: str) -> None:
    ids = shared.node_ids()
    opened = driver(
        "open", name="G", url=shared.url, transports=TRANSPORTS[way], auth={"rooms": ["chat"]}
    )
    assert opened["eio"][:8] in ids
    transport = settled_transport(driver, "G") if way == "upgrade" else way
    # The worker holding the session: the handshake's, or the one its upgrade took it over.
    owner = driver("call", name="G", event="node")["id"]
    (other,) = ids - {owner}
    # A client on the other worker: WebSocket clients until the kernel hands one to it.
    others, _ = open_on_each_worker(driver, shared, ids, "O", auth={"rooms": ["chat"]})
    for turn in range(3):
        for name, node in (("G", owner), (others[other], other)):
            spec = {"event": "chat", "args": [name, turn], "to": "chat"}
            assert driver("call", name=name, event="cast", args=[spec]) == node
        for name in ("G", others[other]):
            got = driver("wait", name=name, event="chat", count=2 * (turn + 1))
            for sender in ("G", others[other]):
                mine = [event for event in got if event[1] == sender]
                assert mine == [["chat", sender, t] for t in range(turn + 1)], name
    state = driver("state", name="G")
    assert (state["connected"], state["eio"], state["transport"]) == (
        True,
        opened["eio"],
        transport,
    )
    # An upgrade ends on websocket, whichever worker the probe reached.
    assert transport == ("polling" if way == "polling" else "websocket")


def test_sigterm_closes_every_session(redis_url: str, driver: Driver) -> None:
    """Clients of each kind on both workers; a watcher on another process of the cluster is
    told of each disconnect, with its reason, by the disconnect handlers of the stopping
    workers (a worker's node leaves the cluster last)."""
    with gunicorn(redis_url) as server:
        ids = server.node_ids()
        watcher = ServerProcess("uvicorn", SETTINGS, env=server.extra_env)
        watcher.start()
        try:
            driver("open", name="watch", url=watcher.url, auth={"rooms": ["watchers"]})
            names: list[str] = []
            for way, transports in TRANSPORTS.items():
                auth = {"announce": True, "data": {"name": way}}
                names += open_on_each_worker(
                    driver, server, ids, way, transports=transports, auth=auth
                )[1]
            started = time.monotonic()
            # uvicorn waits for the requests in progress first: a long poll is answered by its
            # next ping (2 s heartbeats here), then the lifespan shutdown closes the sessions.
            assert server.stop(timeout=15) == 0, server.log()
            elapsed = time.monotonic() - started
            assert elapsed < 10, f"SIGTERM took {elapsed:.1f}s"
            left = driver("wait", name="watch", event="left", count=len(names), ms=10_000)
            assert sorted(left) == sorted(
                ["left", name.rstrip("0123456789"), "server shutting down"] for name in names
            )
            for name in names:
                reason = driver("disconnected", name=name)
                # A WebSocket's close code; an upgrading client may be on either transport.
                code = driver("state", name=name)["closeCode"]
                if name.startswith("websocket") or code is not None:
                    # uvicorn's close frame: 1012, service restart.
                    assert (reason, code) == ("transport close", 1012), name
                else:
                    # The close packet, when the lifespan shutdown found a long poll waiting;
                    # otherwise the next request fails, the worker having stopped accepting.
                    assert reason in ("transport close", "transport error"), name
        finally:
            watcher.stop()
        assert "Traceback" not in watcher.log(), watcher.log()
    log = server.log_path.read_text(errors="replace")
    assert "Shutting down: Master" in log, log[-3000:]
