"""The request values the transports hand to the Engine.IO server."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from channels_sio.engineio.http import HttpRequest, parse_query


@pytest.mark.parametrize(
    "query",
    [
        "EIO=4&transport=polling&t=PabC1&sid=x_y-z",
        "a=&b=1",
        "a&b=2",
        "=3&x=1",
        "a=1&a=2",
        "",
        "&&",
        "a==b",
        "sid=a%2Fb&t=1",
        "name=two+words",
    ],
)
def test_parse_query_reads_as_parse_qsl(query: str) -> None:
    assert parse_query(query) == dict(parse_qsl(query))


def test_from_asgi() -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "https",
        "query_string": b"EIO=4&transport=polling&sid=abc",
        "headers": [(b"origin", b"https://example.com"), (b"host", b"example.com")],
    }
    request = HttpRequest.from_asgi(scope, b"4hi")
    assert request.method == "POST"
    assert request.query == {"EIO": "4", "transport": "polling", "sid": "abc"}
    assert request.headers == {"origin": "https://example.com", "host": "example.com"}
    assert request.body == b"4hi"
    assert request.context is scope
    assert HttpRequest.from_asgi({**scope, "type": "websocket", "scheme": "wss"}).scheme == "https"
