"""Pure Socket.IO v5 on top of the Engine.IO layer. Imports no Django."""

from .broadcast import BroadcastOperator
from .exceptions import AckTimeoutError, ConnectionRefusedError, DisconnectedError, SocketIOError
from .handlers import NamespaceHandler
from .namespace import Namespace
from .packet import Packet, PacketType, SocketIOParseError
from .server import ServerConfig, SocketHooks, SocketIOServer, SocketObserver
from .socket import Handshake, Socket, SocketState

__all__ = [
    "AckTimeoutError",
    "BroadcastOperator",
    "ConnectionRefusedError",
    "DisconnectedError",
    "Handshake",
    "Namespace",
    "NamespaceHandler",
    "Packet",
    "PacketType",
    "ServerConfig",
    "Socket",
    "SocketHooks",
    "SocketIOError",
    "SocketIOParseError",
    "SocketIOServer",
    "SocketObserver",
    "SocketState",
]
