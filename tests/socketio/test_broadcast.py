"""Broadcasts with the official client: every operator flag, each recipient exactly once,
nobody else (other namespaces on the same connection included)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.socketio.sio import scenario
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.node

# Clients of the "cast" scenario: A (/features, room r1) shares its connection with A_custom
# (/custom); B (/features, r1 and r2); C (/features, r2); D (/features, no room); O ("/",
# room lobby). Each cast below: who sends it, the operator, and exactly who gets it.
CASTS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("namespace", {"event": "news", "args": ["all"]}, ["A", "B", "C", "D"]),
    ("to-room", {"to": "r1", "event": "news", "args": [1]}, ["A", "B"]),
    ("to-rooms", {"to": ["r1", "r2"], "event": "news", "args": [2]}, ["A", "B", "C"]),
    ("to-iterable", {"to_many": ["r1", "r2"], "event": "news", "args": [3]}, ["A", "B", "C"]),
    ("to-except", {"to": "r1", "except": "r2", "event": "news", "args": [4]}, ["A"]),
    ("except", {"except": "r1", "event": "news", "args": [5]}, ["C", "D"]),
    ("except-rooms", {"except": ["r1", "r2"], "event": "news", "args": [6]}, ["D"]),
    ("to-socket-id", {"to": "$C", "event": "news", "args": [7]}, ["C"]),
    ("to-nobody", {"to": "nobody", "event": "news", "args": [8]}, []),
    ("local", {"local": True, "event": "news", "args": [9]}, ["A", "B", "C", "D"]),
    ("compress", {"compress": False, "to": "r2", "event": "news", "args": [10]}, ["B", "C"]),
    ("other-namespace", {"namespace": "/custom", "event": "news", "args": [11]}, ["A_custom"]),
    ("main-namespace", {"from": "sio.to", "to": "lobby", "event": "news", "args": [12]}, ["O"]),
]
# socket.broadcast / socket.to(...): sent by A, never back to A.
SOCKET_CASTS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("broadcast", {"from": "socket", "event": "news", "args": ["b"]}, ["B", "C", "D"]),
    ("socket-to", {"from": "socket.to", "to": "r1", "event": "news", "args": ["c"]}, ["B"]),
    (
        "socket-to-except",
        {"from": "socket.to", "to": ["r1", "r2"], "except": "r2", "event": "news", "args": []},
        [],
    ),
    (
        "socket-broadcast-except",
        {"from": "socket", "except": "r2", "event": "news", "args": ["d"]},
        ["D"],
    ),
]


def _run(server: ServerProcess, transports: str, casts: list[dict[str, Any]]) -> Any:
    return scenario("sio_rooms.js", server, "cast", {"casts": casts}, transports)


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_broadcast_operators(features_server: ServerProcess, transports: str) -> None:
    casts = [{"label": label, "spec": spec} for label, spec, _ in CASTS]
    casts += [{"label": label, "spec": spec, "sender": "A"} for label, spec, _ in SOCKET_CASTS]
    result = _run(features_server, transports, casts)
    for label, spec, recipients in CASTS + SOCKET_CASTS:
        assert result[label]["sent"] == "sent", label
        expected = {name: [[spec["event"], *spec["args"]]] for name in recipients}
        assert result[label]["got"] == expected, label


def test_volatile_broadcast_reaches_writable_sockets(features_server: ServerProcess) -> None:
    # Over WebSocket a transport is always writable: a volatile packet is never dropped.
    # (Dropping is tested over raw polling in test_rooms.py.)
    casts = [
        {"label": "volatile", "spec": {"volatile": True, "event": "v", "args": [1]}},
        {"label": "volatile-to", "spec": {"volatile": True, "to": "r2", "event": "v", "args": [2]}},
    ]
    result = _run(features_server, "websocket", casts)
    assert result["volatile"]["got"] == {name: [["v", 1]] for name in "ABCD"}
    assert result["volatile-to"]["got"] == {"B": [["v", 2]], "C": [["v", 2]]}


def test_broadcast_after_leaving_and_joining(features_server: ServerProcess) -> None:
    casts = [
        {
            "label": "after-leave",
            "before": [["B", "leave", "r1"]],
            "spec": {"to": "r1", "event": "news", "args": ["x"]},
        },
        {
            "label": "after-join",
            "before": [["D", "join", ["r1", "r9"]]],
            "spec": {"to": ["r1", "r9"], "event": "news", "args": ["y"]},
        },
    ]
    result = _run(features_server, "websocket", casts)
    assert result["after-leave"]["got"] == {"A": [["news", "x"]]}
    assert result["after-join"]["got"] == {"A": [["news", "y"]], "D": [["news", "y"]]}
