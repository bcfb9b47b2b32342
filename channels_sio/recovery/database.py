"""The database store: the packet log and the kept sessions in Django models
(:class:`~channels_sio.models.RecoveryPacket`, :class:`~channels_sio.models.RecoverySession`),
on any database Django supports. It survives restarts, every process shares it, and the admin
reads it.

The ORM is synchronous: every call runs in a thread of the store's own (one), which keeps its
database connection from one grouped write to the next rather than opening one per call.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any, TypeVar, cast

from django.db import DatabaseError, connections, transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from ..dbthread import DatabaseThread
from ..models import RecoveryPacket, RecoverySession
from ..socketio.adapter import SessionRecord
from ..socketio.packet import dump_json
from .perloop import PerLoop
from .store import (
    KeptSession,
    LoggedPacket,
    PacketRecord,
    RecoveryStore,
    SetMemo,
    load_data,
    pack_buffers,
    serialized,
    unpack_buffers,
)

if TYPE_CHECKING:
    from django.db.models import Field

    from .pglink import PostgresLink

__all__ = ["DatabaseStore"]

logger = logging.getLogger("channels_sio.recovery")

T = TypeVar("T")

#: The largest id a 64-bit auto field holds: a greater offset was never given (SQLite cannot
#: even compare with it).
_MAX_ID = 2**63 - 1

#: RecoverySession.pid's max_length.
_PID_LENGTH = 255


_PACKET_COLUMNS = (
    "id",
    "namespace",
    "payload",
    "attachments",
    "rooms",
    "except_rooms",
    "exclude_sid",
)
_SESSION_UPDATES = [
    "sid",
    "namespace",
    "rooms",
    "data",
    "user_id",
    "position",
    "disconnected_at",
    "expires_at",
]


def _parse_offset(offset: str) -> int | None:
    """The id an offset stands for; None unless it is a plain non-negative decimal number."""
    if not (offset.isascii() and offset.isdigit()):
        return None
    value = int(offset)
    return value if value <= _MAX_ID else None


def _packet_fields(packet: PacketRecord) -> dict[str, Any]:
    """The columns of a packet's row but its creation time, all immutable or new: made on the
    event loop, where the application may change the objects it emitted."""
    text, buffers = serialized(packet)
    first = packet.data[0] if packet.data else ""
    rooms = sorted(packet.rooms)
    return {
        "namespace": packet.namespace,
        "event": first if isinstance(first, str) else "",
        "payload": text,
        "attachments": pack_buffers(buffers),
        "rooms": rooms,
        "except_rooms": sorted(packet.except_rooms),
        "room_names": "\n".join(rooms),
        "exclude_sid": packet.exclude_sid or "",
    }


def _room_columns(rooms: frozenset[str]) -> tuple[str, str]:
    """A room set as the PostgreSQL document holds it: the JSON list, and the names one per
    line as a JSON string (``room_names``)."""
    ordered = sorted(rooms)
    return dump_json(ordered)[0], encode_basestring("\n".join(ordered))


def _document_row(packet: PacketRecord, room_columns: SetMemo[tuple[str, str]]) -> str:
    """A packet's row but its creation time as a JSON object whose keys are
    ``_DOCUMENT_KEYS``: made on the event loop (where the application may change the objects
    it emitted), as text, without a dict or a JSON encoder call per row. The payload goes in
    as the JSON it is, not as a string of it: the ``json`` type keeps a value's text as
    written, so the server takes it back out unchanged, and neither side escapes it."""
    text, buffers = serialized(packet)
    first = packet.data[0] if packet.data else ""
    rooms, names = room_columns[packet.rooms]
    except_rooms = room_columns[packet.except_rooms][0]
    attachments = base64.b64encode(pack_buffers(buffers)).decode() if buffers else ""
    return (
        f'{{"a":{encode_basestring(packet.namespace)},'
        f'"b":{encode_basestring(first if isinstance(first, str) else "")},'
        f'"c":{text},"d":"{attachments}",'
        f'"e":{rooms},"f":{except_rooms},"g":{names},'
        f'"h":{encode_basestring(packet.exclude_sid or "")}}}'
    )


#: The columns of a packet's row that ``_packet_fields`` gives, in the order they are written.
_INSERT_COLUMNS = (
    "namespace",
    "event",
    "payload",
    "attachments",
    "rooms",
    "except_rooms",
    "room_names",
    "exclude_sid",
)
#: The PostgreSQL statement's document: a row's key for each of ``_INSERT_COLUMNS`` (one
#: letter: the server matches every key of every row), and the type the server reads it as:
#: base64 text for the binary column, JSON for the jsonb ones, and the ``json`` type for the
#: payload, whose text it keeps exactly (key order, duplicate keys, number spelling).
_DOCUMENT_KEYS = dict(zip(_INSERT_COLUMNS, "abcdefgh", strict=True))
_DOCUMENT_TYPES = {"payload": "json", "rooms": "jsonb", "except_rooms": "jsonb"}
#: Rows per INSERT: 9 values each keeps a statement under SQLite's 999 variables.
_INSERT_CHUNK = 100


def _driver_cursor(raw: Any) -> Any:
    """A cursor of the driver's connection ``raw`` that binds parameters on the server when
    the driver can: psycopg 3's plain cursor (Django gives its client-side one)."""
    try:
        import psycopg
    except ImportError:  # psycopg2
        return raw.cursor()
    return psycopg.Cursor(raw) if isinstance(raw, psycopg.Connection) else raw.cursor()


