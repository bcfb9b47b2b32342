"""python-socketio's AsyncClient against the example project under uvicorn and daphne.

The reference handlers (example_project.protocol_sockets): on connect to ``/`` and ``/custom``
the server emits ``auth`` with the handshake auth; ``message`` -> ``message-back`` with the
same arguments; ``message-with-ack`` -> acknowledged with the same arguments; any other
namespace is refused with "Invalid namespace". Each test runs over WebSocket only, polling
only, and the default (polling, then the upgrade to WebSocket), and disconnects cleanly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import socketio

from tests.support.servers import ServerProcess

TIMEOUT = 5.0

TRANSPORTS = [
    pytest.param(["websocket"], id="websocket"),
    pytest.param(["polling"], id="polling"),
    pytest.param(None, id="upgrade"),
]

pytestmark = pytest.mark.parametrize("transports", TRANSPORTS)

# Arguments of one emit, as python-socketio takes them (a tuple spreads into several).
PAYLOADS = [
    pytest.param("hello", id="text"),
    pytest.param("héllo ☃ 😀", id="utf8"),
    pytest.param(42, id="int"),
    pytest.param(-1.5, id="float"),
    pytest.param({"a": 1, "b": [True, None, "x"], "c": {"d": "é"}}, id="dict"),
    pytest.param([1, "two", [3]], id="list"),
    pytest.param(b"\x00\x01\x02\xff", id="bytes"),
    pytest.param({"files": [b"a", {"raw": b"\x00\xff"}], "name": "f"}, id="nested-bytes"),
    pytest.param(("one", 2, {"three": 3}), id="several-args"),
    pytest.param(("bin", b"\x01", [b"\x02", {"x": b"\x03"}]), id="several-args-bytes"),
]


class Recorder:
    """Events a client received, per (namespace, event), awaited with a timeout."""

    def __init__(self, client: socketio.AsyncClient) -> None:
        self.client = client
        self.queues: dict[tuple[str, str], asyncio.Queue[tuple[Any, ...]]] = {}

    def listen(self, event: str, namespace: str = "/") -> None:
        queue = self.queues.setdefault((namespace, event), asyncio.Queue())

        async def handler(*args: Any) -> None:
            await queue.put(args)

        self.client.on(event, handler, namespace=namespace)

    async def next(self, event: str, namespace: str = "/") -> tuple[Any, ...]:
        return await asyncio.wait_for(self.queues[(namespace, event)].get(), TIMEOUT)

    def empty(self, event: str, namespace: str = "/") -> bool:
        return self.queues[(namespace, event)].empty()


@pytest.fixture
async def client() -> AsyncIterator[socketio.AsyncClient]:
    """A client that is disconnected at the end even when the test failed half-way."""
    sio = socketio.AsyncClient(reconnection=False)
    yield sio
    await sio.disconnect()
    await sio.eio.disconnect()  # no-op when already closed; frees the aiohttp session


async def connect(
    client: socketio.AsyncClient,
    server: ServerProcess,
    transports: list[str] | None,
    **kwargs: Any,
) -> None:
    await client.connect(
        server.url, transports=transports, socketio_path="socket.io", wait_timeout=TIMEOUT, **kwargs
    )


async def eventually(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not condition():  # noqa: ASYNC110 (the client's state has no event to wait on)
            await asyncio.sleep(0.02)


async def test_connect_with_auth(
    protocol_server: ServerProcess, client: socketio.AsyncClient, transports: list[str] | None
) -> None:
    events = Recorder(client)
    events.listen("auth")
    await connect(client, protocol_server, transports, auth={"token": "abc", "n": 1})
    assert client.connected
    assert client.get_sid() is not None
    assert client.get_sid() != client.eio.sid, "the socket id is not the Engine.IO sid"
    assert await events.next("auth") == ({"token": "abc", "n": 1},)
    if transports is None:
        await eventually(lambda: client.transport() == "websocket")
    else:
        assert client.transport() == transports[0]
    await client.disconnect()
    assert not client.connected


async def test_connect_without_auth(
    protocol_server: ServerProcess, client: socketio.AsyncClient, transports: list[str] | None
) -> None:
    events = Recorder(client)
    events.listen("auth")
    await connect(client, protocol_server, transports)
    assert await events.next("auth") == ({},)
    await client.disconnect()


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_message_back(
    protocol_server: ServerProcess,
    client: socketio.AsyncClient,
    transports: list[str] | None,
    payload: Any,
) -> None:
    events = Recorder(client)
    events.listen("message-back")
    await connect(client, protocol_server, transports)
    await client.emit("message", payload)
    expected = payload if isinstance(payload, tuple) else (payload,)
    assert await events.next("message-back") == expected
    await client.disconnect()


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_message_with_ack(
    protocol_server: ServerProcess,
    client: socketio.AsyncClient,
    transports: list[str] | None,
    payload: Any,
) -> None:
    await connect(client, protocol_server, transports)
    # python-socketio returns the acknowledgement's single argument, or a tuple of several.
    assert await client.call("message-with-ack", payload, timeout=TIMEOUT) == payload
    await client.disconnect()


async def test_ack_without_arguments(
    protocol_server: ServerProcess, client: socketio.AsyncClient, transports: list[str] | None
) -> None:
    await connect(client, protocol_server, transports)
    assert await client.call("message-with-ack", timeout=TIMEOUT) is None
    await client.disconnect()


async def test_many_messages_in_order(
    protocol_server: ServerProcess, client: socketio.AsyncClient, transports: list[str] | None
) -> None:
    events = Recorder(client)
    events.listen("message-back")
    await connect(client, protocol_server, transports)
    for n in range(50):
        await client.emit("message", (n, b"\x00" * n) if n % 5 == 4 else n)
    received = [await events.next("message-back") for _ in range(50)]
    assert [args[0] for args in received] == list(range(50))
    assert received[49] == (49, b"\x00" * 49)
    await client.disconnect()


async def test_empty_bytes(
    request: pytest.FixtureRequest,
    protocol_server: ServerProcess,
    client: socketio.AsyncClient,
    transports: list[str] | None,
) -> None:
    events = Recorder(client)
    events.listen("message-back")
    await connect(client, protocol_server, transports)
    if transports is None:
        await eventually(lambda: client.transport() == "websocket")
    if protocol_server.kind == "daphne" and client.transport() == "websocket":
        # daphne's WebSocketProtocol.handle_reply sends a frame only `if message.get("bytes")`:
        # an empty binary frame (the attachment b"") never leaves, and the client waits for it.
        request.applymarker(
            pytest.mark.xfail(raises=TimeoutError, strict=True, reason="daphne drops b'' frames")
        )
    await client.emit("message", ("empty", b"", {"also": b""}))
    received = await asyncio.wait_for(events.next("message-back"), 1)
    assert received == ("empty", b"", {"also": b""})
    assert await client.call("message-with-ack", b"", timeout=1) == b""
    await client.disconnect()


async def test_two_namespaces_on_one_client(
    protocol_server: ServerProcess, client: socketio.AsyncClient, transports: list[str] | None
) -> None:
    events = Recorder(client)
    for namespace in ("/", "/custom"):
        events.listen("auth", namespace)
        events.listen("message-back", namespace)
    await connect(client, protocol_server, transports, namespaces=["/", "/custom"], auth={"k": "v"})
    assert sorted(client.namespaces) == ["/", "/custom"]
    sids = {client.get_sid("/"), client.get_sid("/custom")}
    assert None not in sids
    assert len(sids) == 2, "each namespace has its own socket id"
    assert await events.next("auth", "/") == ({"k": "v"},)
    assert await events.next("auth", "/custom") == ({"k": "v"},)

    await client.emit("message", "to-custom", namespace="/custom")
    assert await events.next("message-back", "/custom") == ("to-custom",)
    await client.emit("message", "to-main")
    assert await events.next("message-back", "/") == ("to-main",)
    assert await client.call("message-with-ack", (1, b"\x01"), namespace="/custom") == (1, b"\x01")
    assert events.empty("message-back", "/")
    assert events.empty("message-back", "/custom")
    await client.disconnect()


async def test_refused_namespace(
    protocol_server: ServerProcess, client: socketio.AsyncClient, transports: list[str] | None
) -> None:
    errors: asyncio.Queue[Any] = asyncio.Queue()

    @client.on("connect_error", namespace="/nope")
    async def connect_error(data: Any) -> None:
        await errors.put(data)

    with pytest.raises(
        socketio.exceptions.ConnectionError,
        match=r"^One or more namespaces failed to connect: /nope$",
    ):
        await connect(client, protocol_server, transports, namespaces=["/nope"])
    assert await asyncio.wait_for(errors.get(), TIMEOUT) == {"message": "Invalid namespace"}
    assert not client.connected


async def test_refused_namespace_beside_an_accepted_one(
    protocol_server: ServerProcess, client: socketio.AsyncClient, transports: list[str] | None
) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError, match=r"failed to connect: /nope$"):
        await connect(client, protocol_server, transports, namespaces=["/", "/nope"])
    assert not client.connected

    # The same client connects again afterwards.
    await connect(client, protocol_server, transports)
    assert await client.call("message-with-ack", "again", timeout=TIMEOUT) == "again"
    await client.disconnect()


async def test_disconnect(
    protocol_server: ServerProcess, client: socketio.AsyncClient, transports: list[str] | None
) -> None:
    gone: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    @client.on("disconnect")
    async def disconnected(*reason: Any) -> None:
        await gone.put(reason)

    await connect(client, protocol_server, transports)
    assert await client.call("message-with-ack", "before", timeout=TIMEOUT) == "before"
    await client.disconnect()
    assert await asyncio.wait_for(gone.get(), TIMEOUT) == (client.reason.CLIENT_DISCONNECT,)
    assert not client.connected
    assert client.eio.state == "disconnected"
    with pytest.raises(socketio.exceptions.BadNamespaceError):
        await client.emit("message", "after")
