"""``channels_sio.emit`` from a plain ``def`` view and ``channels_sio.async_emit`` from an async
view (tests/socketio/feature_urls.py) reach exactly the sockets they name, through the
channel layer and this process's node."""

from __future__ import annotations

from typing import Any

import pytest

from tests.socketio.sio import b, scenario
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.node

OK = {"status": 200, "body": {"ok": True}}

# Clients: F1 (/features, room news), F2 (/features, room other), F3 (/features), M ("/", news).
STEPS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (
        {"event": "news", "args": [{"n": 1}, "two"], "to": "news", "namespace": "/features"},
        {"F1": [["news", {"n": 1}, "two"]]},
    ),
    (
        {"event": "news", "args": [2], "to": "news"},  # the default namespace, "/"
        {"M": [["news", 2]]},
    ),
    (
        {"event": "news", "args": [3], "to": ["news", "other"], "namespace": "/features"},
        {"F1": [["news", 3]], "F2": [["news", 3]]},
    ),
    (
        {"event": "news", "args": [4], "except": "news", "namespace": "/features"},
        {"F2": [["news", 4]], "F3": [["news", 4]]},
    ),
    (
        {"event": "news", "args": [], "namespace": "/features"},
        {"F1": [["news"]], "F2": [["news"]], "F3": [["news"]]},
    ),
    (
        {
            "event": "news",
            "args": [b(b"\x00\x01"), {"x": b(b"yz")}],
            "to": "other",
            "namespace": "/features",
        },
        {"F2": [["news", b(b"\x00\x01"), {"x": b(b"yz")}]]},
    ),
    ({"event": "news", "args": [5], "to": "nobody", "namespace": "/features"}, {}),
]

INVALID: list[tuple[dict[str, Any], str]] = [
    ({"event": "connect", "args": [1]}, "'connect' is a reserved event name"),
    ({"event": "disconnect", "namespace": "/features"}, "'disconnect' is a reserved event name"),
    ({"event": 5, "to": "news"}, "event names must be strings, not int"),
]


@pytest.mark.parametrize("view", ["emit-sync", "emit-async"])
@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_emit_from_django_reaches_exactly_its_sockets(
    features_server: ServerProcess, view: str, transports: str
) -> None:
    steps = [{"view": view, "body": body} for body, _ in STEPS]
    results = scenario("sio_django_emit.js", features_server, "steps", {"steps": steps}, transports)
    for (body, expected), result in zip(STEPS, results, strict=True):
        assert result["answer"] == OK, body
        assert result["got"] == expected, body


@pytest.mark.parametrize("view", ["emit-sync", "emit-async"])
def test_emit_from_django_with_an_invalid_event_name_raises(
    features_server: ServerProcess, view: str
) -> None:
    steps = [{"view": view, "body": body} for body, _ in INVALID]
    results = scenario("sio_django_emit.js", features_server, "steps", {"steps": steps})
    for (body, message), result in zip(INVALID, results, strict=True):
        assert result["answer"] == {"status": 400, "body": {"error": message}}, body
        assert result["got"] == {}, body
