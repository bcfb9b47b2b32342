"""The plain request/response values the transport layer exchanges with the Engine.IO server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from .errors import ErrorCode, error_body

__all__ = ["HttpRequest", "HttpResponse", "error_response", "parse_query"]

_SCHEMES = {"ws": "http", "wss": "https"}


def parse_query(query: str) -> dict[str, str]:
    """``dict(parse_qsl(query))``, without its per-pair decoding when nothing is escaped."""
    if "%" in query or "+" in query:
        return dict(parse_qsl(query))
    # As parse_qsl: pairs without a value are dropped, and a later duplicate wins.
    parsed: dict[str, str] = {}
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if value:
            parsed[name] = value
    return parsed


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What the server needs of one HTTP request or WebSocket handshake."""

    method: str
    query: dict[str, str]
    headers: dict[str, str]
    scheme: str = "http"
    body: bytes = b""
    body_too_large: bool = False
    context: Any = None

    @classmethod
    def from_asgi(
        cls, scope: dict[str, Any], body: bytes = b"", *, body_too_large: bool = False
    ) -> HttpRequest:
        """Build a request from an ASGI ``http`` or ``websocket`` scope."""
        # ASGI servers give header names in lower case (Channels' middlewares rely on it too).
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", ())
        }
        scheme = scope.get("scheme", "http")
        return cls(
            method=scope.get("method", "GET"),
            query=parse_query(scope.get("query_string", b"").decode("latin-1")),
            headers=headers,
            scheme=_SCHEMES.get(scheme, scheme),
            body=body,
            body_too_large=body_too_large,
            context=scope,
        )


@dataclass(slots=True)
class HttpResponse:
    """A complete HTTP response."""

    status: int
    body: bytes
    content_type: bytes = b"text/plain; charset=UTF-8"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def asgi_headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"content-type", self.content_type), *self.headers]


def error_response(code: ErrorCode) -> HttpResponse:
    """The JSON error answer for ``code``, with its HTTP status."""
    return HttpResponse(code.http_status, error_body(code), b"application/json")
