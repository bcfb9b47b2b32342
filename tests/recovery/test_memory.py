"""The memory store's log: its cap, its purge by age, and what it gives back after both (the
contract all stores keep is in test_stores)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from channels_sio.recovery import MemoryStore, PacketRecord
from channels_sio.recovery import memory as memory_module


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(memory_module.time, "time", clock)
    return clock


def record(store: MemoryStore, n: int, rooms: frozenset[str] = frozenset()) -> str:
    return store.record(PacketRecord("/", ["tick", n], rooms, exclude_sid=f"s{n}"))


async def test_the_log_after_a_purge_then_a_cap(
    clock: Clock,
) -> None:
    store = MemoryStore(max_packets=4, max_disconnection_duration=1000)
    record(store, 1)
    record(store, 2)
    clock.now += 0.5
    record(store, 3, frozenset({"room"}))
    clock.now += 0.7  # 1 and 2 are now older than a second; 3 is not
    assert await store.purge() == 2
    assert [record(store, n) for n in (4, 5, 6)] == ["4", "5", "6"]
    # Full (4 packets): the oldest, 3, goes, and a client that missed it cannot recover.
    assert record(store, 7) == "7"

    after = await store.read_after(["/"], "3")
    assert after is not None
    assert [(offset, packet.data) for offset, packet in after] == [
        (str(n), ["tick", n]) for n in (4, 5, 6, 7)
    ]
    assert [packet.exclude_sid for _, packet in after] == ["s4", "s5", "s6", "s7"]
    assert await store.read_after(["/"], "2") is None  # 3 was dropped by the cap, not age

    browsed = await store.browse_packets()
    assert [logged.offset for logged in browsed] == ["7", "6", "5", "4"]
    assert {logged.created for logged in browsed} == {clock.now}


async def test_a_log_purged_whole_is_written_again_from_where_it_stood(clock: Clock) -> None:
    store = MemoryStore(max_packets=3, max_disconnection_duration=1000)
    for n in range(5):
        record(store, n, frozenset({f"room{n}"}))
    clock.now += 2
    assert await store.purge() == 3
    assert await store.read_after(["/"], "5") == []
    assert record(store, 9, frozenset({"room9"})) == "6"
    after = await store.read_after(["/"], "5")
    assert after is not None
    assert [packet.rooms for _, packet in after] == [frozenset({"room9"})]


@pytest.fixture
def no_automatic_collection() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@pytest.mark.usefixtures("no_automatic_collection")
def test_a_logged_packet_leaves_the_collectors_tracking_at_its_first_collection() -> None:
    # Entries still tracked would reach the oldest generation by the thousand, and every full
    # collection would walk them: a full log made each message cost 1.7 µs more.
    store = MemoryStore()
    sockets = [frozenset({f"sid{n}"}) for n in range(3)]
    for rooms in sockets:
        record(store, 0, rooms)
    gc.collect()  # the store and the room tuples it shares are old now
    for n in range(300):
        record(store, n, sockets[n % 3])
    gc.collect(0)
    log = store._log["/"]
    assert len(log) == 303
    assert not any(gc.is_tracked(entry) for entry in log)
