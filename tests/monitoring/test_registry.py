"""What a flush carries (FlushBuilder: the node's report, its windows and bounds, orphans
that last, packet rates, sockets written only when they change), and values a client
controls, which every database must take."""

from __future__ import annotations

import time
from typing import Any

import pytest

from channels_sio.models import LiveSession, LiveSocket, Node
from channels_sio.monitoring import registry
from channels_sio.monitoring.registry import Flush, FlushBuilder
from channels_sio.monitoring.tracker import Event, NodeReport, SessionRow, Snapshot, SocketRow

START = 1_000_000.0


def builder(**options: Any) -> FlushBuilder:
    values: dict[str, Any] = {
        "node_id": "n1",
        "host": "host",
        "pid": 1,
        "channel": "channel",
        "started_at": START,
        "storm_window": 10.0,
        "slow_window": 100.0,
        "orphan_grace": 2.0,
        **options,
    }
    return FlushBuilder(**values)


def report(**fields: Any) -> NodeReport:
    values: dict[str, Any] = {
        "sessions": 0,
        "sockets": 0,
        "packets_in": 0,
        "packets_out": 0,
        "closes": {},
        "events": [],
        "orphans": [],
        **fields,
    }
    return NodeReport(**values)


def socket_row(socket_id: str, namespace: str = "/", rooms: tuple[str, ...] = ()) -> SocketRow:
    return SocketRow(socket_id, namespace, (socket_id, *rooms), None, False, START)


def session_row(sid: str, **fields: Any) -> SessionRow:
    values: dict[str, Any] = {
        "sid": sid,
        "transport": "websocket",
        "upgrade": "none",
        "address": "10.0.0.1",
        "user_agent": "ua",
        "user_id": None,
        "username": "",
        "connected_at": START,
        "last_pong_at": START,
        "rtt": 0.004,
        "packets_in": 0,
        "packets_out": 0,
        "bytes_in": 0,
        "bytes_out": 0,
        "queued": 0,
        "sockets": (),
        "fingerprint": "address:10.0.0.1|ua",
        "handshake": {},
        **fields,
    }
    return SessionRow(**values)


def snapshot(*changed: SessionRow, closed: tuple[str, ...] = (), **fields: Any) -> Snapshot:
    return Snapshot(list(changed), list(closed), report(**fields))


def test_the_report_counts_events_by_address_each_within_its_window() -> None:
    now = START + 1000
    events = [
        Event(now - 5, "parse error", "10.1.1.1", "a"),
        Event(now - 4, "parse error", "10.1.1.1", "b"),
        Event(now - 3, "refused", "10.1.1.1", None),
        Event(now - 20, "parse error", "10.1.1.1", "c"),  # outside the storm window
        Event(now - 1, "refused", "", None),
        Event(now - 50, "slow", "10.2.2.2", "s1"),
        Event(now - 40, "slow", "10.2.2.2", "s2"),
        Event(now - 200, "slow", "10.3.3.3", "s3"),  # outside the slow-consumer window
    ]
    made = builder().report(report(events=events, closes={"parse error": 3}), now)
    assert made["storm"] == {
        "10.1.1.1": {"parse error": 2, "refused": 1},
        registry.UNKNOWN_ADDRESS: {"refused": 1},
    }
    assert made["slow"] == {"10.2.2.2": {"count": 2, "sids": ["s1", "s2"], "last": now - 40}}
    assert made["closes"] == {"parse error": 3}
    assert made["events"][-1] == {
        "at": now - 200,
        "kind": "slow",
        "address": "10.3.3.3",
        "sid": "s3",
    }


def test_the_report_is_bounded_whatever_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "MAX_ADDRESSES", 3)
    monkeypatch.setattr(registry, "MAX_EVENTS", 5)
    now = START + 10
    events = [
        Event(now - 1, "parse error", f"10.0.0.{n}", None)
        for n in range(10)
        for _ in range(n + 1)  # 10.0.0.9 the busiest
    ]
    made = builder().report(report(events=events), now)
    assert list(made["storm"]) == ["10.0.0.9", "10.0.0.8", "10.0.0.7"]
    assert len(made["events"]) == 5


