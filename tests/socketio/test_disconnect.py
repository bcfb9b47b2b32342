"""Disconnections with the official client, and the reason each side gives (the server's as
its disconnect handler got it, exactly once)."""

from __future__ import annotations

import pytest

from tests.socketio.sio import scenario
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.node


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_client_namespace_disconnect(features_server: ServerProcess, transports: str) -> None:
    result = scenario("sio_disconnect.js", features_server, "client-namespace", None, transports)
    assert result["client"] == "io client disconnect"
    assert result["server"] == [["client namespace disconnect", 1]]
    assert result["after"] == ["still"]
    assert result["connected"] == [False, True]


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_server_namespace_disconnect(features_server: ServerProcess, transports: str) -> None:
    result = scenario("sio_disconnect.js", features_server, "server-namespace", None, transports)
    assert result["client"] == "io server disconnect"
    assert result["server"] == [["server namespace disconnect", 1]]
    assert result["after"] == ["still"]
    assert result["connected"] == [False, True]


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_forced_server_close(features_server: ServerProcess, transports: str) -> None:
    result = scenario("sio_disconnect.js", features_server, "forced-server-close", None, transports)
    # As socket.io: the client is told it was disconnected by the server, so it does not
    # reconnect (a bare "transport close" would make it come back at once).
    assert result["client"] == ["io server disconnect", "io server disconnect"]
    assert result["reconnected"] == [False, False]
    assert result["server"] == [["forced server close", 1], ["forced server close", 1]]


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_transport_close(features_server: ServerProcess, transports: str) -> None:
    result = scenario("sio_disconnect.js", features_server, "transport-close", None, transports)
    assert result["server"] == [["transport close", 1], ["transport close", 1]]


def test_ping_timeout(features_server: ServerProcess) -> None:
    result = scenario("sio_disconnect.js", features_server, "ping-timeout")
    assert result["closed"] is True
    # ping_interval 300 ms + ping_timeout 200 ms
    assert 400 <= result["afterMs"] < 1500
    assert result["server"] == [["ping timeout", 1]]
