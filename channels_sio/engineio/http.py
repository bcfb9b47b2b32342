"""The plain request/response values the transport layer exchanges with the Engine.IO server."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from .errors import ErrorCode, error_body

__all__ = ["AsgiHeaders", "HttpRequest", "HttpResponse", "error_response", "parse_query"]

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


class AsgiHeaders(Mapping[str, str]):
    """An ASGI scope's headers as a read-only mapping, decoded when read.

    A poll reads one or two headers (``origin``, ``host``) of the ten or more a browser sends,
    so none is decoded up front. Names are lower case, as ASGI servers give them; when a name
    repeats, the last value wins, as in a dict built from the list.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: Sequence[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def get(self, name: str, default: Any = None) -> Any:
        key = name.encode("latin-1")
        for raw_name, value in reversed(self._raw):
            if raw_name == key:
                return value.decode("latin-1")
        return default

    def __getitem__(self, name: str) -> str:
        value: str | None = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter({name.decode("latin-1"): None for name, _ in self._raw})

    def __len__(self) -> int:
        return len({name for name, _ in self._raw})


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What the server needs of one HTTP request or WebSocket handshake."""

    method: str
    query: dict[str, str]
    headers: Mapping[str, str]
    scheme: str = "http"
    body: bytes = b""
    body_too_large: bool = False
    context: Any = None
    #: The peer's address (the ASGI scope's ``client`` host; the ASGI server's proxy-header
    #: options decide whether that is a proxy's or the client's), or None when unknown.
    client: str | None = None

    @classmethod
    def from_asgi(
        cls, scope: dict[str, Any], body: bytes = b"", *, body_too_large: bool = False
    ) -> HttpRequest:
        """Build a request from an ASGI ``http`` or ``websocket`` scope."""
        scheme = scope.get("scheme", "http")
        peer = scope.get("client")
        return cls(
            method=scope.get("method", "GET"),
            query=parse_query(scope.get("query_string", b"").decode("latin-1")),
            headers=AsgiHeaders(scope.get("headers", ())),
            scheme=_SCHEMES.get(scheme, scheme),
            body=body,
            body_too_large=body_too_large,
            context=scope,
            client=peer[0] if peer else None,
        )


@dataclass(slots=True)
class HttpResponse:
    """A complete HTTP response."""

    status: int
    body: bytes
    content_type: bytes = b"text/plain; charset=UTF-8"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def asgi_headers(self) -> list[tuple[bytes, bytes]]:
        if self.status == 204:  # no content, and so no Content-Length (RFC 9110, 8.6)
            return [(b"content-type", self.content_type), *self.headers]
        # With its length declared, the body goes out as it is rather than in chunked framing
        # that both the server and the client would have to write and read.
        return [
            (b"content-type", self.content_type),
            (b"content-length", str(len(self.body)).encode()),
            *self.headers,
        ]


def error_response(code: ErrorCode) -> HttpResponse:
    """The JSON error answer for ``code``, with its HTTP status."""
    return HttpResponse(code.http_status, error_body(code), b"application/json")
