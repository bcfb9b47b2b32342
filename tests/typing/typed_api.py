"""What a user's type checker sees of the public API: checked by mypy (``test_typing.py``),
never run.

Each ``assert_type`` fails the check if what it names turns into ``Any`` again, and so does
each ``type: ignore`` on a wrong call (the configuration warns of unused ones): a decorator
that returns ``Any`` erases the decorated function's signature, so calls to it go unchecked.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, assert_type

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.base import SessionBase

from channels_sio import NamespaceHandler, Socket, SocketIOServer, sio
from channels_sio.engineio import EngineIOServer, Session

server = SocketIOServer()
chat = server.of("/chat")


AsyncHandler = Callable[[Socket, str], Coroutine[Any, Any, str]]
PlainHandler = Callable[[Socket, int], int]


async def _chat_message(socket: Socket, text: str) -> str:
    return text


def _plain_message(socket: Socket, count: int) -> int:
    return count


# Typed as callables, so that assert_type can name their exact types.
chat_message: AsyncHandler = _chat_message
plain_message: PlainHandler = _plain_message


# Called with the handler, and as a decorator.
assert_type(server.on("chat", chat_message), AsyncHandler)
assert_type(server.on("chat")(chat_message), AsyncHandler)
assert_type(server.on("count", plain_message, namespace="/chat"), PlainHandler)
assert_type(chat.on("chat", chat_message), AsyncHandler)
assert_type(chat.on("count")(plain_message), PlainHandler)
assert_type(server.event(chat_message), AsyncHandler)
assert_type(server.use(plain_message), PlainHandler)
assert_type(server.use(chat_message, namespace="/chat"), AsyncHandler)
assert_type(chat.use(chat_message), AsyncHandler)
assert_type(server.on_server_event("sync", plain_message), PlainHandler)
assert_type(server.on_server_event("sync")(chat_message), AsyncHandler)


# The project's server, as users decorate on it.
@sio.on("connect", namespace="/chat")
async def connect(socket: Socket, auth: dict[str, Any]) -> bool:
    return socket.user is not None and socket.user.is_authenticated


@sio.on_server_event("refresh")
def refresh(key: str) -> None: ...


@chat.on("typing")
def typing(socket: Socket, who: str) -> None: ...


@sio.event
async def ping(socket: Socket) -> str:
    return "pong"


async def calls(socket: Socket) -> None:
    await connect(socket, "not a dict")  # type: ignore[arg-type]
    refresh(1)  # type: ignore[arg-type]
    typing(socket, 2)  # type: ignore[arg-type]
    assert_type(await ping(socket), str)


class Lobby(NamespaceHandler):
    namespace = "/lobby"


assert_type(sio.register(Lobby()), Lobby)


def facts(socket: Socket) -> None:
    assert_type(socket.user, AbstractBaseUser | AnonymousUser | None)
    assert_type(socket.session, SessionBase | None)


# The Engine.IO server's decorators, for raw Engine.IO endpoints.
engine = EngineIOServer()


@engine.on_message
async def echo(session: Session, message: str | bytes) -> None:
    await session.send(message)


async def engine_calls(session: Session) -> None:
    await echo(session, 3)  # type: ignore[arg-type]
