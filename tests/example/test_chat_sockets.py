"""The chat demo's "/chat" handlers, in process: login required, rooms, messages, typing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.core.asgi import get_asgi_application
from django.test import Client

from channels_sio import ConnectionRefusedError, sio
from channels_sio.asgi import get_application
from channels_sio.testing import SocketIOCommunicator

pytestmark = pytest.mark.django_db(transaction=True)

Connect = Callable[..., Coroutine[Any, Any, SocketIOCommunicator]]


@database_sync_to_async
def session_cookie(username: str) -> list[tuple[bytes, bytes]]:
    """The Cookie header of a browser logged in as a new user ``username``."""
    client = Client()
    client.force_login(User.objects.create_user(username))
    value = client.cookies[settings.SESSION_COOKIE_NAME].value
    return [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={value}".encode())]


async def expect(client: SocketIOCommunicator, name: str) -> Any:
    """The first argument of the next ``name`` event, skipping room-list updates."""
    while True:
        event, args = await client.receive_event()
        if event == name:
            return args[0]
        assert event == "rooms", f"expected {name!r}, got {event!r} with {args!r}"


async def drain(client: SocketIOCommunicator) -> list[str]:
    """The names of the events received until none arrives for a moment."""
    names = []
    while not await client.receive_nothing():
        event, _ = await client.receive_event()
        names.append(event)
    return names


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Connects communicators to "/chat" of the project's server; closes them all after."""
    application = get_application(get_asgi_application(), server=sio)
    opened: list[SocketIOCommunicator] = []

    async def open_one(headers: list[tuple[bytes, bytes]] | None = None) -> SocketIOCommunicator:
        client = SocketIOCommunicator(application, namespace="/chat", headers=headers)
        opened.append(client)
        await client.connect()
        return client

    yield open_one
    for client in opened:
        await client.ws.disconnect()
    await sio.shutdown()


async def test_anonymous_socket_is_refused(connect: Connect) -> None:
    with pytest.raises(ConnectionRefusedError, match="login required"):
        await connect()


async def test_logged_in_socket_is_accepted(connect: Connect) -> None:
    client = await connect(await session_cookie("carol"))
    assert client.sid
    rooms = await client.expect_event("rooms")
    assert [room["name"] for room in rooms[0]] == ["lobby", "python", "django", "random"]


async def test_room_messages_and_typing(connect: Connect) -> None:
    alice = await connect(await session_cookie("alice"))
    bob = await connect(await session_cookie("bob"))
    [joined] = await alice.emit_with_ack("join", "django")
    assert joined["room"] == "django"
    assert joined["members"] == ["alice"]

    [joined] = await bob.emit_with_ack("join", "django")
    assert joined["members"] == ["alice", "bob"]
    notice = await expect(alice, "joined")
    assert notice["user"] == "bob"
    assert notice["members"] == ["alice", "bob"]

    await alice.emit("typing", "django", True)
    typing = await expect(bob, "typing")
    assert typing == {"room": "django", "user": "alice", "typing": True}

    [ack] = await alice.emit_with_ack("message", "django", "  hello  ")
    message = await expect(bob, "message")
    assert message["user"] == "alice"
    assert message["text"] == "hello"
    assert message["id"] == ack["id"]
    assert message["time"] == ack["time"]
    assert "message" not in await drain(alice)  # the sender only gets the acknowledgement

    [refused] = await bob.emit_with_ack("message", "lobby", "not in that room")
    assert refused == {"error": "join the room first"}
    [refused] = await bob.emit_with_ack("join", "nowhere")
    assert "error" in refused

    # A late joiner gets the recent messages; leaving tells the others.
    [left] = await bob.emit_with_ack("leave")
    assert left == {"room": "django"}
    notice = await expect(alice, "left")
    assert notice["user"] == "bob"
    assert notice["members"] == ["alice"]
    [joined] = await bob.emit_with_ack("join", "django")
    assert joined["history"][-1]["text"] == "hello"


async def test_disconnect_announces_leaving(connect: Connect) -> None:
    alice = await connect(await session_cookie("alice"))
    bob = await connect(await session_cookie("bob"))
    await alice.emit_with_ack("join", "random")
    await bob.emit_with_ack("join", "random")
    assert (await expect(alice, "joined"))["user"] == "bob"
    await bob.disconnect()
    assert await expect(alice, "left") == {"room": "random", "user": "bob", "members": ["alice"]}
