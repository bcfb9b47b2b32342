"""Long-polling consumer: reads one HTTP request, lets the server answer it, sends the answer."""

from __future__ import annotations

from typing import Any

from channels.generic.http import AsyncHttpConsumer

from ..engineio import HttpRequest
from .base import EngineSource, resolve_engine, track_consumer_task, untrack_consumer_task

__all__ = ["PollingConsumer"]


class PollingConsumer(AsyncHttpConsumer):
    """Engine.IO long-polling endpoint. Route it with ``PollingConsumer.as_asgi(engine=...)``."""

    def __init__(self, engine: EngineSource) -> None:
        super().__init__()
        self.engine_source = engine

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Replaces Channels' AsyncConsumer.__call__: a polling request needs no channel-layer
        # channel, and the stock dispatch runs aclose_old_connections() (a thread-pool round
        # trip, ~70% of per-message CPU) for every message. Handlers that use the ORM go
        # through database_sync_to_async, which closes old connections itself.
        self.scope = scope
        self.base_send = send
        task = track_consumer_task()
        try:
            await self._answer(scope, receive, send)
        finally:
            untrack_consumer_task(task)

    async def _answer(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        engine = resolve_engine(self.engine_source)
        limit = engine.config.max_payload
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        request = HttpRequest.from_asgi(scope, b"".join(chunks), body_too_large=size > limit)
        response = await engine.handle_http(request, receive)
        if response is not None:
            # Straight to the server: AsyncHttpConsumer.send_response adds two layers of calls
            # per message and nothing this response needs.
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": response.asgi_headers(),
                }
            )
            await send({"type": "http.response.body", "body": response.body})
