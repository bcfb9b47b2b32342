"""Socket.IO handlers of the security tests (settings_security).

``/me``: on connect, emit ``me`` with the Django user's name (None when anonymous); ``boom``
raises an error whose text must never reach the client. ``/failing``: the connect handler
raises. ``/`` and ``/custom`` keep the protocol reference handlers.
"""

from __future__ import annotations

from typing import Any

from channels_sio import Socket, sio

#: Text of the errors raised here: a client must never see it.
SECRET = "secret-detail-4f1c"


@sio.on("connect", namespace="/me")
async def me_connect(socket: Socket, auth: dict[str, Any]) -> None:
    user = socket.user
    await socket.emit("me", user.get_username() if user and user.is_authenticated else None)


@sio.on("boom", namespace="/me")
async def boom(socket: Socket, *args: Any) -> str:
    raise RuntimeError(f"{SECRET} in an event handler")


@sio.on("connect", namespace="/failing")
async def failing_connect(socket: Socket, auth: dict[str, Any]) -> None:
    raise RuntimeError(f"{SECRET} in a connect handler")
