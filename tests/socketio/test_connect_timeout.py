"""connect_timeout (1000 ms in settings_protocol): an Engine.IO session that joins no namespace
in time is closed; one that joined stays."""

from __future__ import annotations

import pytest

from tests.socketio.sio import scenario
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.node


def test_raw_session_that_never_joins_is_closed(features_server: ServerProcess) -> None:
    result = scenario("sio_raw.js", features_server, "connect-timeout-raw")
    assert result["closed"] is True
    # It answered every ping (ping_interval is 300 ms), so only connect_timeout closed it.
    assert result["pongs"] >= 2
    assert 900 <= result["afterMs"] < 1600
    assert result["handshake"]["pingInterval"] == 300


def test_refused_namespace_does_not_count_as_joined(features_server: ServerProcess) -> None:
    result = scenario("sio_raw.js", features_server, "connect-timeout-raw", {"join": "/guarded"})
    assert result["reply"] == (
        '44/guarded,{"message":"unauthorized","data":{"reason":"bad token","token":null}}'
    )
    assert result["closed"] is True
    assert 900 <= result["afterMs"] < 1600


def test_session_that_joined_stays_open(features_server: ServerProcess) -> None:
    result = scenario("sio_raw.js", features_server, "connect-timeout-joined")
    assert result["closed"] is False
    assert result["pongs"] >= 4  # past the timeout, heartbeats going on


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_official_engineio_client_that_never_joins_is_closed(
    features_server: ServerProcess, transports: str
) -> None:
    result = scenario("sio_raw.js", features_server, "connect-timeout-eio", transports=transports)
    assert result["reason"] == "transport close"
    assert 900 <= result["afterMs"] < 1600
