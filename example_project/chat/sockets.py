"""Socket.IO handlers of the chat demo, on the "/chat" namespace.

Client -> server (the return value of a handler is its acknowledgement):

- ``join(room)`` -> ``{"room", "members", "history"}``: leaves the current room, if any;
- ``leave()`` -> ``{"room"}``;
- ``message(room, text)`` -> ``{"id", "time"}``: the message goes to the others in the room;
- ``typing(room, is_typing)``: no acknowledgement.

Server -> client: ``rooms`` (the room list with member counts), ``message``, ``typing``,
``joined`` and ``left``. Failed requests are acknowledged with ``{"error": "..."}``.

A socket is in one room at a time. Recent messages live in this process's memory: enough for
a demo served by one process (``runserver``), lost on restart. Connection state recovery is on
(settings.py): a user whose connection drops comes back to the same socket, in the same room,
and gets the messages sent meanwhile; the connect handler then tells the room it is back.
"""

from __future__ import annotations

import secrets
from collections import deque
from datetime import UTC, datetime
from typing import Any

from channels_sio import ConnectionRefusedError, Socket, sio

NAMESPACE = "/chat"
ROOMS = ("lobby", "python", "django", "random")
HISTORY_SIZE = 50
MAX_LENGTH = 1000

chat = sio.of(NAMESPACE)
history: dict[str, deque[dict[str, Any]]] = {room: deque(maxlen=HISTORY_SIZE) for room in ROOMS}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


async def members(room: str) -> list[str]:
    """Names of the users with a socket in ``room`` (a user may have several tabs open)."""
    return sorted({socket.data["username"] for socket in await chat.in_(room).fetch_sockets()})


async def room_list() -> list[dict[str, Any]]:
    return [{"name": room, "members": len(await members(room))} for room in ROOMS]


async def leave_room(socket: Socket) -> None:
    """Take ``socket`` out of its room; tell the room when its user is gone from it."""
    room = socket.data.pop("room", None)
    if room is None:
        return
    socket.leave(room)
    user = socket.data["username"]
    names = await members(room)
    if user not in names:
        await chat.to(room).emit("left", {"room": room, "user": user, "members": names})
        await chat.emit("rooms", await room_list())


@chat.on("connect")
async def connect(socket: Socket, auth: dict[str, Any]) -> None:
    user = socket.user
    if user is None or not user.is_authenticated:
        raise ConnectionRefusedError("login required")
    socket.data["username"] = user.get_username()
    room = socket.data.get("room")
    if socket.recovered and room is not None:
        # Back in its room with the messages it missed (connection state recovery): the
        # others saw it leave when its connection dropped, so they see it come back. It is
        # not connected yet while this handler runs, so it is not among the members found.
        names = sorted({*await members(room), socket.data["username"]})
        await socket.to(room).emit(
            "joined",
            {"room": room, "user": socket.data["username"], "members": names, "time": now()},
        )
    await socket.emit("rooms", await room_list())


@chat.on("disconnect")
async def disconnect(socket: Socket, reason: str) -> None:
    await leave_room(socket)


@chat.on("join")
async def join(socket: Socket, room: Any = None) -> dict[str, Any]:
    if room not in ROOMS:
        return {"error": f"no room {room!r}"}
    if socket.data.get("room") != room:
        await leave_room(socket)
        user = socket.data["username"]
        already_there = user in await members(room)
        socket.join(room)
        socket.data["room"] = room
        if not already_there:
            names = await members(room)
            await socket.to(room).emit(
                "joined", {"room": room, "user": user, "members": names, "time": now()}
            )
            await chat.emit("rooms", await room_list())
    return {"room": room, "members": await members(room), "history": list(history[room])}


@chat.on("leave")
async def leave(socket: Socket, *_: Any) -> dict[str, Any]:
    room = socket.data.get("room")
    await leave_room(socket)
    return {"room": room}


@chat.on("message")
async def message(socket: Socket, room: Any = None, text: Any = None) -> dict[str, Any]:
    if room is None or room != socket.data.get("room"):
        return {"error": "join the room first"}
    if not isinstance(text, str) or not text.strip():
        return {"error": "empty message"}
    if len(text) > MAX_LENGTH:
        return {"error": f"messages are limited to {MAX_LENGTH} characters"}
    sent = {
        "id": secrets.token_urlsafe(8),
        "room": room,
        "user": socket.data["username"],
        "text": text.strip(),
        "time": now(),
    }
    history[room].append(sent)
    await socket.to(room).emit("message", sent)
    return {"id": sent["id"], "time": sent["time"]}


@chat.on("typing")
async def typing(socket: Socket, room: Any = None, is_typing: Any = True) -> None:
    if room is not None and room == socket.data.get("room"):
        await socket.to(room).emit(
            "typing", {"room": room, "user": socket.data["username"], "typing": bool(is_typing)}
        )
