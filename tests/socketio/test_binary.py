"""Binary data with the official client: bytes (Buffers) anywhere in nested arguments, both
ways, in events and acknowledgements, with several attachments in one packet."""

from __future__ import annotations

import pytest

from tests.socketio.sio import TRANSPORTS, b, scenario
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.node

# Ten attachments in one packet: max_attachments (10) is a limit, not an off-by-one.
PAYLOAD = [
    b(b"\x00\x01\x02\xff"),
    {"nested": [b(b"abc"), {"deeper": b(bytes(range(256)))}], "text": "x", "n": 1.5},
    [b(b"\x10"), "mixed", None, [b(b"\x20\x21")]],
    "plain",
    {str(i): b(bytes([i]) * (i + 1)) for i in range(4)},
]


def payload_for(transports: str) -> list[object]:
    """PAYLOAD and a tenth attachment: the empty buffer over polling only (daphne never
    sends an empty WebSocket frame: docs/engineio.md)."""
    return [*PAYLOAD, b(b"" if transports == "polling" else b"\x7f")]


def types_of(value: object) -> object:
    if isinstance(value, dict):
        if list(value) == ["$bin"]:
            return "bytes"
        return {key: types_of(item) for key, item in value.items()}
    if isinstance(value, list):
        return [types_of(item) for item in value]
    return {str: "str", int: "int", float: "float", type(None): "NoneType"}[type(value)]


def test_payload_has_ten_attachments() -> None:
    assert str(payload_for("polling")).count("$bin") == 10
    assert str(payload_for("websocket")).count("$bin") == 10


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_binary_echo_in_event_and_ack(features_server: ServerProcess, transports: str) -> None:
    payload = payload_for(transports)
    result = scenario("sio_binary.js", features_server, "echo", {"payload": payload}, transports)
    assert result["ack"] == payload
    assert result["back"] == payload
    assert result["received"] == [["binary-back", *payload]]
    # On the server, every attachment is bytes again, in place.
    assert result["types"] == types_of(payload)


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_binary_made_on_the_server(features_server: ServerProcess, transports: str) -> None:
    result = scenario("sio_binary.js", features_server, "make", transports=transports)
    sample = {
        "one": b(b"\x00\x01\x02"),
        "nested": [b(b"\xff\xff\xff"), {"deep": b(b"xyz"), "text": "not binary"}],
        "number": 7,
    }
    assert result["ack"] == [sample, b(b"\x10\x20")]
    assert result["made"] == [sample, b(b"\x10\x20")]
    assert result["received"] == [["binary-made", sample, b(b"\x10\x20")]]


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_binary_in_a_client_acknowledgement(
    features_server: ServerProcess, transports: str
) -> None:
    payload = PAYLOAD  # nine attachments, and the client adds a tenth
    result = scenario(
        "sio_binary.js", features_server, "client-ack", {"payload": payload}, transports
    )
    assert result["outcome"] == {"result": [*payload, b(b"from client")]}


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_binary_broadcast(features_server: ServerProcess, transports: str) -> None:
    payload = payload_for(transports)
    result = scenario(
        "sio_binary.js", features_server, "broadcast", {"payload": payload}, transports
    )
    member = [["bin-news", *payload]]
    assert result["received"] == [member, member, []]
