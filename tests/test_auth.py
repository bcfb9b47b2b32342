"""SessionAuthMiddleware: the scope it builds, and when it needs the thread pool."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.sessions.backends.db import SessionStore
from django.core.asgi import get_asgi_application
from django.test import Client

import channels_sio.auth
from channels_sio import ConnectionRefusedError, Socket, SocketIOServer
from channels_sio.asgi import get_application
from channels_sio.auth import SessionAuthMiddleware, session_user
from channels_sio.testing import SocketIOCommunicator

pytestmark = pytest.mark.django_db(transaction=True)


async def scope_seen(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """Run the middleware around an app that keeps the scope it is given."""
    seen: dict[str, Any] = {}

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)

    outer = {"type": "websocket", "path": "/socket.io/", "headers": headers}
    await SessionAuthMiddleware(inner)(outer, None, None)
    assert "user" not in outer, "the caller's scope must not change"
    return seen


def logged_in_cookie(username: str) -> str:
    browser = Client()
    browser.force_login(User.objects.create_user(username))
    return browser.cookies[settings.SESSION_COOKIE_NAME].value


def cookie_header(session_key: str) -> list[tuple[bytes, bytes]]:
    return [(b"cookie", f"theme=dark; {settings.SESSION_COOKIE_NAME}={session_key}".encode())]


async def test_without_a_cookie_the_user_is_anonymous_and_no_thread_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_lookup(scope: dict[str, Any]) -> Any:
        raise AssertionError("a request without a session cookie needs no user lookup")

    monkeypatch.setattr(channels_sio.auth, "get_user", no_lookup)
    scope = await scope_seen([(b"host", b"example.com")])
    assert isinstance(scope["user"], AnonymousUser)
    assert scope["cookies"] == {}
    assert scope["session"].session_key is None
    assert await sync_to_async(scope["session"].is_empty)()


async def test_a_session_cookie_gives_the_logged_in_user() -> None:
    key = await sync_to_async(logged_in_cookie)("alice")
    scope = await scope_seen(cookie_header(key))
    assert scope["user"].username == "alice"
    assert scope["cookies"]["theme"] == "dark"
    assert scope["session"].session_key == key


async def test_an_unknown_session_key_is_anonymous() -> None:
    scope = await scope_seen(cookie_header("x" * 32))
    assert isinstance(scope["user"], AnonymousUser)


async def test_a_session_whose_password_hash_changed_is_anonymous() -> None:
    key = await sync_to_async(logged_in_cookie)("bob")

    def tamper() -> None:
        session = SessionStore(key)
        session[HASH_SESSION_KEY] = "stale"
        session.save()

    await sync_to_async(tamper)()
    scope = await scope_seen(cookie_header(key))
    assert isinstance(scope["user"], AnonymousUser)


async def test_send_is_passed_through_unwrapped() -> None:
    sends: list[Any] = []

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        sends.append(send)

    async def send(message: dict[str, Any]) -> None: ...

    await SessionAuthMiddleware(inner)({"type": "http", "headers": []}, None, send)
    assert sends == [send]


async def test_a_user_already_on_the_scope_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_lookup(scope: dict[str, Any]) -> Any:
        raise AssertionError("an outer AuthMiddlewareStack already looked the user up")

    monkeypatch.setattr(channels_sio.auth, "get_user", no_lookup)
    seen: dict[str, Any] = {}

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)

    outer = {"type": "websocket", "headers": cookie_header("k" * 32), "user": "alice"}
    await SessionAuthMiddleware(inner)(outer, None, None)
    assert seen == outer


async def test_session_user() -> None:
    key = await sync_to_async(logged_in_cookie)("carol")
    assert (await session_user(key)).username == "carol"
    for token in ("x" * 32, "", None, 42, ["a"]):
        assert isinstance(await session_user(token), AnonymousUser), token


async def test_a_token_in_the_auth_payload_sets_the_sockets_user() -> None:
    sio = SocketIOServer()

    @sio.use
    async def token_login(socket: Socket, auth: dict[str, Any]) -> None:
        if "token" in auth:
            socket.user = await session_user(auth["token"])

    @sio.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any]) -> None:
        if not socket.user.is_authenticated:
            raise ConnectionRefusedError("login required")

    @sio.on("whoami")
    async def whoami(socket: Socket) -> tuple[str, bool]:
        # The scope keeps the request's own user: the token's is this socket's alone.
        return socket.user.get_username(), socket.scope["user"].is_authenticated

    application = get_application(get_asgi_application(), server=sio)
    key = await sync_to_async(logged_in_cookie)("dave")
    client = SocketIOCommunicator(application, auth={"token": key})
    refused = SocketIOCommunicator(application, auth={"token": "forged"})
    try:
        await client.connect()
        assert await client.emit_with_ack("whoami") == ["dave", False]
        with pytest.raises(ConnectionRefusedError, match="login required"):
            await refused.connect()
    finally:
        await client.disconnect()
        await sio.shutdown()
