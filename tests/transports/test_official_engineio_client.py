"""The official engine.io-client (npm) against the echo server, on every transport path."""

from __future__ import annotations

import json

import pytest

from tests.support.node import run_node
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.node

MESSAGES = ["hello", {"binary": "00ff10"}, "héllo wörld ✓", {"binary": ""}, "", "x" * 5000]


@pytest.mark.parametrize(
    ("transports", "wait_upgrade", "final"),
    [
        ("polling", "0", "polling"),
        ("websocket", "0", "websocket"),
        ("polling,websocket", "1", "websocket"),
        # Messages sent while the upgrade runs: echoed on whichever transport is current.
        ("polling,websocket", "0", None),
    ],
)
def test_echo_text_and_binary(
    protocol_server: ServerProcess, transports: str, wait_upgrade: str, final: str | None
) -> None:
    messages = MESSAGES
    if protocol_server.kind == "daphne" and transports != "polling":
        # daphne never sends an empty WebSocket frame (it skips falsy bytes): docs/engineio.md.
        messages = [m for m in MESSAGES if m != {"binary": ""}]
    result = run_node(
        "eio_echo.js",
        protocol_server.url,
        "/engine.io/",
        transports,
        json.dumps(messages),
        wait_upgrade,
    )
    assert result["end"] == "done", result
    assert result["received"] == messages
    if final is not None:
        assert result["transport"] == final
    handshake = result["handshake"]
    assert handshake["pingInterval"] == 300
    assert handshake["pingTimeout"] == 200
    assert handshake["maxPayload"] == 1_000_000
    expected_upgrades = ["websocket"] if transports.startswith("polling") else []
    assert handshake["upgrades"] == expected_upgrades
    if wait_upgrade == "1":
        assert result["upgraded"] == "websocket"
