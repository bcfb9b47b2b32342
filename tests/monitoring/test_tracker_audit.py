"""The pure half of monitoring, in one process: the Engine.IO session's counters, the lifecycle
observers the Tracker listens with, and the audit that finds orphans, including the two paths
that left them before (a transport whose close raised; a socket made for a session that closed
while a dynamic namespace's matcher ran)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core.asgi import get_asgi_application

from channels_sio import Socket
from channels_sio.asgi import get_application
from channels_sio.engineio import CloseReason
from channels_sio.monitoring.audit import audit
from channels_sio.monitoring.tracker import Tracker
from channels_sio.socketio import SocketIOServer
from channels_sio.testing import SocketIOCommunicator


@pytest.fixture
async def sio() -> AsyncIterator[SocketIOServer]:
    server = SocketIOServer(sync_runner=database_sync_to_async)
    yield server
    await server.shutdown()


def client_of(server: SocketIOServer, namespace: str = "/", **kwargs: Any) -> SocketIOCommunicator:
    app = get_application(get_asgi_application(), server=server)
    return SocketIOCommunicator(app, namespace=namespace, **kwargs)


async def settle(server: SocketIOServer) -> None:
    async with asyncio.timeout(1):
        while server.engine.sessions or server.clients:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_the_tracker_sees_sessions_sockets_and_counters(sio: SocketIOServer) -> None:
    @sio.on("echo")
    async def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        socket.join("lobby")
        return args

    tracker = Tracker(sio)
    tracker.attach()
    client = client_of(sio, headers=[(b"user-agent", b"tests/1.0")])
    await client.connect()
    assert await client.emit_with_ack("echo", "hello") == ["hello"]
    first = tracker.snapshot()
    [row] = first.changed
    assert row.sid in sio.engine.sessions
    assert row.transport == "websocket"
    assert row.user_agent == "tests/1.0"
    assert row.packets_in == 2  # CONNECT and the event
    assert row.packets_out == 2  # the CONNECT reply and the acknowledgement
    assert row.bytes_in > 0
    assert row.bytes_out > 0
    [socket] = row.sockets
    assert socket.namespace == "/"
    assert set(socket.rooms) == {socket.id, "lobby"}
    assert row.fingerprint.startswith("address:") or row.fingerprint == ""
    assert first.report.sessions == 1
    assert first.report.orphans == []
    # Nothing changed: nothing to write again.
    assert tracker.snapshot().changed == []
    await client.disconnect()
    await settle(sio)
    last = tracker.snapshot()
    assert last.closed == [row.sid]
    assert last.report.sessions == 0
    assert last.report.closes == {"transport close": 1}
    tracker.detach()
    assert tracker not in sio.engine.observers


async def test_refusals_and_parse_errors_are_counted_by_address(sio: SocketIOServer) -> None:
    @sio.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any]) -> bool:
        return not auth.get("refuse")

    tracker = Tracker(sio)
    tracker.attach()
    refused = client_of(sio, auth={"refuse": True})
    with pytest.raises(Exception, match="rejected"):
        await refused.connect()
    client = client_of(sio)
    await client.connect()
    await client.ws.send_to(text_data="42[")  # malformed: the connection closes
    await settle(sio)
    kinds = sorted(event.kind for event in tracker.snapshot().report.events)
    assert kinds == ["parse error", "refused"]
    tracker.detach()


async def test_the_audit_finds_what_no_open_session_backs(sio: SocketIOServer) -> None:
    client = client_of(sio)
    await client.connect()
    [socket] = sio.namespaces["/"].sockets.values()
    assert audit(sio) == []
    # A room entry with no socket, a socket whose session is gone: what a leak looks like.
    sio.namespaces["/"].adapter.join("ghost", ["lobby"])
    session = socket.client.session
    del sio.engine.sessions[session.sid]
    found = {(item["what"], item["id"]) for item in audit(sio)}
    assert found == {("client", session.sid), ("socket", socket.id), ("room entry", "ghost")}
    sio.engine.sessions[session.sid] = session
    sio.namespaces["/"].adapter.local.index.remove("ghost")
    await client.disconnect()


async def test_a_socket_is_not_made_for_a_session_that_closed_during_its_matcher(
    sio: SocketIOServer,
) -> None:
    matched = asyncio.Event()
    go_on = asyncio.Event()

    async def slow_matcher(name: str, auth: dict[str, Any]) -> bool:
        matched.set()
        await go_on.wait()
        return True

    family = sio.of(slow_matcher)

    @family.use
    async def middleware(socket: Socket, auth: dict[str, Any]) -> None:
        socket.join("joined-by-middleware")

    client = client_of(sio, namespace="/dyn")
    connecting = asyncio.create_task(client.connect(timeout=2))
    await asyncio.wait_for(matched.wait(), 1)
    [session] = sio.engine.sessions.values()
    await session.close(CloseReason.TRANSPORT_CLOSE)
    go_on.set()
    # The WebSocket closed instead of answering the CONNECT: no socket, no CONNECT reply.
    with pytest.raises(AssertionError, match=r"but was 'websocket\.close'"):
        await connecting
    await settle(sio)
    assert audit(sio) == []
    child = sio.lookup("/dyn")
    assert child is not None
    assert child.adapter.local.index.sids == {}  # the middleware never ran for it


async def test_send_queue_over_its_bound_closes_the_session(sio: SocketIOServer) -> None:
    from channels_sio.engineio import EngineIOConfig
    from channels_sio.socketio import ServerConfig

    server = SocketIOServer(ServerConfig(engine=EngineIOConfig(max_queued_packets=5)))
    try:
        tracker = Tracker(server)
        tracker.attach()
        client = client_of(server)
        await client.connect()
        [session] = server.engine.sessions.values()
        transport = session.transport
        # The writer is busy (its socket does not take frames): packets queue up.
        transport._writing = True  # type: ignore[attr-defined]
        for n in range(6):
            await session.send(f'42["n",{n}]')
        await settle(server)
        assert session.close_reason is CloseReason.SEND_QUEUE_FULL
        assert [e.kind for e in tracker.snapshot().report.events] == ["slow"]
    finally:
        await server.shutdown()
