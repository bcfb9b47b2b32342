"""BroadcastOperator is an immutable builder: each flag returns a new operator; emit ends it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from channels_sio.socketio import BroadcastOperator, Packet, PacketType, SocketIOServer
from channels_sio.socketio.broadcast import BroadcastFlags
from channels_sio.socketio.namespace import Namespace
from channels_sio.socketio.packet import RESERVED_EVENTS

NO_FLAGS = BroadcastFlags()


@pytest.fixture
def nsp() -> Namespace:
    return SocketIOServer().of("/chat")


@pytest.fixture
def sent(nsp: Namespace, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Packet, Any]]:
    """What the operator hands the namespace's adapter to deliver, instead of delivering it."""
    calls: list[tuple[str, Packet, Any]] = []

    async def broadcast(packet: Packet, flags: BroadcastFlags, offset: str | None = None) -> None:
        calls.append(("broadcast", packet, flags))

    async def broadcast_with_ack(packet: Packet, flags: BroadcastFlags) -> tuple[list[Any], bool]:
        calls.append(("broadcast_with_ack", packet, flags))
        return ["answer"], True

    monkeypatch.setattr(nsp.adapter, "broadcast", broadcast)
    monkeypatch.setattr(nsp.adapter, "broadcast_with_ack", broadcast_with_ack)
    return calls


# (how to derive a new operator, the flags it carries)
STEPS: list[Any] = [
    pytest.param(lambda op: op.to("lobby"), BroadcastFlags(rooms=frozenset({"lobby"})), id="to"),
    pytest.param(lambda op: op.in_("lobby"), BroadcastFlags(rooms=frozenset({"lobby"})), id="in"),
    pytest.param(
        lambda op: op.to("a", ["b", "c"], {"d"}, ("e",)),
        BroadcastFlags(rooms=frozenset("abcde")),
        id="to-many",
    ),
    pytest.param(
        lambda op: op.to("room"), BroadcastFlags(rooms=frozenset({"room"})), id="to-str-not-chars"
    ),
    pytest.param(
        lambda op: op.to("a").to("b").to("a"),
        BroadcastFlags(rooms=frozenset({"a", "b"})),
        id="to-chained",
    ),
    pytest.param(lambda op: op.to(), NO_FLAGS, id="to-nothing"),
    pytest.param(
        lambda op: op.except_("x", ["y"]),
        BroadcastFlags(except_rooms=frozenset({"x", "y"})),
        id="except",
    ),
    pytest.param(
        lambda op: op.except_("x").except_("y"),
        BroadcastFlags(except_rooms=frozenset({"x", "y"})),
        id="except-chained",
    ),
    pytest.param(lambda op: op.volatile, BroadcastFlags(volatile=True), id="volatile"),
    pytest.param(lambda op: op.local, BroadcastFlags(local=True), id="local"),
    pytest.param(lambda op: op.timeout(1500), BroadcastFlags(timeout=1.5), id="timeout"),
    pytest.param(
        lambda op: op.timeout(1000).timeout(250), BroadcastFlags(timeout=0.25), id="timeout-last"
    ),
    pytest.param(lambda op: op.compress(False), BroadcastFlags(compress=False), id="no-compress"),
    pytest.param(lambda op: op.compress(), NO_FLAGS, id="compress"),
    pytest.param(
        lambda op: op.to("r").except_("x").volatile.local.timeout(10).compress(False),
        BroadcastFlags(
            rooms=frozenset({"r"}),
            except_rooms=frozenset({"x"}),
            volatile=True,
            local=True,
            timeout=0.01,
            compress=False,
        ),
        id="everything",
    ),
]


@pytest.mark.parametrize(("step", "flags"), STEPS)
def test_each_flag_returns_a_new_operator(
    nsp: Namespace, step: Callable[[BroadcastOperator], BroadcastOperator], flags: BroadcastFlags
) -> None:
    original = BroadcastOperator(nsp)
    derived = step(original)
    assert isinstance(derived, BroadcastOperator)
    assert derived is not original
    assert derived.nsp is nsp
    assert derived.flags == flags
    assert original.flags == NO_FLAGS, "the original operator changed"


@pytest.mark.parametrize(("step", "flags"), STEPS)
def test_a_shared_operator_is_never_changed_by_its_users(
    nsp: Namespace, step: Callable[[BroadcastOperator], BroadcastOperator], flags: BroadcastFlags
) -> None:
    shared = BroadcastOperator(nsp).to("base")
    step(shared)
    step(shared)
    assert shared.flags == BroadcastFlags(rooms=frozenset({"base"}))


