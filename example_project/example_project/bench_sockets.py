"""Socket.IO handlers of the benchmark configuration (settings_bench).

``echo`` acknowledges with its arguments; ``echo_emit`` sends them back as an ``echo`` event
(``socket.emit``, which connection state recovery records, as it never records an
acknowledgement); ``bcast`` broadcasts ``tick`` with its data to every socket; ``join(room)``
joins a room and acknowledges ``true``; ``bcast_to(target, data)`` broadcasts ``tick`` to a
room or a socket id.
"""

from typing import Any

from channels_sio import Socket, sio


@sio.on("echo")
async def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
    return args


@sio.on("echo_emit")
async def echo_emit(socket: Socket, *args: Any) -> None:
    await socket.emit("echo", *args)


@sio.on("bcast")
async def bcast(socket: Socket, data: Any = None) -> None:
    await sio.emit("tick", data)


@sio.on("join")
async def join(socket: Socket, room: str) -> bool:
    socket.join(room)
    return True


@sio.on("bcast_to")
async def bcast_to(socket: Socket, target: str, data: Any = None) -> None:
    await sio.to(target).emit("tick", data)
