"""One contract, every store: memory, the database store on SQLite and PostgreSQL, and the
Redis store (channels_sio/recovery/store.py states the rules)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from channels_sio.recovery import PacketRecord, RecoveryStore
from channels_sio.socketio.adapter import SessionRecord

from .conftest import StoreFactory

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

DATA: list[Any] = [
    "chat",
    {"text": "héllo ✓", "n": 1.5, "ok": True, "none": None},
    b"\x00\x01raw",
    [1, {"deep": [b"\xff", "x"]}],
]


def packet(n: int = 0, namespace: str = "/chat", **fields: Any) -> PacketRecord:
    return PacketRecord(namespace=namespace, data=["tick", n], **fields)


async def recorded(store: RecoveryStore, record: PacketRecord) -> str:
    """``store.record``'s offset, given at once (the memory store) or awaited."""
    written = store.record(record)
    return written if isinstance(written, str) else await written


def session(pid: str = "pid-1", **fields: Any) -> SessionRecord:
    values: dict[str, Any] = {
        "pid": pid,
        "sid": "sid-1",
        "namespace": "/chat",
        "rooms": frozenset({"sid-1", "lobby"}),
        "data": {"name": "ann", "nested": {"list": [1, 2]}},
        "user_id": "42",
        "position": None,
        **fields,
    }
    return SessionRecord(**values)


async def test_offsets_increase_and_reads_keep_order_and_content(make_store: StoreFactory) -> None:
    store = make_store()
    first = await store.append([packet(0)])
    records = [
        PacketRecord("/chat", DATA, frozenset({"lobby", "salle:1 é"}), frozenset({"muted"}), "s:é"),
        packet(2),
        packet(3, rooms=frozenset({"a", "b"})),
    ]
    offsets = await store.append(records)
    assert len(offsets) == 3
    assert len(set(first + offsets)) == 4
    got = await store.read_after(["/chat"], first[0])
    assert got is not None
    assert [offset for offset, _ in got] == offsets
    assert [record for _, record in got] == records
    assert got[0][1].data == DATA  # bytes at every depth come back as bytes
    assert await store.read_after(["/chat"], offsets[-1]) == []


async def test_reads_are_per_namespace_and_merge_in_order(make_store: StoreFactory) -> None:
    store = make_store()
    [start] = await store.append([packet(0, "/a")])
    offsets = await store.append([packet(1, "/a"), packet(2, "/b"), packet(3, "/c")])
    offsets += await store.append([packet(4, "/b"), packet(5, "/a")])
    only_a = await store.read_after(["/a"], start)
    assert only_a is not None
    assert [r.data[1] for _, r in only_a] == [1, 5]
    merged = await store.read_after(["/a", "/b"], start)
    assert merged is not None
    assert [r.data[1] for _, r in merged] == [1, 2, 4, 5]
    assert [o for o, _ in merged] == [offsets[0], offsets[1], offsets[3], offsets[4]]


@pytest.mark.parametrize("offset", ["", "not an offset", "12abc", "-", " 1", "1.5"])
async def test_malformed_offsets_read_as_none(make_store: StoreFactory, offset: str) -> None:
    store = make_store()
    await store.append([packet(0)])
    assert await store.read_after(["/chat"], offset) is None


async def test_objects_come_back_with_their_keys_in_order(make_store: StoreFactory) -> None:
    # A replayed event is the one the client would have got: JavaScript code sees key order.
    store = make_store()
    first = await store.append([packet(0)])
    data = ["tick", {"zeta": 1, "alpha": {"y": 2, "b": 3}, "mid": [{"k2": 1, "k1": 2}]}]
    await store.append([PacketRecord("/chat", data), PacketRecord("/chat", data, frozenset("r"))])
    got = await store.read_after(["/chat"], first[0])
    assert got is not None
    assert [json.dumps(record.data) for _, record in got] == [json.dumps(data)] * 2


async def test_concurrent_records_are_grouped_into_few_writes(
    make_store: StoreFactory, store_kind: str
) -> None:
    store = make_store()
    writes: list[int] = []
    append = store.append

    async def counting(packets: Any) -> list[str]:
        writes.append(len(packets))
        return await append(packets)

    store.append = counting  # type: ignore[method-assign]
    offsets = await asyncio.gather(*(recorded(store, packet(n)) for n in range(50)))
    if store_kind == "memory":
        assert writes == []  # nothing to wait for, so nothing to group: each written at once
    else:
        assert sum(writes) == 50
        assert len(writes) <= 2, writes  # the first alone at most, then the rest together
    first = await store.read_after(["/chat"], offsets[0])
    assert first is not None
    assert [r.data[1] for _, r in first] == list(range(1, 50))  # in the order of the calls
    assert [o for o, _ in first] == offsets[1:]


