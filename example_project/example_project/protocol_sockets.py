"""Socket.IO handlers of the protocol reference configuration (settings_protocol).

On connect to ``/`` and ``/custom``: emit ``auth`` with the handshake auth payload, after the
CONNECT reply; on disconnect, the reason is kept for the state view (``protocol.state``).
``message`` -> emit ``message-back`` with the same arguments;
``message-with-ack`` -> acknowledge with the same arguments. Other namespaces are refused.
"""

from typing import Any

from channels_sio import Socket, sio

from .protocol import SOCKETIO_DISCONNECTED, remember


async def connect(socket: Socket, auth: dict[str, Any]) -> None:
    await socket.emit("auth", auth)


async def disconnect(socket: Socket, reason: str) -> None:
    remember(SOCKETIO_DISCONNECTED, socket.id, reason)


async def message(socket: Socket, *args: Any) -> None:
    await socket.emit("message-back", *args)


async def message_with_ack(socket: Socket, *args: Any) -> tuple[Any, ...]:
    return args


for namespace in ("/", "/custom"):
    sio.on("connect", connect, namespace=namespace)
    sio.on("disconnect", disconnect, namespace=namespace)
    sio.on("message", message, namespace=namespace)
    sio.on("message-with-ack", message_with_ack, namespace=namespace)
