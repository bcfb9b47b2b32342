"""Test-only Socket.IO handlers of the recovery suite, on the namespace ``/recovery``.

Every handler answers through its acknowledgement, so that a client drives what the server
sends while another client is away:

``info``            the socket as the server sees it: id, recovered, rooms, data
``join``            join rooms
``set``             update ``socket.data``
``cast``            a broadcast built from a spec: ``to`` / ``except`` / ``volatile`` / ``binary``
                    / ``from_socket`` (``socket.to()``: the sender left out)
``self``            ``socket.emit`` to the sender itself (``volatile``, ``ack`` possible)
``django-emit``     ``channels_sio.async_emit``, as Django code emits
``sequence``        ``socket.emit`` of ``seq`` 1 to 4: recorded, volatile, recorded, with a callback
``burst``           ``count`` broadcasts of ``seq`` numbered from ``start``, one after the other
                    (to the rooms ``to``, ``pause`` ms apart, if given)
``leave-me``        ``socket.disconnect()``: an explicit disconnect by the server
``cut-me``          the server closes the connection without a DISCONNECT (``forced close``)
``stats``           how often the middleware and the connect handler ran, by socket id
``users``           how many Django users there are: a handler that uses the ORM

A client whose auth has ``rooms`` joins them in the connect handler; one with ``refuse`` is
refused by the middleware.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.db import database_sync_to_async

import channels_sio
from channels_sio import ConnectionRefusedError, Socket, sio
from channels_sio.engineio import CloseReason

NSP = "/recovery"
nsp = sio.of(NSP)

#: "middleware:<sid>" / "connect:<sid>" -> runs; "recovered:<sid>" -> the flag at connect.
STATS: dict[str, Any] = {}


def _count(key: str) -> None:
    STATS[key] = STATS.get(key, 0) + 1


@nsp.use
async def middleware(socket: Socket, auth: dict[str, Any]) -> None:
    _count(f"middleware:{socket.id}")
    if auth.get("refuse"):
        raise ConnectionRefusedError("refused")


@nsp.on("connect")
async def connect(socket: Socket, auth: dict[str, Any]) -> None:
    _count(f"connect:{socket.id}")
    STATS[f"recovered:{socket.id}"] = socket.recovered
    if not socket.recovered:
        socket.join(*auth.get("rooms", []))
        socket.data["name"] = auth.get("name")


@nsp.on("info")
async def info(socket: Socket) -> dict[str, Any]:
    return {
        "id": socket.id,
        "recovered": socket.recovered,
        "rooms": sorted(socket.rooms - {socket.id}),
        "data": socket.data,
    }


@nsp.on("join")
async def join(socket: Socket, *rooms: str) -> bool:
    socket.join(*rooms)
    return True


@nsp.on("set")
async def set_data(socket: Socket, values: dict[str, Any]) -> bool:
    socket.data.update(values)
    return True


@nsp.on("cast")
async def cast(socket: Socket, spec: dict[str, Any]) -> bool:
    op = socket.broadcast if spec.get("from_socket") else nsp.operator
    for room in spec.get("to", []):
        op = op.to(room)
    for room in spec.get("except", []):
        op = op.except_(room)
    if spec.get("volatile"):
        op = op.volatile
    args = list(spec.get("args", []))
    if "binary" in spec:
        args.append({"bytes": bytes.fromhex(spec["binary"])})
    await op.emit(spec["event"], *args)
    return True


@nsp.on("self")
async def to_self(socket: Socket, spec: dict[str, Any]) -> bool:
    if spec.get("volatile"):
        await socket.volatile.emit(spec["event"], *spec.get("args", []))
    elif spec.get("ack"):
        await socket.emit(spec["event"], *spec.get("args", []), callback=lambda *_: None)
    else:
        await socket.emit(spec["event"], *spec.get("args", []))
    return True


@nsp.on("django-emit")
async def django_emit(socket: Socket, spec: dict[str, Any]) -> bool:
    await channels_sio.async_emit(
        spec["event"], *spec.get("args", []), to=spec.get("to"), namespace=NSP
    )
    return True


@nsp.on("sequence")
async def sequence(socket: Socket) -> str:
    await socket.emit("seq", 1)
    await socket.volatile.emit("seq", 2)
    await socket.emit("seq", 3)
    await socket.emit("seq", 4, callback=lambda *_: None)
    return "done"


@nsp.on("burst")
async def burst(socket: Socket, spec: dict[str, Any]) -> bool:
    start = spec.get("start", 0)
    op = nsp.operator.to(*spec.get("to", []))
    pause = spec.get("pause", 0) / 1000
    for seq in range(start, start + spec["count"]):
        await op.emit("seq", seq)
        if pause:
            await asyncio.sleep(pause)
    return True


@nsp.on("leave-me")
async def leave_me(socket: Socket) -> None:
    sio.spawn(socket.disconnect())


@nsp.on("cut-me")
async def cut_me(socket: Socket) -> None:
    sio.spawn(socket.client.session.close(CloseReason.FORCED_CLOSE))


@nsp.on("stats")
async def stats(socket: Socket) -> dict[str, Any]:
    return STATS


@nsp.on("users")
async def users(socket: Socket) -> int:
    from django.contrib.auth.models import User  # a handlers module loads before the apps

    return await database_sync_to_async(User.objects.count)()
