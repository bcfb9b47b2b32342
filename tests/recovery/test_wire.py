"""Connection state recovery on the wire, one server process (memory store), under uvicorn and
daphne: the official socket.io-client, and raw packets where the client would not send them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.recovery.wire import NSP, call, event_of, join, raw
from tests.support.driver import Driver
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.node


def open_client(driver: Driver, server: ServerProcess, name: str, **fields: Any) -> Any:
    fields.setdefault("transports", "websocket")
    return driver("open", name=name, url=server.url, nsp=NSP, **fields)


def cast(driver: Driver, via: str, **spec: Any) -> None:
    assert driver("call", name=via, event="cast", args=[spec]) is True


def received(driver: Driver, name: str, event: str, flush: str) -> list[list[Any]]:
    """What ``name`` got of ``event`` until the ``flush`` broadcast (sent to everyone after
    what is checked, so a packet that is still coming is not missed)."""
    driver("wait", name=name, event=flush)
    return [e for e in driver("events", name=name) if e[0] == event]


def without_offsets(events: list[list[Any]]) -> list[list[Any]]:
    """Events with the offset socket.io-client receives as last argument taken off (checked
    to be there: a string)."""
    for event in events:
        assert isinstance(event[-1], str), event
    return [event[:-1] for event in events]


@pytest.mark.parametrize("transports", ["websocket", "polling", "polling,websocket"])
def test_a_dropped_client_gets_back_its_id_rooms_data_and_what_it_missed(
    recovery_server: ServerProcess, driver: Driver, transports: str
) -> None:
    a = open_client(
        driver, recovery_server, "A", transports=transports, auth={"rooms": ["red"], "name": "ann"}
    )
    assert a["pid"], "the CONNECT reply carries a pid"
    assert a["recovered"] is False
    open_client(driver, recovery_server, "B")
    cast(driver, "B", event="news", args=["before"])
    [news] = driver("wait", name="A", event="news")
    assert news[:2] == ["news", "before"]
    assert driver("state", name="A")["offset"] == news[2]

    assert driver("drop", name="A") in ("transport close", "forced close")
    missed = [
        {"event": "m", "args": [1]},
        {"event": "m", "args": [2], "to": ["red"]},
        {"event": "m", "args": [3], "to": [a["id"]]},
        {"event": "m", "args": [4], "to": ["blue"]},  # not for A
        {"event": "m", "args": [5], "except": ["red"]},  # not for A
        {"event": "m", "args": [6], "volatile": True},  # volatile: never recorded
        {"event": "m", "args": [7], "binary": "00ff"},
    ]
    for spec in missed:
        cast(driver, "B", **spec)
    assert driver("call", name="B", event="django-emit", args=[{"event": "m", "args": [8]}])

    back = driver("reconnect", name="A", clear=True)
    assert back["recovered"] is True
    assert back["id"] == a["id"]
    assert back["pid"] == a["pid"]
    cast(driver, "B", event="flush")
    got = received(driver, "A", "m", "flush")
    assert [event[1] for event in got] == [1, 2, 3, 7, 8]  # once each, in order
    assert got[3][2] == {"bytes": {"type": "Buffer", "data": [0, 255]}}
    offsets = [event[-1] for event in got]
    assert len(set(offsets)) == len(offsets)
    assert driver("call", name="A", event="info") == {
        "id": a["id"],
        "recovered": True,
        "rooms": ["red"],
        "data": {"name": "ann"},
    }
    # Its rooms work as before.
    cast(driver, "B", event="after", args=["red"], to=["red"])
    assert driver("wait", name="A", event="after")[0][:2] == ["after", "red"]
    stats = driver("call", name="B", event="stats")
    assert stats[f"connect:{a['id']}"] == 2  # the connect handler runs for a recovered socket
    assert stats[f"middleware:{a['id']}"] == 1  # the middleware does not (skip_middlewares)
    assert stats[f"recovered:{a['id']}"] is True


def test_events_carry_their_offset_unless_volatile_or_acknowledged(
    recovery_server: ServerProcess, driver: Driver
) -> None:
    open_client(driver, recovery_server, "A")
    for spec in (
        {"event": "plain", "args": [1]},
        {"event": "vol", "args": [1], "volatile": True},
        {"event": "acked", "args": [1], "ack": True},
    ):
        assert driver("call", name="A", event="self", args=[spec]) is True
    cast(driver, "A", event="flush")
    events = received(driver, "A", "plain", "flush")
    assert len(without_offsets(events)) == 1
    assert driver("events", name="A", event="vol") == [["vol", 1]]
    acked = driver("events", name="A", event="acked")
    assert len(acked) == 1
    assert acked[0][:2] == ["acked", 1]  # then the client's acknowledgement callback
    assert not any(isinstance(arg, str) for arg in acked[0][2:])


def test_a_client_that_received_nothing_recovers_from_its_disconnection(
    recovery_server: ServerProcess, driver: Driver
) -> None:
    a = open_client(driver, recovery_server, "A")
    open_client(driver, recovery_server, "B")
    assert driver("state", name="A")["offset"] is None
    driver("drop", name="A")
    cast(driver, "B", event="m", args=["while away"])
    back = driver("reconnect", name="A")
    assert back["recovered"] is True
    assert back["id"] == a["id"]
    cast(driver, "B", event="flush")
    assert without_offsets(received(driver, "A", "m", "flush")) == [["m", "while away"]]


def test_missed_broadcasts_from_itself_are_not_replayed(
    recovery_server: ServerProcess, driver: Driver
) -> None:
    open_client(driver, recovery_server, "A", auth={"rooms": ["red"]})
    open_client(driver, recovery_server, "B")
    # socket.to("red") from A leaves A out; replaying it to A would be wrong.
    cast(driver, "A", event="m", args=["from A"], to=["red"], from_socket=True)
    cast(driver, "A", event="m", args=["to all"])
    driver("wait", name="A", event="m")
    driver("drop", name="A")
    cast(driver, "B", event="m", args=["missed"])
    assert driver("reconnect", name="A", clear=True)["recovered"] is True
    cast(driver, "B", event="flush")
    assert without_offsets(received(driver, "A", "m", "flush")) == [["m", "missed"]]


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        pytest.param("client", "io client disconnect", id="client-disconnect"),
        pytest.param("server", "io server disconnect", id="server-disconnect"),
    ],
)
def test_an_explicit_disconnect_is_never_recovered(
    recovery_server: ServerProcess, driver: Driver, how: str, reason: str
) -> None:
    a = open_client(driver, recovery_server, "A")
    if how == "client":
        assert driver("leave", name="A") == reason
    else:
        driver("call", name="A", event="leave-me")
        assert driver("disconnected", name="A") == reason
    back = driver("reconnect", name="A")
    assert back["recovered"] is False
    assert back["id"] != a["id"]


def test_a_connection_the_server_cut_is_recovered(
    recovery_server: ServerProcess, driver: Driver
) -> None:
    a = open_client(driver, recovery_server, "A")
    open_client(driver, recovery_server, "B")
    driver("call", name="A", event="cut-me")
    assert driver("disconnected", name="A") == "transport close"
    cast(driver, "B", event="m", args=["after the cut"])
    back = driver("reconnect", name="A")
    assert back["recovered"] is True
    assert back["id"] == a["id"]


def test_reconnecting_while_broadcasts_are_in_flight_loses_and_repeats_nothing(
    recovery_server: ServerProcess, driver: Driver
) -> None:
    open_client(driver, recovery_server, "A")
    open_client(driver, recovery_server, "B")
    open_client(driver, recovery_server, "C")
    total = 0
    for round_ in range(5):
        # B sends a burst while A drops and comes back in the middle of it.
        burst = driver("callLater", name="B", event="burst", args=[{"start": total, "count": 200}])
        driver("drop", name="A")
        assert driver("reconnect", name="A")["recovered"] is True, round_
        assert driver("result", call=burst) is True
        total += 200
    cast(driver, "C", event="flush")
    seqs = [event[1] for event in received(driver, "A", "seq", "flush")]
    assert seqs == list(range(total))


# -- raw packets -------------------------------------------------------------------------


async def test_the_connect_reply_carries_sid_and_pid(recovery_server: ServerProcess) -> None:
    async with raw(recovery_server) as sock:
        reply = await join(sock)
        assert set(reply) == {"before", "sid", "pid"}
        assert reply["before"] == []
        assert reply["pid"] != reply["sid"]
        assert len(reply["pid"]) >= 20  # from secrets: unguessable


async def test_missed_packets_come_before_the_connect_reply_and_a_restore_is_once(
    recovery_server: ServerProcess,
) -> None:
    async with raw(recovery_server) as other:
        await join(other)
        async with raw(recovery_server) as sock:
            first = await join(sock, {"rooms": ["red"]})
            await call(other, 1, "cast", {"event": "m", "args": ["seen"]}, before=[])
            seen = event_of(await sock.recv())
            offset = seen[-1]
            await call(sock, 1, "info")
        # The WebSocket closed under the socket: "transport close", a recoverable reason.
        for n in range(3):
            await call(other, 2 + n, "cast", {"event": "m", "args": [n], "to": ["red"]}, before=[])
        auth = {"pid": first["pid"], "offset": offset}
        async with raw(recovery_server) as sock:
            again = await join(sock, auth)
            assert again["sid"] == first["sid"]
            assert again["pid"] == first["pid"]
            missed = [event_of(frame) for frame in again["before"]]
            assert [m[:2] for m in missed] == [["m", 0], ["m", 1], ["m", 2]]
            assert all(m[2] > offset for m in missed) or len({m[2] for m in missed}) == 3
            info = await call(sock, 1, "info")
            assert info == [
                {"id": first["sid"], "recovered": True, "rooms": ["red"], "data": {"name": None}}
            ]
            # Ended on purpose: the session is not kept, and a restore was one-shot.
            await sock.send(f"41{NSP},")
        async with raw(recovery_server) as sock:
            third = await join(sock, auth)
            assert third["sid"] != first["sid"]
            assert third["before"] == []
            assert third["pid"] != first["pid"]


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param({"pid": "unknown-pid", "offset": "1"}, id="unknown-pid"),
        pytest.param({"pid": 12, "offset": "1"}, id="pid-not-a-string"),
        pytest.param({"offset": "1"}, id="offset-only"),
    ],
)
async def test_what_cannot_be_restored_gives_a_fresh_socket(
    recovery_server: ServerProcess, auth: dict[str, Any]
) -> None:
    async with raw(recovery_server) as sock:
        reply = await join(sock, auth)
        assert reply["before"] == []
        assert (await call(sock, 1, "info"))[0]["recovered"] is False


async def test_a_malformed_offset_gives_a_fresh_socket(recovery_server: ServerProcess) -> None:
    async with raw(recovery_server) as sock:
        first = await join(sock)
    async with raw(recovery_server) as sock:
        reply = await join(sock, {"pid": first["pid"], "offset": "not an offset"})
        assert reply["sid"] != first["sid"]
        assert (await call(sock, 1, "info"))[0]["recovered"] is False


async def test_a_parse_error_is_never_recovered(recovery_server: ServerProcess) -> None:
    async with raw(recovery_server) as sock:
        first = await join(sock)
        await sock.send(f"42{NSP},[")  # malformed: the connection closes with "parse error"
        assert await sock.closed() is not None
    assert recovery_server.close_reason  # the server is still up
    async with raw(recovery_server) as sock:
        reply = await join(sock, {"pid": first["pid"]})
        assert reply["sid"] != first["sid"]


async def test_a_reconnect_faster_than_the_server_noticed_the_drop_is_recovered(
    recovery_server: ServerProcess,
) -> None:
    # The old connection stops answering pings but stays open: the server has not noticed
    # yet when the client comes back with its pid.
    async with raw(recovery_server, pong=False) as old:
        first = await join(old, {"rooms": ["red"]})
        async with raw(recovery_server) as sock:
            again = await join(sock, {"pid": first["pid"]})
            assert again["sid"] == first["sid"]
            info = (await call(sock, 1, "info"))[0]
            assert info["recovered"] is True
            assert info["rooms"] == ["red"]
            # Later than the old connection's heartbeat would have closed it (socket.io#4880):
            # the recovered socket keeps its rooms.
            await asyncio.sleep(2.2)
            got: list[str] = []
            await call(
                sock, 2, "cast", {"event": "m", "args": ["still"], "to": ["red"]}, before=got
            )
            assert [event_of(frame)[:2] for frame in got] == [["m", "still"]]
            assert (await call(sock, 3, "info"))[0]["rooms"] == ["red"]
