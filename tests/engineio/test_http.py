"""The request values the transports hand to the Engine.IO server."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from channels_sio.engineio.http import AsgiHeaders, HttpRequest, parse_query


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
    assert request.client is None  # no "client" in the scope (a Unix socket, say)
    assert HttpRequest.from_asgi({**scope, "client": ["10.0.0.7", 50123]}).client == "10.0.0.7"


def test_asgi_headers_read_as_the_dict_of_the_list() -> None:
    raw = [
        (b"host", b"a"),
        (b"x-twice", b"1"),
        (b"origin", b"https://\xe9.com"),
        (b"x-twice", b"2"),
    ]
    headers = AsgiHeaders(raw)
    as_dict = {name.decode("latin-1"): value.decode("latin-1") for name, value in raw}
    assert dict(headers) == as_dict
    assert len(headers) == 3
    assert headers["x-twice"] == "2"
    assert headers.get("origin") == "https://é.com"
    assert headers.get("cookie") is None
    assert headers.get("cookie", "") == ""
    assert "host" in headers
    with pytest.raises(KeyError):
        headers["cookie"]