def test_orphans_are_reported_once_they_lasted_the_grace() -> None:
    made = builder(orphan_grace=2.0)
    orphan = {"what": "socket", "id": "s1", "namespace": "/", "sid": "x"}

    def lasting(at: float, *found: dict[str, Any]) -> list[dict[str, Any]]:
        orphans: list[dict[str, Any]] = made.report(report(orphans=list(found)), START + at)[
            "orphans"
        ]
        return orphans

    assert lasting(0, orphan) == []  # a session in the middle of closing, perhaps
    assert lasting(1, orphan) == []
    assert lasting(2, orphan) == [{**orphan, "since": START}]
    assert lasting(3) == []
    assert lasting(4, orphan) == []  # back: its clock starts again


def test_packet_rates_count_the_new_packets_of_each_session() -> None:
    made = builder()
    first = made.build(
        snapshot(session_row("a", packets_in=10, packets_out=4)), START + 1, live=None
    )
    assert (first.node.packets_in_per_s, first.node.packets_out_per_s) == (10, 4)
    second = made.build(
        snapshot(session_row("a", packets_in=15, packets_out=6), session_row("b", packets_in=1)),
        START + 2,
        live=None,
    )
    assert (second.node.packets_in_per_s, second.node.packets_out_per_s) == (6, 2)
    # "a" closed (its packets since the last flush are lost), "b" unchanged: nothing new.
    third = made.build(snapshot(closed=("a",)), START + 4, live=None)
    assert third.node.packets_in_per_s == 0
    assert third.closed == ["a"]


def test_sockets_are_written_when_they_change_and_all_in_a_full_flush() -> None:
    made = builder()
    one = (socket_row("x"),)
    first = made.build(snapshot(session_row("a", sockets=one)), START + 1, live=None)
    assert first.sockets == {"a": one}
    again = made.build(snapshot(session_row("a", sockets=one, packets_in=1)), START + 2, live=None)
    assert again.sockets == {}
    joined = (socket_row("x", rooms=("lobby",)),)
    third = made.build(snapshot(session_row("a", sockets=joined)), START + 3, live=None)
    assert third.sockets == {"a": joined}
    full = made.build(
        snapshot(session_row("a", sockets=joined), session_row("b")),
        START + 4,
        live=frozenset({"a", "b"}),
    )
    assert full.full
    assert full.sockets == {"a": joined, "b": ()}


@pytest.mark.django_db(databases="__all__")
def test_values_a_client_controls_are_stored_on_every_database(using: str) -> None:
    evil = "\x00\ud800é"
    long_agent = "agent/" + "x" * 400
    rows = [
        session_row(
            "sid-1",
            user_agent=f"ua{evil}",
            address=f"10.0.0.1{evil}" + "9" * 100,
            handshake={"headers": {f"x-{evil}": evil}, "query": evil},
            sockets=(socket_row("s1", namespace=f"/dyn{evil}" + "n" * 300, rooms=(evil,)),),
            fingerprint=f"address:10.0.0.1|{long_agent}a",
        ),
        session_row("sid-2", fingerprint=f"address:10.0.0.1|{long_agent}b"),
    ]
    made = builder()
    flush = made.build(
        snapshot(*rows, sessions=2, sockets=1), time.time(), live=frozenset({"sid-1", "sid-2"})
    )
    registry.write_flush(using, flush)
    first, second = LiveSession.objects.using(using).order_by("sid")
    assert first.user_agent == "ua\ufffd?é"
    assert len(first.address) == 64
    assert first.handshake == {"headers": {"x-\ufffd?é": "\ufffd?é"}, "query": "\ufffd?é"}
    assert len(first.fingerprint) <= 255
    assert first.fingerprint != second.fingerprint  # cut, yet apart
    socket = LiveSocket.objects.using(using).get()
    assert socket.namespace.startswith("/dyn\ufffd?é")
    assert socket.rooms == ["\ufffd?é"]
    assert Node.objects.using(using).get().sessions == 2


@pytest.mark.django_db(databases="__all__")
def test_a_flush_of_a_node_marked_gone_raises_and_writes_nothing(using: str) -> None:
    made = builder()
    registry.write_flush(using, made.build(snapshot(), time.time(), live=frozenset()))
    Node.objects.using(using).update(gone_at=Node.objects.using(using).get().last_heartbeat)
    flush: Flush = made.build(snapshot(session_row("late")), time.time(), live=None)
    with pytest.raises(registry.NodeNotCurrent):
        registry.write_flush(using, flush)
    assert not LiveSession.objects.using(using).exists()
