"""WebSocket consumer: hands frames to the Engine.IO transport and writes the frames it sends."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from ..engineio import HttpRequest
from ..engineio.websocket import CLOSE_NORMAL, WebSocketTransport
from .base import EngineSource, resolve_engine, track_consumer_task, untrack_consumer_task

__all__ = ["WebSocketConsumer"]


@functools.cache
def _closed_errors() -> tuple[type[Exception], ...]:
    # ASGI asks for an OSError from a send to a closed socket; daphne raises autobahn's
    # Disconnected (a RuntimeError) from the client's close frame until its disconnect message.
    try:
        from autobahn.exception import Disconnected
    except ImportError:
        return (OSError,)
    return (OSError, Disconnected)


class WebSocketConsumer(AsyncWebsocketConsumer):
    """Engine.IO WebSocket endpoint. Route it with ``WebSocketConsumer.as_asgi(engine=...)``."""

    def __init__(self, engine: EngineSource) -> None:
        super().__init__()
        self.engine_source = engine
        self.transport: WebSocketTransport | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Replaces Channels' AsyncConsumer.__call__: no channel-layer channel per socket (the
        # cluster bus reaches sockets through the process's node), and no per-message
        # aclose_old_connections() thread hop (~70% of per-message CPU in the stock dispatch).
        # ORM work in handlers goes through database_sync_to_async, which does that cleanup.
        self.scope = scope
        self.base_send = send
        task = track_consumer_task()
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    if self.transport is not None:
                        text = message.get("text")
                        await self.transport.receive(
                            text if text is not None else message.get("bytes") or b""
                        )
                elif kind == "websocket.connect":
                    engine = resolve_engine(self.engine_source)
                    self.transport = await engine.open_websocket(HttpRequest.from_asgi(scope), self)
                elif kind == "websocket.disconnect":
                    if self.transport is not None:
                        await self.transport.disconnected(message.get("code", 1005))
                    return
        except asyncio.CancelledError:
            # The ASGI server cancels its applications when it stops (daphne does).
            if self.transport is not None:
                await self.transport.server_stopping()
            raise
        finally:
            untrack_consumer_task(task)

    @property
    def closed_errors(self) -> tuple[type[Exception], ...]:
        """What the ASGI server's send raises once the socket is closed."""
        return _closed_errors()

    def send_frame(self, data: str | bytes) -> Awaitable[None]:
        # The ASGI send's own awaitable, with no coroutine of ours around it (once per frame).
        send: Callable[[dict[str, Any]], Awaitable[None]] = self.base_send
        if isinstance(data, str):
            return send({"type": "websocket.send", "text": data})
        return send({"type": "websocket.send", "bytes": data})

    async def close_socket(self, code: int) -> None:
        try:
            await self.base_send({"type": "websocket.close", "code": code})
        except Exception:
            # daphne (autobahn) only sends 1000 and 3000-4999 once the socket is accepted, and
            # raises a bare Exception for other codes (1008, 1009) before changing any state:
            # close with 1000 instead of failing the application.
            if code == CLOSE_NORMAL or 3000 <= code <= 4999:
                raise
            await self.base_send({"type": "websocket.close", "code": CLOSE_NORMAL})
