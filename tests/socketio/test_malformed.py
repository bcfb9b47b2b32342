"""Malformed Socket.IO packets from a client close only that client's connection (the server
gives its sockets "parse error"); another official client keeps working, and the server keeps
taking connections."""

from __future__ import annotations

import pytest

from tests.socketio.sio import b, scenario
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.node

PLACEHOLDER = '{"_placeholder":true,"num":0}'

MALFORMED = {
    "unknown-type": "49/features,",
    "unknown-type-7": '47/features,["x"]',
    "empty": "4",
    "bad-json": '42/features,["sync-echo",',
    "bad-json-trailing": '42/features,["sync-echo"]]',
    "event-object": '42/features,{"event":"sync-echo"}',
    "event-string": '42/features,"sync-echo"',
    "event-empty-array": "42/features,[]",
    "event-no-data": "42/features,",
    "reserved-connect": '42/features,["connect"]',
    "reserved-disconnect": '42/features,["disconnect"]',
    "reserved-disconnecting": '42/features,["disconnecting"]',
    "name-number": "42/features,[1,2]",
    "name-null": "42/features,[null]",
    "ack-id-too-long": '42/features,1234567890123456["sync-echo"]',
    "ack-without-id": '43/features,["x"]',
    "ack-not-array": '43/features,1{"x":1}',
    "connect-error-from-client": '44/features,{"message":"x"}',
    "disconnect-with-data": '41/features,["x"]',
    "connect-not-object": '40/custom,["x"]',
    "too-many-attachments": f'4511-/features,["sync-echo",{PLACEHOLDER}]',
    "zero-attachments": f'450-/features,["sync-echo",{PLACEHOLDER}]',
    "attachment-count-not-digits": f'45x-/features,["sync-echo",{PLACEHOLDER}]',
}


@pytest.mark.parametrize("frame", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_packet_closes_only_that_connection(
    features_server: ServerProcess, frame: str
) -> None:
    result = scenario(
        "sio_raw.js", features_server, "malformed", {"frames": [frame], "closes": True}
    )
    _assert_closed_alone(result)


# Sequences: each frame alone is fine, the combination is not.
SEQUENCES = {
    "binary-without-announcement": [b(b"\x01\x02")],
    "text-while-attachments-expected": [
        f'451-/features,["sync-echo",{PLACEHOLDER}]',
        '42/features,["sync-echo"]',
    ],
    "placeholder-num-out-of-range": [
        '451-/features,["sync-echo",{"_placeholder":true,"num":1}]',
        b(b"\x01"),
    ],
    "placeholder-num-not-int": [
        '451-/features,["sync-echo",{"_placeholder":true,"num":"0"}]',
        b(b"\x01"),
    ],
    "binary-event-reserved-name": [
        f'451-/features,["disconnect",{PLACEHOLDER}]',
        b(b"\x01"),
    ],
}


@pytest.mark.parametrize("frames", SEQUENCES.values(), ids=SEQUENCES.keys())
def test_malformed_sequence_closes_only_that_connection(
    features_server: ServerProcess, frames: list[object]
) -> None:
    result = scenario(
        "sio_raw.js", features_server, "malformed", {"frames": frames, "closes": True}
    )
    _assert_closed_alone(result)


def _assert_closed_alone(result: dict[str, object]) -> None:
    assert result["closed"] is True, result
    assert isinstance(result["afterMs"], int)
    assert result["afterMs"] < 400, result  # at once, not by a heartbeat or connect timeout
    assert result["leftover"] == [], result  # nothing answered the malformed packet
    assert result["serverReason"] == "parse error"
    assert result["still"] == ["still"]
    assert result["watcherConnected"] is True
    assert result["freshAck"] == ["fresh"]


# The harness itself must not close a well-behaved raw client: these stay open.
VALID = {
    "event": ['42/features,["sync-echo",1]'],
    "event-with-ack": ['42/features,7["sync-echo",1]'],
    "ten-attachments": [
        '4510-/features,["sync-echo",'
        + ",".join(f'{{"_placeholder":true,"num":{i}}}' for i in range(10))
        + "]",
        *[b(bytes([i])) for i in range(10)],
    ],
    "unknown-ack-id": ['43/features,99["late"]'],
    "other-namespace": ['42/nowhere,["x"]'],
}


@pytest.mark.parametrize("frames", VALID.values(), ids=VALID.keys())
def test_valid_frames_keep_the_connection(
    features_server: ServerProcess, frames: list[object]
) -> None:
    result = scenario(
        "sio_raw.js", features_server, "malformed", {"frames": frames, "closes": False}
    )
    assert result["closed"] is False, result
    assert result["serverReason"] is None
    assert result["still"] == ["still"]
