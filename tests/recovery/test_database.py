"""What the contract suite cannot see of the database store: where its ORM calls run, its one
connection, recovery from a killed connection, purging in batches, the path for databases
whose multi-row INSERT gives no ids; and the ``purge_recovery`` command, for any store."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connections
from django.db.backends.signals import connection_created
from django.test import override_settings
from django.utils import timezone

from channels_sio import conf
from channels_sio.models import RecoveryPacket, RecoverySession
from channels_sio.recovery import PacketRecord
from channels_sio.recovery.database import DatabaseStore
from channels_sio.socketio.adapter import SessionRecord
from tests.support.database import require_postgres

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def packet(n: int = 0, namespace: str = "/chat", **fields: Any) -> PacketRecord:
    return PacketRecord(namespace=namespace, data=["tick", n], **fields)


def session(pid: str = "pid-1", **fields: Any) -> SessionRecord:
    values: dict[str, Any] = {
        "pid": pid,
        "sid": f"sid-{pid}",
        "namespace": "/chat",
        "rooms": frozenset({f"sid-{pid}"}),
        "data": {"name": "ann"},
        "position": "0",
        **fields,
    }
    return SessionRecord(**values)


StoreFactory = Callable[..., DatabaseStore]


async def stores(using: str) -> AsyncIterator[StoreFactory]:
    made: list[DatabaseStore] = []

    def make(**options: Any) -> DatabaseStore:
        store = DatabaseStore(using=using, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


@pytest.fixture
async def make_store(using: str) -> AsyncIterator[StoreFactory]:
    """Makes database stores on ``using``, closed after the test."""
    async for make in stores(using):
        yield make


@pytest.fixture
async def make_postgres_store() -> AsyncIterator[StoreFactory]:
    """Makes database stores on PostgreSQL, closed after the test."""
    require_postgres()
    async for make in stores("postgres"):
        yield make


@pytest.fixture
def connects() -> Iterator[list[str]]:
    """The aliases of the database connections opened while the test runs."""
    opened: list[str] = []

    def opening(sender: Any, connection: Any, **kwargs: Any) -> None:
        opened.append(connection.alias)

    connection_created.connect(opening)
    yield opened
    connection_created.disconnect(opening)


async def use_every_call(store: DatabaseStore) -> None:
    [start] = await store.append([packet(0)])
    await store.record(packet(1))
    assert await store.read_after(["/chat"], start) is not None
    await store.save_sessions([session(position=None)])
    assert await store.take_session("pid-1") is not None
    await store.purge()
    await store.browse_packets()
    await store.browse_sessions(search="sid")


async def test_orm_calls_run_in_one_thread_off_the_event_loop(
    make_store: StoreFactory,
    statements: list[tuple[int, str]],
    connects: list[str],
    using: str,
) -> None:
    store = make_store()
    await use_every_call(store)
    loop_thread = threading.get_ident()
    threads = {thread for thread, _ in statements if thread != loop_thread}
    assert len(threads) == 1, "every ORM call in the store's own thread"
    on_loop = [sql for thread, sql in statements if thread == loop_thread]
    if using == "postgres":
        # The grouped writes alone run on the loop, through psycopg's async connection.
        assert len(on_loop) == 2
        assert all(sql.startswith("INSERT") for sql in on_loop)
        assert connects == [using], "one ORM connection kept from call to call"
    else:  # SQLite's in-memory test database shares one connection
        assert on_loop == [], "no ORM call on the event loop's thread"


async def test_appends_from_outside_the_server_run_in_the_thread(
    make_store: StoreFactory, statements: list[tuple[int, str]]
) -> None:
    # channels_sio.emit from sync code runs on a loop of its own per call: the thread's
    # connection outlives it, where a connection on that loop would be opened every time.
    store = make_store()
    [first] = await store.append_outside([packet(0)])
    inserts = [t for t, sql in statements if sql.lstrip().upper().startswith("INSERT")]
    assert inserts
    assert threading.get_ident() not in inserts
    [second] = await store.append([packet(1)])
    assert await store.read_after(["/chat"], first) == [(second, packet(1))]


async def test_grouped_writes_on_a_short_lived_loop_close_with_it(
    make_postgres_store: StoreFactory,
) -> None:
    store = make_postgres_store()

    def on_its_own_loop() -> str:
        return async_to_sync(store.append)([packet(0)])[0]

    offset = await asyncio.to_thread(on_its_own_loop)
    assert await asyncio.to_thread(backends) == 0, "its connection closed as its loop ended"
    [later] = await store.append([packet(1)])
    assert await store.read_after(["/chat"], offset) == [(later, packet(1))]


async def test_a_closed_store_leaves_no_connection_and_opens_again(
    make_postgres_store: StoreFactory,
) -> None:
    # Two: the thread's, and the grouped writes' on the event loop.
    store = make_postgres_store()
    await use_every_call(store)
    assert await asyncio.to_thread(backends) == 2
    await store.close()
    assert await asyncio.to_thread(backends) == 0
    await use_every_call(store)
    assert await asyncio.to_thread(backends) == 2


def on_postgres(query: str) -> list[tuple[Any, ...]]:
    """``query`` on the test database, on a connection of its own, closed after."""
    with connections["postgres"].cursor() as cursor:
        try:
            cursor.execute(query)
            return list(cursor.fetchall())
        finally:
            connections["postgres"].close()


def _others(active: bool, since: datetime | None) -> str:
    """The other connections to the test database than the one asking (only those running a
    statement, if ``active``; only those opened after ``since``, if given), as a condition."""
    where = "datname = current_database() AND pid <> pg_backend_pid()"
    if active:
        where += " AND state = 'active'"
    if since is not None:
        where += f" AND backend_start > '{since.isoformat()}'"
    return where


def backends(*, active: bool = False, since: datetime | None = None) -> int:
    """How many other connections to the test database there are (see ``_others``)."""
    rows = on_postgres(f"SELECT count(*) FROM pg_stat_activity WHERE {_others(active, since)}")
    return int(rows[0][0])


def kill_backends(*, active: bool = False, since: datetime | None = None) -> None:
    """Terminate other connections to the test database (see ``_others``)."""
    on_postgres(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {_others(active, since)}"
    )


def postgres_now() -> datetime:
    """The PostgreSQL server's clock: what ``since`` compares with."""
    now: datetime = on_postgres("SELECT clock_timestamp()")[0][0]
    return now


