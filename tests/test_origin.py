"""channels_sio.origin.own_origin: a request's own origin, as Django's get_host() and scheme
would give it (ALLOWED_HOSTS, USE_X_FORWARDED_HOST, SECURE_PROXY_SSL_HEADER)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from channels_sio.engineio import HttpRequest
from channels_sio.origin import own_origin

HOSTS = ["example.com", ".example.org", "127.0.0.1", "[::1]"]


def request(scheme: str = "http", **headers: str) -> HttpRequest:
    scope: dict[str, Any] = {
        "type": "http",
        "scheme": scheme,
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }
    return HttpRequest.from_asgi(scope)


@override_settings(ALLOWED_HOSTS=HOSTS)
@pytest.mark.parametrize(
    ("scheme", "host", "origin"),
    [
        ("http", "example.com", "http://example.com"),
        ("https", "example.com", "https://example.com"),
        ("wss", "example.com", "https://example.com"),
        ("http", "EXAMPLE.com:8000", "http://example.com:8000"),
        ("http", "chat.example.org", "http://chat.example.org"),
        ("http", "127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http", "[::1]:8000", "http://[::1]:8000"),
        # Browsers leave the default port out of Origin.
        ("http", "example.com:80", "http://example.com"),
        ("https", "example.com:443", "https://example.com"),
        ("http", "example.com:443", "http://example.com:443"),
    ],
)
def test_the_host_in_allowed_hosts_makes_the_origin(scheme: str, host: str, origin: str) -> None:
    assert own_origin(request(scheme, host=host)) == origin


@override_settings(ALLOWED_HOSTS=HOSTS)
@pytest.mark.parametrize(
    "host", ["evil.example", "example.com.evil.example", "localhost:8000", "", "bad host"]
)
def test_a_host_not_in_allowed_hosts_has_no_origin(host: str) -> None:
    # DNS rebinding: a page of evil.example resolved to this server is its own origin by Host.
    assert own_origin(request(host=host)) is None


@override_settings(ALLOWED_HOSTS=HOSTS)
def test_no_host_header_has_no_origin() -> None:
    assert own_origin(request()) is None


@override_settings(ALLOWED_HOSTS=[], DEBUG=True)
def test_debug_with_no_allowed_hosts_allows_localhost_as_django_does() -> None:
    assert own_origin(request(host="localhost:8000")) == "http://localhost:8000"
    assert own_origin(request(host="127.0.0.1:8000")) == "http://127.0.0.1:8000"
    assert own_origin(request(host="example.com")) is None


@override_settings(ALLOWED_HOSTS=[], DEBUG=False)
def test_no_allowed_hosts_without_debug_allows_nothing() -> None:
    assert own_origin(request(host="localhost:8000")) is None


@override_settings(ALLOWED_HOSTS=["*"])
def test_a_wildcard_allows_any_host() -> None:
    assert own_origin(request(host="anything.example")) == "http://anything.example"


@override_settings(ALLOWED_HOSTS=HOSTS)
def test_forwarded_headers_are_ignored_unless_django_trusts_them() -> None:
    forwarded = request(
        host="127.0.0.1:8000", x_forwarded_host="example.com", x_forwarded_proto="https"
    )
    assert own_origin(forwarded) == "http://127.0.0.1:8000"


@override_settings(
    ALLOWED_HOSTS=HOSTS,
    USE_X_FORWARDED_HOST=True,
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)
def test_forwarded_headers_count_where_django_trusts_them() -> None:
    forwarded = request(
        host="127.0.0.1:8000", x_forwarded_host="example.com", x_forwarded_proto="https"
    )
    assert own_origin(forwarded) == "https://example.com"
    # The first of a list, as Django reads it; any other value is plain http.
    assert own_origin(request("https", host="example.com", x_forwarded_proto="https, http")) == (
        "https://example.com"
    )
    assert own_origin(request("https", host="example.com", x_forwarded_proto="http")) == (
        "http://example.com"
    )
    # Without the headers, the request's own.
    assert own_origin(request("https", host="example.com")) == "https://example.com"
    # A forwarded host must be allowed too.
    assert own_origin(request(host="example.com", x_forwarded_host="evil.example")) is None
