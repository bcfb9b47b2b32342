"""Socket.IO handlers of settings_composed: the README's chat handlers, and a token login for
clients that are not browsers (a script, a test, a mobile app).

A client that sends ``auth: {token: <session key>}`` is the user of that Django session; a
browser of the same site is the user of its session cookie. ``whoami`` acknowledges with the
user's name; the disconnect reason is logged ("socketio disconnected <name>: <reason>"), which
the shutdown tests read once the process is gone.
"""

import logging
from typing import Any

from channels_sio import ConnectionRefusedError, Socket, sio
from channels_sio.auth import session_user

logger = logging.getLogger(__name__)


@sio.use
async def token_login(socket: Socket, auth: dict[str, Any]) -> None:
    if "token" in auth:
        socket.user = await session_user(auth["token"])


@sio.on("connect")
async def connect(socket: Socket, auth: dict[str, Any]) -> None:
    user = socket.user  # None when the connection went through no session middleware
    if user is None or not user.is_authenticated:
        raise ConnectionRefusedError("login required")
    socket.data["name"] = user.get_username()


@sio.on("whoami")
async def whoami(socket: Socket) -> str:
    name: str = socket.data["name"]
    return name


@sio.on("join")
async def join(socket: Socket, room: str) -> str:
    socket.join(room)
    await socket.to(room).emit("joined", socket.data["name"])
    return "ok"


@sio.on("message")
async def message(socket: Socket, room: str, text: str) -> None:
    await sio.to(room).emit("message", {"user": socket.data["name"], "text": text})


@sio.on("disconnect")
async def disconnect(socket: Socket, reason: str) -> None:
    logger.info("socketio disconnected %s: %s", socket.data.get("name"), reason)
