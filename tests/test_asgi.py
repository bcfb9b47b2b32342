"""get_application's routing: the connection middleware runs once per Engine.IO session."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.core.asgi import get_asgi_application
from django.core.exceptions import ImproperlyConfigured
from django.urls import path

from channels_sio.asgi import get_application, http_route, socketio_engine, websocket_route
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


class Echo(AsyncWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=f"echo {text_data}")


async def echoes(app: Any, path: str = "/ws/echo/") -> bool:
    client = WebsocketCommunicator(app, path)
    connected, _ = await client.connect()
    if connected:
        await client.send_to(text_data="hi")
        assert await client.receive_from() == "echo hi"
    await client.disconnect()
    return bool(connected)


async def test_websockets_to_other_paths_go_to_the_projects_application(
    sio: SocketIOServer,
) -> None:
    project_ws = URLRouter([path("ws/echo/", Echo.as_asgi())])
    app = get_application(get_asgi_application(), websocket=project_ws, server=sio)
    assert await echoes(app)
    socket = WebsocketCommunicator(app, "/socket.io/?EIO=4&transport=websocket")
    connected, _ = await socket.connect()
    assert connected
    assert (await socket.receive_from()).startswith("0{")
    await socket.disconnect()


async def test_a_protocol_type_router_keeps_its_websockets(sio: SocketIOServer) -> None:
    project = ProtocolTypeRouter(
        {
            "http": get_asgi_application(),
            "websocket": URLRouter([path("ws/echo/", Echo.as_asgi())]),
        }
    )
    # Its HTTP side is checked live (tests/test_asgi_composition.py): Django's handler leaves
    # a request file open when a communicator stops it.
    assert await echoes(get_application(project, server=sio))


async def test_without_a_websocket_application_other_paths_are_refused(
    sio: SocketIOServer,
) -> None:
    app = get_application(get_asgi_application(), server=sio)
    with pytest.raises(ValueError, match="No route found for path '/ws/echo/'"):
        await echoes(app)


def test_socketio_engine_called_at_import_time_says_so() -> None:
    with pytest.raises(ImproperlyConfigured, match="pass the function, not its result"):
        socketio_engine()


async def test_hand_built_routes_have_the_user_by_default(sio: SocketIOServer) -> None:
    users: list[Any] = []

    @sio.on("connect")
    async def connect(socket: Any) -> None:
        users.append(socket.user)

    app = URLRouter([websocket_route("socket.io/", lambda: sio.engine)])
    for router in (app, AuthMiddlewareStack(app)):
        socket = WebsocketCommunicator(router, "/socket.io/?EIO=4&transport=websocket")
        connected, _ = await socket.connect()
        assert connected
        assert (await socket.receive_from()).startswith("0{")
        await socket.send_to(text_data="40")
        assert (await socket.receive_from()).startswith("40{")
        await socket.disconnect()
    assert [user.is_authenticated for user in users] == [False, False]
    http = URLRouter([http_route("socket.io/", lambda: sio.engine)])
    opened = await request(http, "GET", "transport=polling")
    sid = json.loads(opened[1:])["sid"]
    assert await request(http, "POST", f"transport=polling&sid={sid}", b"40") == b"ok"
    assert (await request(http, "GET", f"transport=polling&sid={sid}")).startswith(b"40{")
    assert len(users) == 3
    assert not users[2].is_authenticated
