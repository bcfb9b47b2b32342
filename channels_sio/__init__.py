"""channels_sio: Socket.IO (Engine.IO v4 / Socket.IO v5) servers on Django Channels.

``sio`` (the project's server), ``emit`` and ``async_emit`` are loaded on first access, so
importing the package reads no settings.
"""

from typing import TYPE_CHECKING, Any

from .socketio import (
    AckTimeoutError,
    ConnectionRefusedError,
    DisconnectedError,
    NamespaceHandler,
    Socket,
    SocketIOError,
    SocketIOServer,
)

if TYPE_CHECKING:
    from .emitter import async_emit, emit
    from .server import sio

__version__ = "0.1.0"

__all__ = [
    "AckTimeoutError",
    "ConnectionRefusedError",
    "DisconnectedError",
    "NamespaceHandler",
    "Socket",
    "SocketIOError",
    "SocketIOServer",
    "async_emit",
    "emit",
    "sio",
]


def __getattr__(name: str) -> Any:
    if name == "sio":
        from .server import sio

        return sio
    if name in ("emit", "async_emit"):
        from . import emitter

        return getattr(emitter, name)
    raise AttributeError(f"module 'channels_sio' has no attribute {name!r}")