def _offsets(offsets: list[str], count: int) -> list[str]:
    """The offsets of ``count`` packets, from the ids their INSERT returned."""
    if len(offsets) != count:
        raise DatabaseError(f"{count} packets written, {len(offsets)} ids returned")
    return offsets


async def _close_link(link: PostgresLink) -> None:
    await link.close()


def _returns_ids(connection: Any) -> bool:
    """Whether statements can end with ``RETURNING`` (PostgreSQL, SQLite 3.35+, MariaDB)."""
    return bool(connection.features.can_return_rows_from_bulk_insert)


def _packet_record(
    namespace: str,
    payload: str,
    attachments: bytes | memoryview,
    rooms: list[str],
    except_rooms: list[str],
    exclude_sid: str,
) -> PacketRecord:
    # PostgreSQL gives binary columns as memoryview, SQLite as bytes.
    return PacketRecord(
        namespace=namespace,
        data=load_data(payload, unpack_buffers(bytes(attachments))),
        rooms=frozenset(rooms),
        except_rooms=frozenset(except_rooms),
        exclude_sid=exclude_sid or None,
    )


def _session_record(row: RecoverySession) -> SessionRecord:
    return SessionRecord(
        pid=row.pid,
        sid=row.sid,
        namespace=row.namespace,
        rooms=frozenset(row.rooms),
        data=row.data,
        user_id=row.user_id,
        position=row.position,
    )


def _json_copy(data: dict[str, Any]) -> dict[str, Any] | None:
    """A copy of ``socket.data`` as JSON gives it back; None when it is not JSON."""
    try:
        copy: dict[str, Any] = json.loads(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError):
        return None
    return copy