def test_branches_do_not_see_each_other(nsp: Namespace) -> None:
    base = nsp.to("lobby")
    red = base.to("red")
    quiet = base.except_("muted").volatile
    assert base.flags == BroadcastFlags(rooms=frozenset({"lobby"}))
    assert red.flags == BroadcastFlags(rooms=frozenset({"lobby", "red"}))
    assert quiet.flags == BroadcastFlags(
        rooms=frozenset({"lobby"}), except_rooms=frozenset({"muted"}), volatile=True
    )


def test_flags_are_frozen(nsp: Namespace) -> None:
    operator = nsp.to("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        operator.flags.volatile = True  # type: ignore[misc]
    assert isinstance(operator.flags.rooms, frozenset)


def test_namespace_and_server_shortcuts_start_fresh(nsp: Namespace) -> None:
    server = nsp.server
    for operator, target in [
        (nsp.to("a"), nsp),
        (nsp.in_("a"), nsp),
        (server.to("a"), server.of("/")),
        (server.in_("a"), server.of("/")),
    ]:
        assert operator.nsp is target
        assert operator.flags == BroadcastFlags(rooms=frozenset({"a"}))
    assert nsp.volatile.flags == BroadcastFlags(volatile=True)
    assert server.local.flags == BroadcastFlags(local=True)
    assert server.except_("x").flags == BroadcastFlags(except_rooms=frozenset({"x"}))
    assert server.timeout(5).flags == BroadcastFlags(timeout=0.005)
    assert nsp.operator.flags == NO_FLAGS


async def test_emit_hands_over_one_event_packet_and_the_flags(
    nsp: Namespace, sent: list[tuple[str, Packet, Any]]
) -> None:
    operator = nsp.to("lobby").except_("muted")
    await operator.emit("chat", "hi", {"n": 1})
    assert sent == [
        (
            "broadcast",
            Packet(PacketType.EVENT, data=["chat", "hi", {"n": 1}]),
            BroadcastFlags(rooms=frozenset({"lobby"}), except_rooms=frozenset({"muted"})),
        )
    ]
    assert operator.flags == BroadcastFlags(
        rooms=frozenset({"lobby"}), except_rooms=frozenset({"muted"})
    ), "emit changed the operator"


async def test_emit_with_ack_hands_over_the_timeout(
    nsp: Namespace, sent: list[tuple[str, Packet, Any]]
) -> None:
    assert await nsp.timeout(200).emit_with_ack("ask", 1) == ["answer"]
    assert sent == [
        (
            "broadcast_with_ack",
            Packet(PacketType.EVENT, data=["ask", 1]),
            BroadcastFlags(timeout=0.2),
        )
    ]


async def test_emit_with_ack_needs_a_timeout(
    nsp: Namespace, sent: list[tuple[str, Packet, Any]]
) -> None:
    with pytest.raises(ValueError, match=r"need a timeout: use \.timeout\(ms\)"):
        await nsp.to("lobby").emit_with_ack("ask")
    with pytest.raises(ValueError, match="need a timeout"):
        await nsp.emit_with_ack("ask")
    assert sent == []


@pytest.mark.parametrize("name", sorted(RESERVED_EVENTS))
async def test_reserved_events_raise_before_anything_is_sent(
    nsp: Namespace, sent: list[tuple[str, Packet, Any]], name: str
) -> None:
    with pytest.raises(ValueError, match="reserved event name"):
        await nsp.to("lobby").emit(name, 1)
    with pytest.raises(ValueError, match="reserved event name"):
        await nsp.timeout(100).emit_with_ack(name)
    with pytest.raises(ValueError, match="reserved event name"):
        await nsp.server.emit(name, namespace="/chat")
    assert sent == []


@pytest.mark.parametrize("name", [None, 1, b"chat"])
async def test_non_string_events_raise_before_anything_is_sent(
    nsp: Namespace, sent: list[tuple[str, Packet, Any]], name: Any
) -> None:
    with pytest.raises(ValueError, match="event names must be strings"):
        await nsp.emit(name)
    with pytest.raises(ValueError, match="event names must be strings"):
        await nsp.timeout(100).emit_with_ack(name)
    assert sent == []


async def test_emit_without_sockets_sends_nothing() -> None:
    # The real namespace, with nobody connected: nothing to do, and no error.
    nsp = SocketIOServer().of("/empty")
    await nsp.to("lobby").emit("chat", "hi")
    assert await nsp.timeout(10).emit_with_ack("ask") == []
    assert await nsp.fetch_sockets() == []
