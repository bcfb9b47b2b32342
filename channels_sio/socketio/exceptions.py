"""Errors of the Socket.IO layer, rooted in one base class."""

from __future__ import annotations

from typing import Any

__all__ = ["AckTimeoutError", "ConnectionRefusedError", "DisconnectedError", "SocketIOError"]


class SocketIOError(Exception):
    """Base class of channels_sio's Socket.IO errors."""


class ConnectionRefusedError(SocketIOError):
    """Raise in a middleware or connect handler to refuse a connection.

    The client receives CONNECT_ERROR ``{"message": message, "data": data}`` (``data`` left out
    when None), which socket.io-client surfaces as ``connect_error`` with ``err.data``.
    """

    def __init__(self, message: str = "Connection rejected by server", data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def payload(self) -> dict[str, Any]:
        """The CONNECT_ERROR payload."""
        body: dict[str, Any] = {"message": self.message}
        if self.data is not None:
            body["data"] = self.data
        return body


class AckTimeoutError(SocketIOError, TimeoutError):
    """Not every acknowledgement arrived in time. ``responses`` holds those that did."""

    def __init__(self, message: str, responses: list[Any] | None = None) -> None:
        super().__init__(message)
        self.responses = responses or []


class DisconnectedError(SocketIOError):
    """The socket disconnected while an acknowledgement was awaited."""