class DatabaseStore(RecoveryStore):
    """The packet log and sessions in the database ``using`` (an alias of ``DATABASES``).

    Offsets are the packets' ids. There is no length cap: packets go by age, ``purge_batch``
    rows per DELETE.
    """

    def __init__(self, *, using: str = "default", purge_batch: int = 1000, **options: Any) -> None:
        super().__init__(**options)
        if using not in connections:
            raise ValueError(f"no database {using!r} in DATABASES")
        if purge_batch < 1:
            raise ValueError(f"purge_batch must be at least 1, not {purge_batch!r}")
        self.using = using
        self.purge_batch = purge_batch
        self._thread = DatabaseThread(using, "channels-sio-recovery")
        #: Whether ``using`` is PostgreSQL, and whether its grouped writes run on the event
        #: loop (psycopg 3), known at the first append.
        self._postgresql: bool | None = None
        self._on_loop = False
        #: PostgreSQL's INSERT of a batch, made at the first: Django's, and libpq's.
        self._statement: str | None = None
        self._loop_statement: bytes | None = None
        self._room_columns = SetMemo(_room_columns)
        #: The grouped writes' connection per event loop, on PostgreSQL with psycopg 3.
        self._links: PerLoop[PostgresLink] = PerLoop(self._new_link, _close_link)

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        return await self._thread.run(function, *args)

    async def close(self) -> None:
        """Finish the writes in flight, then close the store's connections and end its
        thread; a later call opens them again."""
        await super().close()
        await self._links.close()
        await self._thread.close()

    # -- the packet log -------------------------------------------------------------------

    async def append(self, packets: Sequence[PacketRecord]) -> list[str]:
        """Write packets as one statement: on PostgreSQL with psycopg 3, on the running event
        loop (:mod:`.pglink`), elsewhere in the store's thread."""
        if self._postgresql is None:
            self._detect()
        if not self._on_loop:
            return await self.append_outside(packets)
        link = await self._links.get()
        statement = self._loop_statement
        if statement is None:
            # libpq's placeholders; the time is sent as text, so it says what it is.
            text = self._insert_statement(connections[self.using]) % ("$1::timestamptz", "$2")
            statement = self._loop_statement = text.encode()
        created = datetime.now(UTC).isoformat().encode()
        ids = await link.fetch_column(statement, [created, self._document(packets).encode()])
        return _offsets([id_.decode() for id_ in ids], len(packets))

    async def append_outside(self, packets: Sequence[PacketRecord]) -> list[str]:
        """In the store's thread, whose connection outlives the caller's loop."""
        if self._postgresql is None:
            self._detect()
        if self._postgresql:
            return await self._run(self._insert_document, self._document(packets), len(packets))
        return await self._run(self._append, [_packet_fields(packet) for packet in packets])

    def _detect(self) -> None:
        self._postgresql = connections[self.using].vendor == "postgresql"
        if self._postgresql:
            # Imported here: the module imports a driver, which SQLite users may not have.
            from django.db.backends.postgresql.psycopg_any import is_psycopg3

            self._on_loop = is_psycopg3

    def _document(self, packets: Sequence[PacketRecord]) -> str:
        room_columns = self._room_columns
        return "[" + ",".join([_document_row(packet, room_columns) for packet in packets]) + "]"

    def _new_link(self) -> PostgresLink:
        # Imported here: the module imports psycopg, which other databases' users may lack.
        from .pglink import PostgresLink

        return PostgresLink(self.using)

    def _append(self, packets: list[dict[str, Any]]) -> list[str]:
        now = timezone.now()
        connection = connections[self.using]
        if _returns_ids(connection):
            return self._insert_returning(connection, packets, now)
        # A multi-row INSERT does not give its ids here (MySQL, MariaDB < 10.5, Oracle): one
        # INSERT each, still one transaction.
        rows = [RecoveryPacket(**fields, created=now) for fields in packets]
        with transaction.atomic(using=self.using):
            for row in rows:
                row.save(using=self.using, force_insert=True)
        return [str(row.pk) for row in rows]

    def _insert_document(self, document: str, count: int) -> list[str]:
        """PostgreSQL: the batch as one JSON document (rows made by ``_document_row``) that
        the server unpacks into rows, in one statement (atomic by itself: no BEGIN and COMMIT
        round trips). psycopg dumps a parameter, or an array element, for several
        microseconds each, more than the server takes to insert it; one JSON text is one
        dump, whatever the batch.

        The statement goes through a cursor of the driver's own, with the document bound on
        the server where the driver can (psycopg 3), rather than through Django's cursor:
        Django's binds parameters in the client, which escapes the whole document into the
        SQL text, and wraps each call in its debug and instrumentation layers, all per batch
        of emits. Errors are still Django's ``DatabaseError``."""
        connection = connections[self.using]
        connection.ensure_connection()
        with connection.wrap_database_errors, _driver_cursor(connection.connection) as cursor:
            cursor.execute(self._insert_statement(connection), [timezone.now(), document])
            return _offsets([str(found[0]) for found in cursor.fetchall()], count)

    def _insert_statement(self, connection: Any) -> str:
        statement = self._statement
        if statement is None:
            quote = connection.ops.quote_name
            keys = _DOCUMENT_KEYS.values()
            # One parse of each row's object (json_to_recordset); extracting the fields of a
            # ``json`` array element by index scans its text once per field.
            types = ", ".join(
                f"{key} {_DOCUMENT_TYPES.get(name, 'text')}" for name, key in _DOCUMENT_KEYS.items()
            )
            values = ", ".join(
                f"decode({key}, 'base64')"
                if name == "attachments"
                else f"{key}::text"
                if name == "payload"
                else key
                for name, key in _DOCUMENT_KEYS.items()
            )
            columns = ", ".join(quote(name) for name in (*_INSERT_COLUMNS, "created"))
            statement = self._statement = (
                f"INSERT INTO {quote(RecoveryPacket._meta.db_table)} ({columns}) "
                f"SELECT {values}, %s FROM ROWS FROM (json_to_recordset(%s::json) AS ({types})) "
                f"WITH ORDINALITY AS d({', '.join(keys)}, n) ORDER BY n RETURNING {quote('id')}"
            )
        return statement

    def _insert_returning(
        self, connection: Any, packets: list[dict[str, Any]], now: datetime
    ) -> list[str]:
        """``INSERT ... RETURNING id`` per chunk of rows, values prepared by the fields
        themselves: a model instance per row costs several times what the database does."""
        meta = RecoveryPacket._meta
        fields = [cast("Field[Any, Any]", meta.get_field(name)) for name in _INSERT_COLUMNS]
        created = cast("Field[Any, Any]", meta.get_field("created")).get_db_prep_save(
            now, connection
        )
        rows = [
            [field.get_db_prep_save(packet[field.name], connection) for field in fields]
            for packet in packets
        ]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(name) for name in (*_INSERT_COLUMNS, "created"))
        one = "(" + ", ".join(["%s"] * (len(fields) + 1)) + ")"
        offsets: list[str] = []
        chunks = [
            rows[start : start + _INSERT_CHUNK] for start in range(0, len(rows), _INSERT_CHUNK)
        ]
        atomic: AbstractContextManager[Any] = (
            transaction.atomic(using=self.using) if len(chunks) > 1 else nullcontext()
        )
        with atomic, connection.cursor() as cursor:
            for chunk in chunks:
                cursor.execute(
                    f"INSERT INTO {quote(meta.db_table)} ({columns}) "
                    f"VALUES {', '.join([one] * len(chunk))} RETURNING {quote('id')}",
                    [value for row in chunk for value in (*row, created)],
                )
                offsets.extend(str(found[0]) for found in cursor.fetchall())
        return offsets

    async def end(self) -> str:
        return await self._run(self._end)

    def _end(self) -> str:
        last = RecoveryPacket.objects.using(self.using).aggregate(last=Max("id"))["last"]
        return str(last or 0)

    async def read_after(
        self, namespaces: Sequence[str], after: str
    ) -> list[tuple[str, PacketRecord]] | None:
        start = _parse_offset(after)
        if start is None:
            return None
        return await self._run(self._read_after, list(namespaces), start)

    def _read_after(
        self, namespaces: list[str], start: int
    ) -> list[tuple[str, PacketRecord]] | None:
        # One more than the limit: whether there are too many is known without counting.
        rows = list(
            RecoveryPacket.objects.using(self.using)
            .filter(namespace__in=namespaces, id__gt=start)
            .order_by("id")
            .values_list(*_PACKET_COLUMNS)[: self.replay_limit + 1]
        )
        if len(rows) > self.replay_limit:
            return None
        return [(str(row[0]), _packet_record(*row[1:])) for row in rows]

    # -- sessions -------------------------------------------------------------------------

    async def save_sessions(self, sessions: Sequence[SessionRecord]) -> None:
        rows = []
        # One row per pid: an upsert may not touch a row twice (PostgreSQL refuses it).
        for session in {session.pid: session for session in sessions}.values():
            # Copied here, on the event loop: the application may still change socket.data.
            data = _json_copy(session.data)
            if data is None:
                # Left out rather than failing the whole batch: that socket starts afresh.
                logger.warning("session %s not kept: socket.data is not JSON", session.pid)
                continue
            rows.append(
                {
                    "pid": session.pid,
                    "sid": session.sid,
                    "namespace": session.namespace,
                    "rooms": sorted(session.rooms),
                    "data": data,
                    "user_id": session.user_id,
                    "position": session.position,
                }
            )
        if rows:
            await self._run(self._save_sessions, rows)

    def _save_sessions(self, sessions: list[dict[str, Any]]) -> None:
        now = timezone.now()
        expires = now + timedelta(milliseconds=self.max_disconnection_duration)
        rows = [
            RecoverySession(**fields, disconnected_at=now, expires_at=expires)
            for fields in sessions
        ]
        unplaced = [row for row in rows if row.position is None]
        if unplaced:
            end = self._end()
            for row in unplaced:
                row.position = end
        RecoverySession.objects.using(self.using).bulk_create(
            rows, update_conflicts=True, unique_fields=["pid"], update_fields=_SESSION_UPDATES
        )

    async def discard_sessions(self, pids: Sequence[str]) -> None:
        if pids:
            await self._run(self._discard_sessions, list(pids))

    def _discard_sessions(self, pids: list[str]) -> None:
        RecoverySession.objects.using(self.using).filter(pid__in=pids).delete()

    async def take_session(self, pid: str) -> SessionRecord | None:
        if len(pid) > _PID_LENGTH or "\x00" in pid:
            # Never kept (pids are made here), and PostgreSQL refuses NUL: a client's pid is
            # not a reason to fail a query and drop the connection.
            return None
        return await self._run(self._take_session, pid)

    def _take_session(self, pid: str) -> SessionRecord | None:
        sessions = RecoverySession.objects.using(self.using)
        connection = connections[self.using]
        if _returns_ids(connection):
            # One statement, one round trip: the session is this caller's only if its DELETE
            # returned it (a restore costs a round trip for the session, one for the packets).
            quote = connection.ops.quote_name
            table = quote(RecoverySession._meta.db_table)
            column = quote("pid")  # the model's own column name
            taken = list(
                sessions.raw(f"DELETE FROM {table} WHERE {column} = %s RETURNING *", [pid])
            )
            if not taken or taken[0].expires_at <= timezone.now():
                return None
            return _session_record(taken[0])
        row = sessions.filter(pid=pid).first()
        if row is None:
            return None
        # Several processes may have read the row: it is theirs only if their delete removed it.
        deleted, _ = sessions.filter(pk=row.pk).delete()
        if not deleted or row.expires_at <= timezone.now():
            return None
        return _session_record(row)

    # -- purging --------------------------------------------------------------------------

    async def purge(self) -> int:
        now = timezone.now()
        horizon = now - timedelta(milliseconds=self.max_disconnection_duration)
        expired = RecoverySession.objects.using(self.using).filter(expires_at__lte=now)
        old = RecoveryPacket.objects.using(self.using).filter(created__lt=horizon)
        removed = 0
        for rows in (expired, old):
            # A call per batch: the store's writes run between them, not after the whole purge.
            while True:
                found, deleted = await self._run(self._purge_batch, rows)
                removed += deleted
                if found < self.purge_batch:
                    break
        return removed

    def _purge_batch(self, rows: QuerySet[Any]) -> tuple[int, int]:
        # The keys first, then a DELETE of those: a bounded DELETE on every database (MySQL
        # has no LIMIT in a subquery).
        keys = list(rows.values_list("pk", flat=True)[: self.purge_batch])
        if not keys:
            return 0, 0
        deleted, _ = rows.model.objects.using(self.using).filter(pk__in=keys).delete()
        return len(keys), deleted

    # -- browsing -------------------------------------------------------------------------

    async def browse_packets(
        self, *, namespace: str | None = None, limit: int = 100
    ) -> list[LoggedPacket]:
        return await self._run(self._browse_packets, namespace, limit)

    def _browse_packets(self, namespace: str | None, limit: int) -> list[LoggedPacket]:
        rows = RecoveryPacket.objects.using(self.using).order_by("-id")
        if namespace is not None:
            rows = rows.filter(namespace=namespace)
        return [
            LoggedPacket(str(row[0]), _packet_record(*row[1:-1]), row[-1].timestamp())
            for row in rows.values_list(*_PACKET_COLUMNS, "created")[:limit]
        ]

    async def browse_sessions(
        self, *, namespace: str | None = None, search: str | None = None, limit: int = 100
    ) -> list[KeptSession]:
        return await self._run(self._browse_sessions, namespace, search, limit)

    def _browse_sessions(
        self, namespace: str | None, search: str | None, limit: int
    ) -> list[KeptSession]:
        rows = RecoverySession.objects.using(self.using).filter(expires_at__gt=timezone.now())
        if namespace is not None:
            rows = rows.filter(namespace=namespace)
        if search:
            rows = rows.filter(Q(pid__startswith=search) | Q(sid__startswith=search))
        return [
            KeptSession(_session_record(row), row.expires_at.timestamp())
            for row in rows.order_by("-expires_at")[:limit]
        ]