async def test_sessions_are_taken_once(make_store: StoreFactory) -> None:
    store = make_store()
    kept = session(position="123")
    await store.save_session(kept)
    assert await store.take_session("pid-1") == kept
    assert await store.take_session("pid-1") is None
    assert await store.take_session("unknown") is None


@pytest.mark.shared_stores
async def test_concurrent_takes_give_the_session_to_one(make_store: StoreFactory) -> None:
    one, two = make_store(), make_store()  # two processes sharing the store
    await one.save_session(session(position="1"))
    results = await asyncio.gather(*(store.take_session("pid-1") for store in (one, two, one, two)))
    assert sum(result is not None for result in results) == 1


async def test_a_session_saved_without_position_gets_the_log_end(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    offsets = await store.append([packet(n) for n in range(3)])
    await store.save_sessions([session(), session("pid-2", namespace="/other")])
    taken = await store.take_session("pid-1")
    assert taken is not None
    assert taken.position is not None
    assert await store.read_after(["/chat"], taken.position) == []
    later = await store.append([packet(9)])
    assert await store.read_after(["/chat"], taken.position) == [(later[0], packet(9))]
    assert (await store.read_after(["/chat"], offsets[0])) is not None
    other = await store.take_session("pid-2")
    assert other is not None
    assert other.position is not None


async def test_sessions_expire(make_store: StoreFactory) -> None:
    store = make_store(max_disconnection_duration=300)
    await store.save_session(session(position="1"))
    await asyncio.sleep(0.45)
    assert await store.take_session("pid-1") is None


async def test_saving_a_session_again_extends_its_expiry(make_store: StoreFactory) -> None:
    # persist_live_sessions rewrites a connected socket's session before it expires.
    store = make_store(max_disconnection_duration=400)
    await store.save_session(session(position="1"))
    await asyncio.sleep(0.25)
    await store.save_session(session(position="1", rooms=frozenset({"sid-1", "later"})))
    await asyncio.sleep(0.25)
    assert await store.take_session("pid-1") == session(
        position="1", rooms=frozenset({"sid-1", "later"})
    )


async def test_discarded_sessions_cannot_be_taken(make_store: StoreFactory) -> None:
    store = make_store()
    await store.keep_sessions([session("pid-1"), session("pid-2"), session("pid-3")])
    await store.discard_sessions(["pid-1", "pid-3", "never-kept"])
    assert await store.take_session("pid-1") is None
    assert await store.take_session("pid-3") is None
    assert (await store.take_session("pid-2")) is not None


async def test_grouped_session_writes_apply_in_order(make_store: StoreFactory) -> None:
    store = make_store()
    calls: list[tuple[str, list[str]]] = []
    save, discard = store.save_sessions, store.discard_sessions

    async def counted_save(sessions: Any) -> None:
        calls.append(("save", sorted(s.pid for s in sessions)))
        await save(sessions)

    async def counted_discard(pids: Any) -> None:
        calls.append(("discard", sorted(pids)))
        await discard(pids)

    store.save_sessions = counted_save  # type: ignore[method-assign]
    store.discard_sessions = counted_discard  # type: ignore[method-assign]
    # Asked for at once: a save then a discard of one pid leave it discarded, a discard
    # then a save of another leave it saved, and a pid saved twice is written as last saved.
    await asyncio.gather(
        store.save_session(session("gone")),
        store.discard_session("gone"),
        store.discard_session("back"),
        store.save_session(session("back")),
        store.save_session(session("twice", rooms=frozenset({"first"}))),
        store.save_session(session("twice", rooms=frozenset({"second"}))),
    )
    assert await store.take_session("gone") is None
    assert await store.take_session("back") is not None
    twice = await store.take_session("twice")
    assert twice is not None
    assert twice.rooms == {"second"}
    # One batch: one write of the saves, one of the discards.
    assert calls == [("save", ["back", "twice"]), ("discard", ["gone"])]


async def test_purge_removes_old_packets_and_expired_sessions(make_store: StoreFactory) -> None:
    store = make_store(max_disconnection_duration=300)
    [old] = await store.append([packet(0)])
    await store.save_session(session(position=old))
    await asyncio.sleep(0.45)
    [young] = await store.append([packet(1)])
    assert await store.purge() >= 1
    # What went for its age was sent before any recoverable disconnection began: reading
    # after the old offset is still possible, and gives what is left.
    assert await store.read_after(["/chat"], old) == [(young, packet(1))]
    assert await store.take_session("pid-1") is None


async def test_too_many_missed_packets_read_as_none(make_store: StoreFactory) -> None:
    store = make_store(replay_limit=5)
    offsets = await store.append([packet(n) for n in range(10)])
    assert await store.read_after(["/chat"], offsets[0]) is None
    found = await store.read_after(["/chat"], offsets[4])
    assert found is not None
    assert len(found) == 5


@pytest.mark.capped_stores
async def test_packets_removed_by_the_length_cap_read_as_none(make_store: StoreFactory) -> None:
    store = make_store(cap=5)
    offsets = []
    for start in range(0, 300, 50):  # enough for Redis' approximate trimming to trim
        offsets += await store.append([packet(n) for n in range(start, start + 50)])
    assert await store.read_after(["/chat"], offsets[0]) is None
    recent = await store.read_after(["/chat"], offsets[-3])
    assert recent is not None
    assert [o for o, _ in recent] == offsets[-2:]


@pytest.mark.shared_stores
async def test_a_restarted_process_reads_what_the_other_wrote(make_store: StoreFactory) -> None:
    before = make_store()
    offsets = await before.append([packet(0), packet(1)])
    await before.save_session(session(position=offsets[0]))
    await before.close()
    after = make_store()
    assert await after.take_session("pid-1") == session(position=offsets[0])
    assert await after.read_after(["/chat"], offsets[0]) == [(offsets[1], packet(1))]
    [later] = await after.append([packet(2)])
    got = await after.read_after(["/chat"], offsets[1])
    assert got == [(later, packet(2))]


@pytest.mark.shared_stores
async def test_two_processes_append_at_once(make_store: StoreFactory) -> None:
    one, two = make_store(), make_store()
    [start] = await one.append([packet(-1)])
    written = await asyncio.gather(*(recorded((one, two)[n % 2], packet(n)) for n in range(40)))
    assert len(set(written)) == 40
    got = await one.read_after(["/chat"], start)
    assert got is not None
    assert sorted(r.data[1] for _, r in got) == list(range(40))
    assert sorted(o for o, _ in got) == sorted(written)


async def test_a_closed_store_can_be_used_again(make_store: StoreFactory) -> None:
    store = make_store()
    [first] = await store.append([packet(0)])
    await store.close()
    [second] = await store.append([packet(1)])
    assert await store.read_after(["/chat"], first) == [(second, packet(1))]


async def test_a_large_batch_is_one_write(make_store: StoreFactory) -> None:
    store = make_store(replay_limit=2000)
    offsets = await store.append([packet(n) for n in range(1000)])
    assert len(set(offsets)) == 1000
    got = await store.read_after(["/chat"], offsets[0])
    assert got is not None
    assert [r.data[1] for _, r in got] == list(range(1, 1000))


async def test_store_kinds_share_or_not(make_store: StoreFactory, store_kind: str) -> None:
    store: RecoveryStore = make_store()
    assert store.shared is (store_kind != "memory")


async def test_browsing_shows_the_newest_first(make_store: StoreFactory) -> None:
    store = make_store()
    offsets = await store.append([packet(0, "/a"), packet(1, "/b"), packet(2, "/a")])
    newest = await store.browse_packets(limit=2)
    assert [(p.offset, p.packet) for p in newest] == [
        (offsets[2], packet(2, "/a")),
        (offsets[1], packet(1, "/b")),
    ]
    assert newest[0].created >= newest[1].created > 0
    only_a = await store.browse_packets(namespace="/a")
    assert [p.offset for p in only_a] == [offsets[2], offsets[0]]

    await store.save_session(session("pid-a", sid="sid-a", position="1"))
    await asyncio.sleep(0.01)
    await store.save_session(session("pid-b", sid="sid-b", namespace="/b", position="1"))
    kept = await store.browse_sessions()
    assert [k.session.pid for k in kept] == ["pid-b", "pid-a"]
    assert kept[0].expires > kept[1].expires
    assert [k.session.pid for k in await store.browse_sessions(namespace="/chat")] == ["pid-a"]
    assert [k.session.pid for k in await store.browse_sessions(search="sid-b")] == ["pid-b"]
    assert [k.session.pid for k in await store.browse_sessions(search="pid-a")] == ["pid-a"]
    assert await store.browse_sessions(search="nobody") == []
    # Browsing takes nothing away.
    assert await store.take_session("pid-a") is not None
