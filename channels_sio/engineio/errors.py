"""Engine.IO HTTP error table and close reasons: every wire word in one place."""

from __future__ import annotations

import json
from enum import IntEnum, StrEnum

__all__ = ["CloseReason", "ErrorCode", "error_body"]


class ErrorCode(IntEnum):
    """Handshake and request errors, answered as JSON ``{"code", "message"}``."""

    UNKNOWN_TRANSPORT = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    @property
    def http_status(self) -> int:
        return 403 if self is ErrorCode.FORBIDDEN else 400


_MESSAGES = {
    ErrorCode.UNKNOWN_TRANSPORT: "Transport unknown",
    ErrorCode.UNKNOWN_SID: "Session ID unknown",
    ErrorCode.BAD_HANDSHAKE_METHOD: "Bad handshake method",
    ErrorCode.BAD_REQUEST: "Bad request",
    ErrorCode.FORBIDDEN: "Forbidden",
    ErrorCode.UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}


def error_body(code: ErrorCode) -> bytes:
    """The compact JSON body Node's engine.io sends for ``code``."""
    return json.dumps({"code": int(code), "message": code.message}, separators=(",", ":")).encode()


class CloseReason(StrEnum):
    """Why a session closed; the value is the word Engine.IO peers use (``send queue full`` is
    this server's own: a client that does not read what it is sent)."""

    TRANSPORT_CLOSE = "transport close"
    TRANSPORT_ERROR = "transport error"
    PARSE_ERROR = "parse error"
    PING_TIMEOUT = "ping timeout"
    FORCED_CLOSE = "forced close"
    SERVER_SHUTTING_DOWN = "server shutting down"
    SEND_QUEUE_FULL = "send queue full"
