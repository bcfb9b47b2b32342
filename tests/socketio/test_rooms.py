"""Rooms with the official client: join and leave, and the server-side management of sockets
(fetch_sockets, sockets_join, sockets_leave, disconnect_sockets); volatile packets dropped for
a polling client with no request waiting."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.socketio.raw_client import SioPolling
from tests.socketio.sio import scenario
from tests.support.servers import ServerProcess


@pytest.mark.node
def test_join_and_leave(features_server: ServerProcess) -> None:
    result = scenario("sio_rooms.js", features_server, "rooms")
    assert result == {
        "joined": ["a", "b"],
        "again": ["a", "b", "c"],
        "left": ["a", "c"],
        "leftUnknown": ["a", "c"],
    }


def _by_id(sockets: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["id"]: {**s, "rooms": sorted(s["rooms"])} for s in sockets}


@pytest.mark.node
@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_fetch_join_leave_and_disconnect_sockets(
    features_server: ServerProcess, transports: str
) -> None:
    result = scenario("sio_rooms.js", features_server, "server-side", transports=transports)
    fetched = result["fetched"]
    assert sorted(s["id"] for s in fetched["r1"]) == ["A", "B"]
    assert sorted(s["id"] for s in fetched["exceptR1"]) == ["C"]
    assert sorted(s["id"] for s in fetched["fromSocket"]) == ["A", "B"]  # all but the caller
    every = _by_id(fetched["all"])
    assert sorted(every) == ["A", "B", "C"]
    assert every["A"]["rooms"] == ["A", "r1"]  # a socket is in the room of its own id
    assert every["B"]["rooms"] == ["B", "r1"]
    assert every["C"]["rooms"] == ["C"]
    assert every["A"]["data"] == {"name": "A"}
    assert every["B"]["data"] == {}
    assert every["C"]["data"] == {"name": "C", "n": 3}
    for name in "ABC":
        assert every[name]["nsp"] == "/features"
        assert every[name]["connected"] is True
        assert every[name]["recovered"] is False
        handshake = every[name]["handshake"]
        assert handshake["address"] == "127.0.0.1"
        assert handshake["url"].startswith("/socket.io/?")
        assert handshake["query"]["EIO"] == "4"
        assert handshake["secure"] is False
        assert handshake["issued_positive"] is True
        assert handshake["time_gmt"] is True
    assert every["A"]["handshake"]["auth"] == {"rooms": ["r1"], "data": {"name": "A"}}
    assert every["B"]["handshake"]["query"]["foo"] == "bar"
    assert "foo" not in every["A"]["handshake"]["query"]
    assert every["C"]["handshake"]["x-feature"] == "yes"
    assert every["A"]["handshake"]["x-feature"] is None

    assert result["joined"] == "joined"
    assert {name: sorted(rooms) for name, rooms in result["afterJoin"]} == {
        "A": ["A", "r1", "r3", "r4"],
        "B": ["B", "r1", "r3", "r4"],
        "C": ["C"],
    }
    assert result["left"] == "left"
    assert {name: sorted(rooms) for name, rooms in result["afterLeave"]} == {
        "A": ["A", "r3"],
        "B": ["B", "r3"],
        "C": ["C"],
    }
    assert result["disconnectedAck"] == "disconnected"
    assert result["reasons"] == ["io server disconnect", "io server disconnect"]
    assert result["serverReasons"] == ["server namespace disconnect"] * 2
    assert result["remaining"] == ["C"]
    assert result["connected"] == [False, False, True]


@pytest.mark.node
@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_disconnect_sockets_with_close(features_server: ServerProcess, transports: str) -> None:
    result = scenario("sio_rooms.js", features_server, "disconnect-close", transports=transports)
    assert result["ack"] == "disconnected"
    assert result["client"] == ["io server disconnect", "io server disconnect"]
    assert result["server"] == ["forced server close", "forced server close"]
    assert result["remaining"] == [2]  # B only


async def test_volatile_packets_are_dropped_while_no_poll_waits(
    features_server: ServerProcess,
) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        client = SioPolling(features_server, http)
        await client.open()
        await client.send("40/features,")
        [reply] = await client.receive(1)
        assert reply.startswith("40/features,{")
        # No GET waits now: the volatile emit (to every socket, this one included) is dropped,
        # the normal one after it is queued.
        volatile = {"volatile": True, "event": "v", "args": [1]}
        normal = {"event": "n", "args": [2]}
        await client.send(
            "42/features,1" + json.dumps(["cast", volatile]),
            "42/features,2" + json.dumps(["cast", normal]),
        )
        await asyncio.sleep(0.1)  # the handlers run (well within the 300 ms ping interval)
        packets = await client.receive(3)
        assert packets == ['43/features,1["sent"]', '42/features,["n",2]', '43/features,2["sent"]']
        await client.send("1")
