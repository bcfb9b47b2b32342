"""Acknowledgements with the official client: client->server, server->client (callback and
``emit_with_ack`` with timeouts), and broadcasts with acknowledgements."""

from __future__ import annotations

import pytest

from tests.socketio.sio import TRANSPORTS, scenario
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.node


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_client_to_server_acks_carry_every_argument(
    protocol_server: ServerProcess, transports: str
) -> None:
    result = scenario("sio_acks.js", protocol_server, "client-to-server", transports=transports)
    assert result == {
        "none": [],
        "one": ["one"],
        "many": [1, None, False, {"deep": [{"x": "y"}]}],
    }


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_server_to_client_acks(features_server: ServerProcess, transports: str) -> None:
    result = scenario("sio_acks.js", features_server, "server-to-client", transports=transports)
    asks = result["asks"]
    # emit_with_ack: one argument as is, several as a tuple (a JSON array), none as None.
    assert asks["many"] == {"result": ["a", 1, {"b": [2]}]}
    assert asks["one"] == {"result": "single"}
    assert asks["none"] == {"result": None}
    assert asks["no-timeout"] == {"result": "waits"}
    # emit(callback=...): async callbacks on the loop, plain def ones off it.
    assert asks["callback"] == {"callback": ["x", {"y": 2}], "on_loop": True}
    assert asks["sync-callback"] == {"callback": ["z"], "on_loop": False}
    assert asks["late"] == {
        "error": "AckTimeoutError",
        "message": "no acknowledgement for 'q-late' within 0.3s",
    }
    assert asks["never"] == {
        "error": "AckTimeoutError",
        "message": "no acknowledgement for 'q-never' within 0.3s",
    }
    assert result["still"] == ["still"]
    assert result["connected"] is True


def test_awaited_ack_of_a_client_that_disconnects(features_server: ServerProcess) -> None:
    result = scenario("sio_acks.js", features_server, "ack-disconnected")
    assert result["reason"] == "io client disconnect"
    [ask, disconnect] = result["report"].values()
    assert ask == {"error": "DisconnectedError", "message": "client namespace disconnect"}
    assert disconnect == "client namespace disconnect"


def _responses(*names: str) -> list[dict[str, str]]:
    return [{"name": name, "question": "q?"} for name in sorted(names)]


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_broadcast_ack_gathers_every_response(
    features_server: ServerProcess, transports: str
) -> None:
    args = {"names": ["a", "b", "c"], "rooms": {}, "spec": {"timeout": 3000}}
    result = scenario("sio_acks.js", features_server, "broadcast", args, transports)
    # The asker is a socket of the namespace too.
    assert result["outcome"] == {"responses": _responses("a", "b", "c")}
    assert result["polled"] == {"a": 1, "b": 1, "c": 1}
    assert result["took_ms"] < 2000  # answered as soon as all were in, not at the timeout
    assert result["connected"] == [True, True, True]


def test_broadcast_ack_to_a_room_and_from_a_socket(features_server: ServerProcess) -> None:
    rooms = {"a": ["r"], "b": ["r"], "c": []}
    to_room = scenario(
        "sio_acks.js",
        features_server,
        "broadcast",
        {
            "names": ["a", "b", "c"],
            "rooms": rooms,
            "spec": {"timeout": 3000, "to": "r"},
            "asker": 2,
        },
    )
    assert to_room["outcome"] == {"responses": _responses("a", "b")}
    assert to_room["polled"] == {"a": 1, "b": 1, "c": 0}
    from_socket = scenario(
        "sio_acks.js",
        features_server,
        "broadcast",
        {"names": ["a", "b", "c"], "rooms": {}, "spec": {"timeout": 3000, "from": "socket"}},
    )
    assert from_socket["outcome"] == {"responses": _responses("b", "c")}
    assert from_socket["polled"] == {"a": 0, "b": 1, "c": 1}


def test_broadcast_ack_to_nobody_returns_at_once(features_server: ServerProcess) -> None:
    args = {"names": ["a"], "rooms": {}, "spec": {"timeout": 3000, "to": "empty-room"}}
    result = scenario("sio_acks.js", features_server, "broadcast", args)
    assert result["outcome"] == {"responses": []}
    assert result["took_ms"] < 1000
    assert result["polled"] == {"a": 0}


def test_broadcast_ack_timeout_keeps_the_responses_that_came(
    features_server: ServerProcess,
) -> None:
    args = {"names": ["a", "b", "late1", "mute1"], "rooms": {}, "spec": {"timeout": 500}}
    result = scenario("sio_acks.js", features_server, "broadcast", args)
    outcome = result["outcome"]
    assert outcome["error"] == "AckTimeoutError"
    assert outcome["message"] == "not every socket acknowledged 'poll' in time"
    assert sorted(outcome["responses"], key=lambda r: r["name"]) == _responses("a", "b")
    assert 400 <= result["took_ms"] < 1500
    assert result["polled"] == {"a": 1, "b": 1, "late1": 1, "mute1": 1}
    assert result["connected"] == [True, True, True, True]


def test_broadcast_ack_needs_a_timeout(features_server: ServerProcess) -> None:
    args = {"names": ["a"], "rooms": {}, "spec": {}}
    result = scenario("sio_acks.js", features_server, "broadcast", args)
    assert result["outcome"] == {
        "error": "ValueError",
        "message": "broadcast acknowledgements need a timeout: use .timeout(ms)",
    }
    assert result["polled"] == {"a": 0}
