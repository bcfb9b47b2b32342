"""The Channels consumers of a project that had its own before it added Socket.IO
(settings_composed): a WebSocket echo at /ws/echo/ and an HTTP consumer at /api/ping/."""

from typing import Any

from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path


class EchoConsumer(AsyncWebsocketConsumer):
    """Greets the user of the connection by name, then sends every message back."""

    async def connect(self) -> None:
        await self.accept()
        user = self.scope.get("user")
        name = user.get_username() if user is not None and user.is_authenticated else ""
        await self.send(text_data=f"hello {name or 'anonymous'}")

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)


class PingConsumer(AsyncHttpConsumer):
    """Answers every request with ``pong``."""

    async def handle(self, body: bytes) -> None:
        await self.send_response(200, b"pong", headers=[(b"content-type", b"text/plain")])


websocket_urlpatterns: list[Any] = [path("ws/echo/", EchoConsumer.as_asgi())]
http_urlpatterns: list[Any] = [path("api/ping/", PingConsumer.as_asgi())]
