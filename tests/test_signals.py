"""``socket_connected`` / ``socket_disconnected``: the official socket.io-client against the
receivers of tests/signal_sockets.py under uvicorn and daphne, and, in-process, what is built
when nobody listens and the order of the two signals for one socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest
from django.core.asgi import get_asgi_application

from channels_sio import Socket
from channels_sio.asgi import get_application
from channels_sio.signals import SocketSignals, socket_connected, socket_disconnected
from channels_sio.socketio import SocketIOServer
from channels_sio.testing import SocketIOCommunicator
from tests.support.driver import Driver, driver, wait_for
from tests.support.servers import ServerProcess, server_fixture

__all__ = ["driver"]

NSP = "/signals"

signals_server = server_fixture(
    "tests.settings_signals",
    "The recovery configuration plus the signal receivers of tests/signal_sockets.py, under "
    "each ASGI server, checked for leaks after each test.",
)


def open_client(driver: Driver, server: ServerProcess, name: str, **fields: Any) -> Any:
    return driver("open", name=name, url=server.url, nsp=NSP, **fields)


def report(driver: Driver, via: str, *keys: str) -> dict[str, Any]:
    return dict(driver("call", name=via, event="report", args=[list(keys)]))


def departure(driver: Driver, via: str, socket_id: str) -> list[Any]:
    """What ran when ``socket_id`` left: its disconnect handler, then the three receivers'
    records (the raising one records nothing), waited for."""
    key = f"order:{socket_id}"
    return list(
        wait_for(
            lambda: (found := report(driver, via, key)[key]) and len(found) == 3 and found,
            5,
            f"the disconnect receivers of {socket_id}",
        )
    )


def receivers_saw(order: list[Any], reason: str) -> None:
    assert order[0] == "handler", "the signal is sent after the disconnect handler"
    assert sorted(order[1:], key=lambda seen: seen["receiver"]) == [
        {"receiver": "async", "reason": reason, "on_loop": True},
        {"receiver": "sync", "reason": reason, "on_loop": False},
    ]


@pytest.mark.node
@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_connected_reaches_sync_and_async_receivers_after_the_connect_reply(
    signals_server: ServerProcess, driver: Driver, transports: str
) -> None:
    a = open_client(driver, signals_server, "A", transports=transports)
    # The async receiver emits to the socket: the client has its CONNECT reply by then.
    [hello] = driver("wait", name="A", event="signal-hello")
    assert hello[:2] == ["signal-hello", False]  # then its offset (recovery is on)
    key = f"connected:{a['id']}"
    seen = wait_for(
        lambda: (found := report(driver, "A", key)[key]) and len(found) == 2 and found,
        5,
        "both connect receivers",
    )
    assert sorted(seen, key=lambda record: record["receiver"]) == [
        {"receiver": "async", "recovered": False, "connected": True},
        {"receiver": "sync", "recovered": False, "on_loop": False},
    ]
    # A receiver bound to another namespace was not called.
    assert report(driver, "A", f"other:{a['id']}")[f"other:{a['id']}"] is None
    # Two receivers raised: logged, and the connection works on (the reports above).
    wait_for(
        lambda: (
            "connected_raising_sync" in (log := signals_server.log())
            and "connected_raising_async" in log
        ),
        5,
        "the raising receivers logged",
    )
    assert driver("leave", name="A") == "io client disconnect"


@pytest.mark.node
@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_client_namespace_disconnect(
    signals_server: ServerProcess, driver: Driver, transports: str
) -> None:
    a = open_client(driver, signals_server, "A", transports=transports)
    open_client(driver, signals_server, "B")
    assert driver("leave", name="A") == "io client disconnect"
    receivers_saw(departure(driver, "B", a["id"]), "client namespace disconnect")
    wait_for(
        lambda: "disconnected_raising" in signals_server.log(), 5, "the raising receiver logged"
    )
    driver("leave", name="B")


@pytest.mark.node
@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_server_namespace_disconnect(
    signals_server: ServerProcess, driver: Driver, transports: str
) -> None:
    a = open_client(driver, signals_server, "A", transports=transports)
    open_client(driver, signals_server, "B")
    assert driver("call", name="A", event="disconnect-me") == "bye"
    assert driver("disconnected", name="A") == "io server disconnect"
    receivers_saw(departure(driver, "B", a["id"]), "server namespace disconnect")
    driver("leave", name="B")


@pytest.mark.node
def test_transport_close_then_recovered(signals_server: ServerProcess, driver: Driver) -> None:
    a = open_client(driver, signals_server, "A")
    driver("wait", name="A", event="signal-hello")
    open_client(driver, signals_server, "B")
    assert driver("drop", name="A") == "transport close"
    receivers_saw(departure(driver, "B", a["id"]), "transport close")

    back = driver("reconnect", name="A", clear=True)
    assert back["recovered"] is True
    assert back["id"] == a["id"]
    [hello] = driver("wait", name="A", event="signal-hello")
    assert hello[:2] == ["signal-hello", True]
    key = f"connected:{a['id']}"
    seen = wait_for(
        lambda: (found := report(driver, "B", key)[key]) and len(found) == 4 and found,
        5,
        "the connect receivers of the recovered socket",
    )
    assert sorted((record["receiver"], record["recovered"]) for record in seen[2:]) == [
        ("async", True),
        ("sync", True),
    ]
    driver("leave", name="A")
    driver("leave", name="B")


# -- in-process: what is built, and in which order ----------------------------------------


class CountingSignals(SocketSignals):
    """SocketSignals that count the coroutines they hand to the server."""

    def __init__(self) -> None:
        super().__init__()
        self.built = 0

    def connected(self, socket: Socket) -> Coroutine[Any, Any, None] | None:
        pending = super().connected(socket)
        self.built += pending is not None
        return pending

    def disconnected(self, socket: Socket, reason: str) -> Coroutine[Any, Any, None] | None:
        pending = super().disconnected(socket, reason)
        self.built += pending is not None
        return pending


@pytest.fixture
async def hooked() -> AsyncIterator[tuple[SocketIOServer, CountingSignals, Any]]:
    hooks = CountingSignals()
    server = SocketIOServer(hooks=hooks)
    yield server, hooks, get_application(get_asgi_application(), server=server)
    await server.shutdown()


async def test_nothing_is_built_without_a_receiver_for_the_namespace(
    hooked: tuple[SocketIOServer, CountingSignals, Any],
) -> None:
    server, hooks, app = hooked
    seen: list[str] = []

    async def elsewhere(sender: Any, socket: Socket, **kwargs: Any) -> None:
        seen.append(socket.id)

    client = SocketIOCommunicator(app)
    await client.connect()
    await client.disconnect()
    assert hooks.built == 0

    # Bound to another namespace: still nothing for "/".
    socket_connected.connect(elsewhere, sender=server.of("/elsewhere"))
    socket_disconnected.connect(elsewhere, sender=server.of("/elsewhere"))
    try:
        client = SocketIOCommunicator(app)
        await client.connect()
        await client.disconnect()
    finally:
        socket_connected.disconnect(elsewhere, sender=server.of("/elsewhere"))
        socket_disconnected.disconnect(elsewhere, sender=server.of("/elsewhere"))
    assert hooks.built == 0
    assert seen == []


async def test_disconnected_waits_for_the_connected_receivers(
    hooked: tuple[SocketIOServer, CountingSignals, Any],
) -> None:
    server, hooks, app = hooked
    events: list[str] = []
    started, release, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow_connected(sender: Any, socket: Socket, recovered: bool, **kwargs: Any) -> None:
        events.append("connected: started")
        started.set()
        await release.wait()
        events.append("connected: done")

    async def disconnected(sender: Any, socket: Socket, reason: str, **kwargs: Any) -> None:
        events.append(f"disconnected: {reason}")
        finished.set()

    nsp = server.of("/")
    socket_connected.connect(slow_connected, sender=nsp)
    socket_disconnected.connect(disconnected, sender=nsp)
    try:
        client = SocketIOCommunicator(app)
        await client.connect()
        await asyncio.wait_for(started.wait(), 1)
        [socket] = nsp.sockets.values()
        # The server disconnects it (in a task of its own, which nothing cancels) while the
        # connect receiver still runs.
        server.spawn(socket.disconnect())
        await asyncio.sleep(0.1)
        assert events == ["connected: started"]
        release.set()
        await asyncio.wait_for(finished.wait(), 1)
        await client.disconnect()
    finally:
        socket_connected.disconnect(slow_connected, sender=nsp)
        socket_disconnected.disconnect(disconnected, sender=nsp)
    assert events == [
        "connected: started",
        "connected: done",
        "disconnected: server namespace disconnect",
    ]
    assert hooks.built == 2