async def wait_for_backends(count: int, **which: Any) -> None:
    """Until there are ``count`` other connections (``which``: as for ``backends``)."""
    for _ in range(100):
        if await asyncio.to_thread(backends, **which) == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{await asyncio.to_thread(backends, **which)} backends, not {count}")


async def test_connections_ended_while_idle_are_replaced_before_the_next_call(
    make_postgres_store: StoreFactory,
) -> None:
    # As after a restart of PostgreSQL between two calls: the loop's connection (appends)
    # and the thread's (the rest) both connect again, and no call fails.
    since = await asyncio.to_thread(postgres_now)  # the store's connections, not the test's
    store = make_postgres_store()
    [start] = await store.append([packet(0)])
    await store.save_sessions([session(position=start)])
    await wait_for_backends(2, since=since)
    await asyncio.to_thread(kill_backends, since=since)
    await wait_for_backends(0, since=since)
    [later] = await store.append([packet(1)])
    assert await store.take_session("pid-1") == session(position=start)
    assert await store.read_after(["/chat"], start) == [(later, packet(1))]


async def test_a_connection_killed_during_a_write_fails_that_write_alone(
    make_postgres_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not sent again: a statement whose reply was lost may have been written.
    store = make_postgres_store()
    [start] = await store.append([packet(0)])
    statement = store._insert_statement(connections[store.using])
    # The next INSERT first waits, so that its backend is terminated while it runs.
    slow = statement.replace(" FROM ", " FROM (SELECT pg_sleep(1)) AS pause, ", 1)
    assert slow != statement
    monkeypatch.setattr(store, "_insert_statement", lambda connection: slow)
    monkeypatch.setattr(store, "_loop_statement", None)  # made again from the slow one
    writing = asyncio.ensure_future(store.append([packet(1)]))
    await wait_for_backends(1, active=True)
    await asyncio.to_thread(kill_backends, active=True)
    with pytest.raises(DatabaseError):
        await writing
    monkeypatch.undo()
    [later] = await store.append([packet(2)])
    assert await store.read_after(["/chat"], start) == [(later, packet(2))]


async def prepared_inserts(store: DatabaseStore) -> list[str]:
    """The INSERTs prepared on the connection of the store's grouped writes."""
    link = await store._links.get()
    query = b"SELECT statement FROM pg_prepared_statements WHERE statement LIKE 'INSERT%'"
    return [row.decode() for row in await link.fetch_column(query, [])]


async def test_the_batch_insert_is_not_prepared_unless_django_prepares(
    make_postgres_store: StoreFactory,
) -> None:
    # Django leaves prepare_threshold unset, so that connection poolers work.
    store = make_postgres_store()
    for n in range(3):
        await store.append([packet(n)])
    assert await prepared_inserts(store) == []


async def test_the_batch_insert_is_prepared_after_prepare_threshold_runs(
    make_postgres_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(connections["postgres"].settings_dict["OPTIONS"], "prepare_threshold", 2)
    store = make_postgres_store()
    offsets = [(await store.append([packet(n)]))[0] for n in range(2)]
    assert await prepared_inserts(store) == []
    offsets += await store.append([packet(2), packet(3)])
    [insert] = await prepared_inserts(store)
    assert insert.encode() == store._loop_statement  # the statement the store sends
    offsets += await store.append([packet(4)])
    assert await store.read_after(["/chat"], "0") == [
        (offset, packet(n)) for n, offset in enumerate(offsets)
    ]


async def test_a_prepared_insert_deallocated_meanwhile_is_run_and_prepared_again(
    make_postgres_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As DISCARD ALL or a connection pooler would: the write does not fail, nor run twice.
    monkeypatch.setitem(connections["postgres"].settings_dict["OPTIONS"], "prepare_threshold", 0)
    store = make_postgres_store()
    [first] = await store.append([packet(0)])
    assert len(await prepared_inserts(store)) == 1
    link = await store._links.get()
    await link.fetch_column(b"DEALLOCATE ALL", [])
    assert await prepared_inserts(store) == []
    [second] = await store.append([packet(1)])
    [third] = await store.append([packet(2)])
    assert len(await prepared_inserts(store)) == 1
    assert await store.read_after(["/chat"], "0") == [
        (first, packet(0)),
        (second, packet(1)),
        (third, packet(2)),
    ]


async def test_purge_deletes_in_bounded_batches(
    make_store: StoreFactory, statements: list[tuple[int, str]]
) -> None:
    store = make_store(purge_batch=3, max_disconnection_duration=200)
    await store.append([packet(n) for n in range(10)])
    await store.save_sessions([session(f"pid-{n}") for n in range(4)])
    await asyncio.sleep(0.3)
    [young] = await store.append([packet(10)])
    await store.save_sessions([session("pid-young")])
    statements.clear()
    assert await store.purge() == 14
    deletes = [sql for _, sql in statements if sql.lstrip().upper().startswith("DELETE")]
    assert len(deletes) == 2 + 4  # sessions 3 + 1, packets 3 + 3 + 3 + 1
    assert all("IN (" in sql.upper() for sql in deletes), "each by its list of keys"
    assert await store.read_after(["/chat"], "0") == [(young, packet(10))]
    assert await store.take_session("pid-young") is not None
    assert await store.purge() == 0


async def test_a_batch_is_one_statement_and_keeps_its_order(
    make_store: StoreFactory, statements: list[tuple[int, str]]
) -> None:
    # 150 rows: past one multi-row INSERT on SQLite (100 rows), one JSON document on PostgreSQL.
    store = make_store()
    [start] = await store.append([packet(0)])
    statements.clear()
    records = [
        PacketRecord(
            "/chat",
            ["tick", n, b"\x00bin" * (n % 3), {"text": "quote ' \\ \" and \u00e9"}],
            rooms=frozenset({f"room-{n}", "all"}),
            except_rooms=frozenset({"muted"} if n % 2 else ()),
            exclude_sid="sender" if n % 5 == 0 else None,
        )
        for n in range(150)
    ]
    offsets = await store.append(records)
    inserts = [sql for _, sql in statements if sql.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == (1 if connections[store.using].vendor == "postgresql" else 2)
    assert not [sql for _, sql in statements if "SAVEPOINT" in sql.upper()]
    assert [int(o) for o in offsets] == sorted(int(o) for o in offsets)
    assert len(set(offsets)) == 150
    assert await store.read_after(["/chat"], start) == list(zip(offsets, records, strict=True))


# As on MySQL, where a multi-row INSERT gives no ids (PostgreSQL never takes this path).
@pytest.mark.parametrize("using", ["default"], ids=["sqlite"])
async def test_append_without_ids_from_a_multi_row_insert(
    make_store: StoreFactory,
    statements: list[tuple[int, str]],
    monkeypatch: pytest.MonkeyPatch,
    using: str,
) -> None:
    # As on MySQL: the store's thread makes its own connection, so the class is patched.
    features = type(connections[using].features)
    monkeypatch.setattr(features, "can_return_rows_from_bulk_insert", False)
    store = make_store()
    [start] = await store.append([packet(0)])
    statements.clear()
    records = [packet(n, rooms=frozenset({f"room-{n}"})) for n in range(1, 6)]
    offsets = await store.append(records)
    inserts = [sql for _, sql in statements if sql.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 5
    assert [int(o) for o in offsets] == sorted(int(o) for o in offsets)
    assert await store.read_after(["/chat"], start) == list(zip(offsets, records, strict=True))

    # One transaction: a failure part way leaves none of the batch.
    save = RecoveryPacket.save
    saved: list[int] = []

    def failing_third(self: RecoveryPacket, *args: Any, **kwargs: Any) -> None:
        saved.append(1)
        if len(saved) == 3:
            raise DatabaseError("the third insert fails")
        save(self, *args, **kwargs)

    monkeypatch.setattr(RecoveryPacket, "save", failing_third)
    with pytest.raises(DatabaseError):
        await store.append([packet(n) for n in range(6, 10)])
    assert await store.read_after(["/chat"], offsets[-1]) == []


@pytest.mark.parametrize("offset", [str(2**63), "9" * 40, "²", "١٢"])
async def test_offsets_no_id_can_have_read_as_none(make_store: StoreFactory, offset: str) -> None:
    store = make_store()
    await store.append([packet(0)])
    assert await store.read_after(["/chat"], offset) is None


@pytest.mark.parametrize("pid", ["nul\x00pid", "x" * 256])
async def test_a_pid_no_session_can_have_is_unknown(make_store: StoreFactory, pid: str) -> None:
    store = make_store()
    assert await store.take_session(pid) is None
    await store.save_sessions([session()])
    assert await store.take_session("pid-1") is not None  # the connection was kept


async def test_leading_zeros_are_still_an_offset(make_store: StoreFactory) -> None:
    store = make_store()
    [first, second] = await store.append([packet(0), packet(1)])
    assert await store.read_after(["/chat"], first.zfill(6)) == [(second, packet(1))]


async def test_a_session_whose_data_is_not_json_is_left_out(
    make_store: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store()
    await store.save_sessions(
        [session("pid-ok"), session("pid-bytes", data={"raw": b"\x00"}), session("pid-nan")]
    )
    await store.save_sessions([session("pid-nan", data={"x": float("nan")})])
    assert await store.take_session("pid-ok") is not None
    assert await store.take_session("pid-bytes") is None
    # The save with NaN was left out: the one before it stays.
    assert await store.take_session("pid-nan") == session("pid-nan")
    assert "pid-bytes" in caplog.text
    assert "pid-nan" in caplog.text


async def test_what_is_kept_is_what_was_given(make_store: StoreFactory) -> None:
    # The application may change its objects while the store's thread writes them.
    store = make_store()
    data = {"n": 1}
    arguments = ["tick", {"n": 1}]
    saving = asyncio.ensure_future(store.save_sessions([session(data=data)]))
    appending = asyncio.ensure_future(store.append([PacketRecord("/chat", arguments)]))
    await asyncio.sleep(0)  # both have reached the thread
    data["n"] = arguments[1]["n"] = 2  # type: ignore[index]
    await saving
    [offset] = await appending
    taken = await store.take_session("pid-1")
    assert taken is not None
    assert taken.data == {"n": 1}
    [logged] = await store.browse_packets()
    assert (logged.offset, logged.packet.data) == (offset, ["tick", {"n": 1}])


async def test_a_session_saved_twice_in_one_batch_keeps_the_last(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    await store.save_sessions([session(data={"n": 1}), session(data={"n": 2})])
    taken = await store.take_session("pid-1")
    assert taken is not None
    assert taken.data == {"n": 2}


async def test_saving_again_replaces_the_session(make_store: StoreFactory) -> None:
    store = make_store()
    await store.save_sessions([session(data={"n": 1})])
    await store.save_sessions([session(data={"n": 2}, rooms=frozenset({"x"}))])
    taken = await store.take_session("pid-1")
    assert taken is not None
    assert (taken.data, taken.rooms) == ({"n": 2}, frozenset({"x"}))


async def test_rows_carry_what_the_admin_lists_and_searches(
    make_store: StoreFactory, using: str
) -> None:
    store = make_store()
    sent = PacketRecord("/chat", ["message", b"\x01\x02"], frozenset({"b", "a"}), exclude_sid="s")
    [offset] = await store.append([sent])

    def row() -> RecoveryPacket:
        try:
            return RecoveryPacket.objects.using(using).get(pk=int(offset))
        finally:
            connections[using].close()

    found = await asyncio.to_thread(row)
    assert (found.event, found.rooms, found.room_names) == ("message", ["a", "b"], "a\nb")
    assert found.exclude_sid == "s"
    assert found.payload == '["message",{"_placeholder":true,"num":0}]'


def test_store_options_are_checked() -> None:
    with pytest.raises(ValueError, match="purge_batch"):
        DatabaseStore(purge_batch=0)
    with pytest.raises(ValueError, match="no database 'nowhere'"):
        DatabaseStore(using="nowhere")


# -- manage.py purge_recovery ---------------------------------------------------------------


def test_purge_command_refuses_when_recovery_is_off() -> None:
    with override_settings(CHANNELS_SIO={}), pytest.raises(CommandError, match="recovery is off"):
        call_command("purge_recovery")


def test_purge_command_purges_the_database_store() -> None:
    now = timezone.now()
    old = now - timedelta(minutes=5)
    for created in (old, old, old, now):
        RecoveryPacket.objects.create(namespace="/chat", payload="[]", created=created)
    for pid, expires in (("gone", now - timedelta(seconds=1)), ("kept", now + timedelta(days=1))):
        RecoverySession.objects.create(
            pid=pid, sid=pid, namespace="/", disconnected_at=old, expires_at=expires
        )
    recovery = {"store": "database", "max_disconnection_duration": 60_000}
    out = StringIO()
    with override_settings(CHANNELS_SIO={"connection_state_recovery": recovery}):
        call_command("purge_recovery", stdout=out)
    assert "Purged 4 " in out.getvalue()
    assert "DatabaseStore" in out.getvalue()
    assert RecoveryPacket.objects.count() == 1
    assert list(RecoverySession.objects.values_list("pid", flat=True)) == ["kept"]


def test_purge_command_purges_any_store() -> None:
    recovery = {"store": "memory", "max_disconnection_duration": 100}
    out, err = StringIO(), StringIO()
    with override_settings(CHANNELS_SIO={"connection_state_recovery": recovery}):
        store = conf.recovery().store  # type: ignore[union-attr]
        async_to_sync(store.append)([packet(0)])
        async_to_sync(asyncio.sleep)(0.15)
        call_command("purge_recovery", stdout=out, stderr=err)
    assert "Purged 1 " in out.getvalue()
    assert "MemoryStore" in out.getvalue()
    assert "memory" in err.getvalue()  # says that a server's memory is out of its reach


ODD = ['a"b', "c\\d", "{e,f}", " g ", "NULL", "", "h\ni", "ünï", '\\"', '","']


@pytest.mark.parametrize("outside", [False, True], ids=["on the loop", "in the thread"])
async def test_text_in_every_column_is_written_as_given(
    make_store: StoreFactory, using: str, outside: bool
) -> None:
    # On PostgreSQL a batch travels as one JSON document unpacked by the server: quotes,
    # backslashes, braces, commas, blanks and the word NULL are text like any other.
    store = make_store()
    sent = [
        PacketRecord(
            f"/{odd}",
            [odd, {odd: [odd, "\\u0041"]}, b"\x00\\" if n % 2 else odd],
            frozenset({odd, "plain"}),
            frozenset({odd + "x"}),
            exclude_sid=odd or None,
        )
        for n, odd in enumerate(ODD)
    ]
    offsets = await (store.append_outside if outside else store.append)(sent)
    assert len(offsets) == len(sent)
    read = await store.read_after([packet.namespace for packet in sent], "0")
    assert read == list(zip(offsets, sent, strict=True))

    def rows() -> list[tuple[str, str, str]]:
        try:
            found = RecoveryPacket.objects.using(using).order_by("pk")
            return [(row.event, row.room_names, row.exclude_sid) for row in found]
        finally:
            connections[using].close()

    assert await asyncio.to_thread(rows) == [
        (odd, "\n".join(sorted({odd, "plain"})), odd) for odd in ODD
    ]
