"""python-socketio's ASGI app with the handlers of example_project.bench_sockets.

``echo`` acknowledges with its arguments; ``echo_emit`` sends them back to the sender as an
``echo`` event; ``bcast`` emits ``tick`` with its data to every socket. python-socketio has no
connection state recovery: nothing is recorded. Same ping timings, payload limit and CORS as
channels_sio's defaults (settings_bench).

Run: ``uvicorn bench.servers.pysio_app:app`` or ``daphne bench.servers.pysio_app:app`` from the
repository root. ``bench/servers/pysio_redis_app.py`` is the same app on Redis.
"""

from typing import Any

import socketio


def create_app(client_manager: socketio.AsyncManager | None = None) -> socketio.ASGIApp:
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=client_manager,
        cors_allowed_origins="*",
        ping_interval=25,
        ping_timeout=20,
        max_http_buffer_size=1_000_000,
    )

    @sio.on("echo")
    async def echo(sid: str, *args: Any) -> tuple[Any, ...]:
        return args

    @sio.on("echo_emit")
    async def echo_emit(sid: str, *args: Any) -> None:
        # A tuple is sent as that many arguments (python-socketio's emit), as channels_sio's
        # socket.emit("echo", *args) does.
        await sio.emit("echo", args, to=sid)

    @sio.on("bcast")
    async def bcast(sid: str, data: Any = None) -> None:
        await sio.emit("tick", data)

    return socketio.ASGIApp(sio, socketio_path="socket.io")


app = create_app()
