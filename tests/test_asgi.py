"""get_application's routing: the connection middleware runs once per Engine.IO session."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.core.asgi import get_asgi_application

from channels_sio.asgi import get_application
from channels_sio.socketio import SocketIOServer

pytestmark = pytest.mark.django_db(transaction=True)


class CountingMiddleware:
    """Counts the requests it wraps and marks their scope."""

    calls: list[str] = []

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.calls.append(scope["type"])
        await self.inner({**scope, "marked": True}, receive, send)


@pytest.fixture
async def sio() -> AsyncIterator[SocketIOServer]:
    server = SocketIOServer()
    yield server
    await server.shutdown()


async def request(app: Any, method: str, query: str, body: bytes = b"") -> bytes:
    communicator = HttpCommunicator(app, method, f"/socket.io/?EIO=4&{query}", body)
    response = await communicator.get_response(timeout=2)
    assert response["status"] == 200, response
    body_out: bytes = response["body"]
    return body_out


async def test_polling_requests_after_the_handshake_skip_the_middleware(
    sio: SocketIOServer,
) -> None:
    CountingMiddleware.calls = []
    marked: list[bool] = []

    @sio.on("connect")
    async def connect(socket: Any) -> None:
        marked.append(bool(socket.scope.get("marked")))

    app = get_application(get_asgi_application(), server=sio, middleware=CountingMiddleware)
    opened = await request(app, "GET", "transport=polling")
    sid = json.loads(opened[1:])["sid"]
    assert await request(app, "POST", f"transport=polling&sid={sid}", b"40") == b"ok"
    reply = await request(app, "GET", f"transport=polling&sid={sid}")
    assert reply.startswith(b"40{")
    assert CountingMiddleware.calls == ["http"]
    assert marked == [True], "handlers see the scope of the request that opened the session"

    # The WebSocket that upgrades this session skips it too.
    probe = WebsocketCommunicator(app, f"/socket.io/?EIO=4&transport=websocket&sid={sid}")
    connected, _ = await probe.connect()
    assert connected
    await probe.send_to(text_data="2probe")
    assert await probe.receive_from() == "3probe"
    await probe.send_to(text_data="5")
    await probe.send_to(text_data="1")
    await probe.wait()
    assert CountingMiddleware.calls == ["http"]


async def test_a_websocket_session_goes_through_the_middleware_once(sio: SocketIOServer) -> None:
    CountingMiddleware.calls = []
    app = get_application(get_asgi_application(), server=sio, middleware=CountingMiddleware)
    socket = WebsocketCommunicator(app, "/socket.io/?EIO=4&transport=websocket")
    connected, _ = await socket.connect()
    assert connected
    assert (await socket.receive_from()).startswith("0{")
    await socket.send_to(text_data="40")
    assert (await socket.receive_from()).startswith("40{")
    await socket.disconnect()
    assert CountingMiddleware.calls == ["websocket"]
