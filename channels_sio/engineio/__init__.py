"""Pure Engine.IO v4: codec, sessions, transports, server. Imports neither Django nor Socket.IO."""

from .config import EngineIOConfig
from .errors import CloseReason, ErrorCode
from .http import HttpRequest, HttpResponse
from .packet import Packet, PacketType, ParseError
from .server import EngineIOServer, EngineObserver
from .session import Session, SessionState, UpgradeState

__all__ = [
    "CloseReason",
    "EngineIOConfig",
    "EngineIOServer",
    "EngineObserver",
    "ErrorCode",
    "HttpRequest",
    "HttpResponse",
    "Packet",
    "PacketType",
    "ParseError",
    "Session",
    "SessionState",
    "UpgradeState",
]
