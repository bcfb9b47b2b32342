"""Connecting with the official socket.io-client: the reference configuration on every transport
path, one connection for several namespaces, and the wire order of the CONNECT reply."""

from __future__ import annotations

import json
import re

import pytest

from tests.socketio.sio import TRANSPORTS, scenario
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.node

SID = re.compile(r"^[A-Za-z0-9_-]{22}$")  # 16 random bytes

BACK = [["hello"], [1, "two", {"three": [3, None, True]}], [], [{"é": "✓"}]]


@pytest.mark.parametrize("transports", TRANSPORTS)
@pytest.mark.parametrize("auth", [None, {"token": "abc", "nested": {"n": [1, 2]}}])
def test_reference(protocol_server: ServerProcess, transports: str, auth: object) -> None:
    result = scenario("sio_reference.js", protocol_server, "reference", {"auth": auth}, transports)
    final = "polling" if transports == "polling" else "websocket"
    for nsp in ("/", "/custom"):
        got = result[nsp]
        assert got["auth"] == [auth if auth is not None else {}], nsp
        assert got["back"] == BACK, nsp
        assert got["acks"] == BACK, nsp
        # auth once, then one message-back per message, nothing else.
        assert got["events"] == ["auth"] + ["message-back"] * len(BACK), nsp
        assert got["transport"] == final
        assert got["id_ok"]
    assert result["invalid"] == {"connect_error": {"message": "Invalid namespace", "data": None}}


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_namespaces_share_one_connection(protocol_server: ServerProcess, transports: str) -> None:
    result = scenario("sio_reference.js", protocol_server, "multiplex", transports=transports)
    assert result["same_engine"] is True
    assert result["auths"] == [[{"who": "main"}], [{"who": "custom"}]]
    # The refused namespace leaves the others on the same connection working.
    assert result["invalid"] == "Invalid namespace"
    assert result["acks"] == [["to main"], ["to custom"]]
    assert result["connected"] == [True, True, False]
    assert result["events"] == [["auth"], ["auth"]]


def test_connect_reply_comes_before_what_the_connect_handler_emits(
    protocol_server: ServerProcess,
) -> None:
    frames = scenario("sio_reference.js", protocol_server, "wire")["frames"]
    reply = frames[0]
    assert reply.startswith("40{"), frames
    assert list(json.loads(reply[2:])) == ["sid"]
    assert SID.match(json.loads(reply[2:])["sid"])
    assert frames[1] == '42["auth",{"token":"abc"}]'
    assert frames[2].startswith("40/custom,{"), frames
    assert frames[3] == '42/custom,["auth",{}]'
