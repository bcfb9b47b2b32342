"""Socket.IO handlers of the benchmark configuration (settings_bench).

``echo`` acknowledges with its arguments; ``bcast`` broadcasts ``tick`` with its data to every
socket.
"""

from typing import Any

from channels_sio import Socket, sio


@sio.on("echo")
async def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
    return args


@sio.on("bcast")
async def bcast(socket: Socket, data: Any = None) -> None:
    await sio.emit("tick", data)
