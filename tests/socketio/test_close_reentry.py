"""A close asked for while a close runs (socket.io#5194, where such a close recursed until the
stack overflowed), with python-socketio's client and a raw WebSocket under uvicorn and daphne.

The ``/reentrant`` namespace (tests.socketio.feature_sockets) closes the connection again from
its disconnect handler (as the socket, as the server through ``disconnect_sockets``, and as the
Engine.IO session), from a handler that raises after closing, from a middleware and a connect
handler that close and refuse; the raw client vanishes (a TCP reset) while the server closes
its socket. Each time: exactly one disconnect event per connected socket (counted by the
disconnect handler), none for a refused one, no recursion, nothing logged as an error but the
raising handler's own error, and the worker serves the next client.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio

from tests.support.raw_websocket import TEXT, RawWebSocket, drop, frame
from tests.support.servers import ServerProcess

NSP = "/reentrant"
TIMEOUT = 5.0
BOOM = "raised after closing, on purpose"


@pytest.fixture
async def client() -> AsyncIterator[socketio.AsyncClient]:
    sio = socketio.AsyncClient(reconnection=False)
    yield sio
    await sio.disconnect()
    await sio.eio.disconnect()


async def connect(
    client: socketio.AsyncClient, server: ServerProcess, close_in: str, tag: str = ""
) -> str:
    """Connect to ``/reentrant`` over WebSocket; the socket id."""
    await client.connect(
        server.url,
        namespaces=[NSP],
        transports=["websocket"],
        auth={"close_in": close_in, "tag": tag},
        wait_timeout=TIMEOUT,
    )
    sid = client.get_sid(NSP)
    assert sid is not None
    return sid


async def report(server: ServerProcess, keys: list[str]) -> dict[str, Any]:
    """The server's records of ``keys``, asked by a new client: that the worker still serves
    one is part of every test."""
    asker = socketio.AsyncClient(reconnection=False)
    await asker.connect(server.url, transports=["websocket"], wait_timeout=TIMEOUT)
    try:
        records: dict[str, Any] = await asker.call("report", (keys, 1.0), timeout=TIMEOUT)
    finally:
        await asker.disconnect()
    return records


async def disconnects(server: ServerProcess, sid: str) -> tuple[Any, Any]:
    """What the server's disconnect handler recorded for ``sid``: reason, times run."""
    keys = [f"disconnect:{sid}", f"disconnects:{sid}"]
    records = await report(server, keys)
    return records[keys[0]], records[keys[1]]


async def closed(client: socketio.AsyncClient) -> None:
    async with asyncio.timeout(TIMEOUT):
        while client.connected:  # noqa: ASYNC110 (the client's state has no event to wait on)
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("close_in", "how", "reason"),
    [
        ("disconnect", "client", "transport close"),
        ("disconnect", "server", "forced server close"),
        ("disconnect-server", "client", "transport close"),
        ("disconnect-server", "server", "forced server close"),
        ("disconnect-engine", "client", "transport close"),
        ("disconnect-engine", "server", "forced server close"),
        ("none", "raise", "forced server close"),
        ("disconnect", "raise", "forced server close"),
    ],
)
async def test_close_inside_a_close_runs_once(
    features_server: ServerProcess,
    client: socketio.AsyncClient,
    close_in: str,
    how: str,
    reason: str,
) -> None:
    offset = features_server.log_offset()
    sid = await connect(client, features_server, close_in)
    if how == "client":
        # python-socketio drops the connection right after its DISCONNECT, so the server
        # mostly sees the transport go first: only the engine's close, to be certain.
        await client.eio.disconnect()
    elif how == "server":
        await client.emit("disconnect-me", True, namespace=NSP)
    else:
        await client.emit("close-then-raise", namespace=NSP)
    await closed(client)
    assert await disconnects(features_server, sid) == (reason, 1)
    errors = features_server.errors_logged(offset)
    if how == "raise":
        # The handler's own error with its event name, once, and nothing else.
        message = f"handler for 'close-then-raise' failed (socket {sid}, <Namespace {NSP}>)"
        assert features_server.log_since(offset).count(message) == 1
        assert errors.count("Traceback (most recent call last):") == 1, errors
        assert errors.count("RuntimeError: " + BOOM) == 1, errors
        expected = {"Traceback (most recent call last):", "RuntimeError: " + BOOM}
        assert all(line in expected or message in line or BOOM in line for line in errors), errors
    else:
        assert errors == [], errors


@pytest.mark.parametrize("close_in", ["middleware", "connect"])
async def test_close_in_a_refusing_middleware_or_connect_handler(
    features_server: ServerProcess, client: socketio.AsyncClient, close_in: str
) -> None:
    offset = features_server.log_offset()
    tag = secrets.token_hex(8)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(client, features_server, close_in, tag)
    assert not client.connected
    # Never connected: no disconnect event (the id is what the middleware recorded), and
    # nothing logged (a refusal is no error).
    sid = (await report(features_server, [f"socket:{tag}"]))[f"socket:{tag}"]
    assert isinstance(sid, str)
    assert await disconnects(features_server, sid) == (None, None)
    assert features_server.errors_logged(offset) == []
    state = await asyncio.to_thread(features_server.wait_idle)
    assert not state["sessions"], state


async def test_client_vanishes_while_the_server_closes(features_server: ServerProcess) -> None:
    """The raw client resets its TCP connection as the server closes the socket (from a
    handler, then again from the disconnect handler): the server writes its DISCONNECT and
    its close frame to a socket that is gone, racing the ASGI server's own disconnect."""
    rng = random.Random(5194)
    offset = features_server.log_offset()
    for _ in range(12):
        sock, _ = await RawWebSocket.open(features_server, "/socket.io/")
        auth = json.dumps({"close_in": "disconnect-server"})
        sock.writer.write(frame(TEXT, f"40{NSP},{auth}".encode()))
        await sock.writer.drain()
        _, reply = await sock.read_frame()
        assert reply.startswith(f"40{NSP},".encode()), reply
        sid = json.loads(reply[len(NSP) + 3 :])["sid"]
        sock.writer.write(frame(TEXT, f'42{NSP},["disconnect-me",true]'.encode()))
        await sock.writer.drain()
        await asyncio.sleep(rng.uniform(0, 0.004))
        drop(sock.writer, reset=True)
        reason, times = await disconnects(features_server, sid)
        assert reason in ("forced server close", "transport close"), reason
        assert times == 1
    assert features_server.errors_logged(offset) == []
