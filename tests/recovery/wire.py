"""Raw Socket.IO packets over a WebSocket to a server process's /recovery namespace, for what
the official clients would not send (a pid of another connection, a malformed offset) or would
not leave undone (a connection that stops answering pings)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import connect

from tests.support.eio import WebSocket
from tests.support.servers import ServerProcess

NSP = "/recovery"


def _url(server: ServerProcess) -> str:
    query = urlencode({"EIO": "4", "transport": "websocket"})
    return f"ws{server.url.removeprefix('http')}/socket.io/?{query}"


@contextlib.asynccontextmanager
async def raw(server: ServerProcess, *, pong: bool = True) -> AsyncIterator[WebSocket]:
    """A WebSocket to the Socket.IO endpoint, past the Engine.IO handshake."""
    ws = await asyncio.wait_for(connect(_url(server)), 5)
    sock = WebSocket(ws, pong=pong)
    try:
        first = await sock.recv()
        assert isinstance(first, str)
        assert first.startswith("0{")
        yield sock
    finally:
        sock._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sock._reader
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 5)


async def join(sock: WebSocket, auth: dict[str, Any] | None = None) -> dict[str, Any]:
    """CONNECT to /recovery; the packets before the CONNECT reply, and the reply's data."""
    await sock.send(f"40{NSP}," + (json.dumps(auth) if auth else ""))
    before = []
    while True:
        frame = await sock.recv()
        assert isinstance(frame, str)
        if frame.startswith(f"40{NSP},"):
            reply: dict[str, Any] = json.loads(frame[len(f"40{NSP},") :])
            return {"before": before, **reply}
        before.append(frame)


async def call(
    sock: WebSocket, ack_id: int, event: str, *args: Any, before: list[str] | None = None
) -> Any:
    """Send an event with an ack id; its acknowledgement's arguments. Frames that came before
    it are put in ``before`` (an error when none is given)."""
    await sock.send(f"42{NSP},{ack_id}" + json.dumps([event, *args]))
    while True:
        frame = await sock.recv()
        assert isinstance(frame, str)
        if frame.startswith(f"43{NSP},{ack_id}["):
            return json.loads(frame[len(f"43{NSP},{ack_id}") :])
        assert before is not None, f"unexpected {frame!r}"
        before.append(frame)


def event_of(frame: str | bytes) -> list[Any]:
    assert isinstance(frame, str)
    assert frame.startswith(f"42{NSP},"), frame
    data: list[Any] = json.loads(frame[len(f"42{NSP},") :])
    return data
