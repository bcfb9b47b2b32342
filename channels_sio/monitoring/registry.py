"""The registry writer: what one flush of a node writes, and what its clean stop writes.

A flush is made on the event loop from the tracker's snapshot (:class:`FlushBuilder`) and
written in the monitor's thread (:func:`write_flush`): one transaction of a fixed number of
statements, whatever the number of sessions (rows are grouped, ``BATCH`` per statement):

* the node row: an UPDATE (an upsert on a full flush);
* the closed sessions: a DELETE of their sockets, a DELETE of them;
* the sessions that changed or appeared: one upsert (INSERT ... ON CONFLICT DO UPDATE);
* the sockets of the sessions whose sockets changed: a DELETE of those they lost, an upsert;
* one NodeSample row.

Each part is skipped when it has nothing to write. A full flush (the first one, and the one
after any failure) writes every live session, and deletes this node's rows of sessions that
are not live any more; so a failed flush loses nothing but time.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Model
from django.utils import timezone

from ..models import Alarm, Lease, LiveSession, LiveSocket, Node, NodeSample
from .tracker import NodeReport, SessionRow, Snapshot, SocketRow

__all__ = [
    "BATCH",
    "Flush",
    "FlushBuilder",
    "NodeFields",
    "NodeNotCurrent",
    "as_datetime",
    "delete_sessions",
    "missing_tables",
    "write_flush",
    "write_goodbye",
]

#: Rows per statement (SQLite's Django backend groups fewer: its parameter limit).
BATCH = 500
#: Bounds of a node's report: the latest events, the addresses with the most events, the
#: sessions named per address, the orphans.
MAX_EVENTS = 100
MAX_ADDRESSES = 100
MAX_SIDS = 20
MAX_ORPHANS = 50

#: The models of the registry: their tables must exist for a node to write anything.
REGISTRY_MODELS: tuple[type[Model], ...] = (Node, LiveSession, LiveSocket, NodeSample, Lease, Alarm)

_NODE_UPDATES = [
    "host",
    "pid",
    "channel",
    "started_at",
    "last_heartbeat",
    "gone_at",
    "sessions",
    "sockets",
    "packets_in_per_s",
    "packets_out_per_s",
    "report",
]
_SESSION_UPDATES = [
    "node",
    "state",
    "transport",
    "upgrade",
    "address",
    "user_agent",
    "user_id",
    "username",
    "connected_at",
    "last_pong_at",
    "rtt_ms",
    "packets_in",
    "packets_out",
    "bytes_in",
    "bytes_out",
    "queued",
    "namespaces",
    "socket_ids",
    "rooms",
    "fingerprint",
    "handshake",
    "updated_at",
]
_SOCKET_UPDATES = ["session", "namespace", "rooms", "pid", "recovered", "connected_at"]

#: The close kinds the storm rule counts (the rest, "slow", are the slow-consumer rule's).
STORM_KINDS = ("parse error", "refused")
#: How an event with no known address is listed.
UNKNOWN_ADDRESS = "(unknown)"

M = TypeVar("M", bound=Model)
T = TypeVar("T")


class NodeNotCurrent(Exception):
    """This node's row is missing, or marked gone by the leak rules (it stopped flushing for
    a while): the next flush must write everything again."""


# -- values the database takes ------------------------------------------------------------


def as_datetime(seconds: float) -> datetime:
    """Seconds since the epoch as a datetime for a DateTimeField (naive when USE_TZ is off)."""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment if settings.USE_TZ else timezone.make_naive(moment)


def _text(value: str) -> str:
    """``value`` as every database stores it: PostgreSQL refuses NUL characters and lone
    surrogates (a client's headers and namespace names can hold both)."""
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _fit(value: str, length: int) -> str:
    """``value`` cleaned and cut to a column of ``length`` characters."""
    return _text(value)[:length]


def _fingerprint(value: str) -> str:
    """A fingerprint that fits its column: a long one (a long user agent) is shortened with a
    digest of the whole, so that two long ones stay apart."""
    value = _text(value)
    if len(value) <= 255:
        return value
    return f"{value[:230]}#{hashlib.sha256(value.encode()).hexdigest()[:24]}"


def _clean(value: Any) -> Any:
    """A JSON value with every string cleaned (:func:`_text`)."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {_text(str(key)): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value


def batches(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- what a flush carries -----------------------------------------------------------------


@dataclass(frozen=True)
class NodeFields:
    """The node row of one flush. Times are seconds since the epoch."""

    id: str
    host: str
    pid: int
    channel: str
    started_at: float
    heartbeat: float
    sessions: int
    sockets: int
    packets_in_per_s: float
    packets_out_per_s: float
    report: dict[str, Any]


@dataclass
class Flush:
    """One flush: the node row, the sessions to write, the sockets of those whose sockets
    changed, the sessions that closed; ``live`` (a full flush only) names every live session,
    and this node's rows of any other are deleted."""

    node: NodeFields
    sessions: list[SessionRow]
    sockets: dict[str, tuple[SocketRow, ...]]
    closed: list[str]
    live: frozenset[str] | None = None

    @property
    def full(self) -> bool:
        return self.live is not None


class FlushBuilder:
    """Turns the tracker's snapshots into flushes, on the event loop. Keeps between flushes
    what the node row needs: the packet counts of each session (for packets/s), the sockets
    written (so unchanged ones are not written again), and since when each orphan of the
    audit has been there (a session in the middle of closing is not a leak: only orphans
    older than ``orphan_grace`` are reported)."""

    def __init__(
        self,
        *,
        node_id: str,
        host: str,
        pid: int,
        channel: str,
        started_at: float,
        storm_window: float,
        slow_window: float,
        orphan_grace: float,
    ) -> None:
        self.node_id = node_id
        self.host = host
        self.pid = pid
        self.channel = channel
        self.started_at = started_at
        self.storm_window = storm_window
        self.slow_window = slow_window
        self.orphan_grace = orphan_grace
        self._counts: dict[str, tuple[int, int]] = {}
        self._sockets: dict[str, tuple[SocketRow, ...]] = {}
        self._orphans: dict[tuple[str, str, str], float] = {}
        self._last = started_at

    def build(self, snapshot: Snapshot, now: float, *, live: frozenset[str] | None) -> Flush:
        """The flush of ``snapshot``, taken at ``now``; a full one when ``live`` is given
        (the snapshot then lists every live session as changed)."""
        full = live is not None
        if live is not None:
            self._sockets.clear()
            self._counts = {sid: counts for sid, counts in self._counts.items() if sid in live}
        for sid in snapshot.closed:
            self._counts.pop(sid, None)
            self._sockets.pop(sid, None)
        packets_in = packets_out = 0
        sockets: dict[str, tuple[SocketRow, ...]] = {}
        for row in snapshot.changed:
            before_in, before_out = self._counts.get(row.sid, (0, 0))
            packets_in += max(0, row.packets_in - before_in)
            packets_out += max(0, row.packets_out - before_out)
            self._counts[row.sid] = (row.packets_in, row.packets_out)
            if full or self._sockets.get(row.sid, ()) != row.sockets:
                sockets[row.sid] = row.sockets
                self._sockets[row.sid] = row.sockets
        elapsed = max(now - self._last, 1e-3)
        self._last = now
        report = snapshot.report
        node = NodeFields(
            id=self.node_id,
            host=self.host,
            pid=self.pid,
            channel=self.channel,
            started_at=self.started_at,
            heartbeat=now,
            sessions=report.sessions,
            sockets=report.sockets,
            packets_in_per_s=round(packets_in / elapsed, 3),
            packets_out_per_s=round(packets_out / elapsed, 3),
            report=self.report(report, now),
        )
        return Flush(node, list(snapshot.changed), sockets, list(snapshot.closed), live)

    def report(self, report: NodeReport, now: float) -> dict[str, Any]:
        """The node row's ``report``: what the leak rules read of this node besides its
        sessions, bounded whatever happens (see docs/admin.md)."""
        storm: dict[str, Counter[str]] = {}
        slow: dict[str, dict[str, Any]] = {}
        for event in report.events:
            address = event.address or UNKNOWN_ADDRESS
            if event.kind in STORM_KINDS:
                if event.at >= now - self.storm_window:
                    storm.setdefault(address, Counter())[event.kind] += 1
            elif event.kind == "slow" and event.at >= now - self.slow_window:
                entry = slow.setdefault(address, {"count": 0, "sids": [], "last": 0.0})
                entry["count"] += 1
                entry["last"] = max(entry["last"], event.at)
                if event.sid and len(entry["sids"]) < MAX_SIDS:
                    entry["sids"].append(event.sid)
        busiest = sorted(storm, key=lambda address: -sum(storm[address].values()))
        loudest = sorted(slow, key=lambda address: -slow[address]["count"])
        cleaned: dict[str, Any] = _clean(
            {
                "at": now,
                "packets_in": report.packets_in,
                "packets_out": report.packets_out,
                "closes": report.closes,
                "events": [asdict(event) for event in report.events[-MAX_EVENTS:]],
                "orphans": self._lasting_orphans(report.orphans, now),
                "storm": {address: dict(storm[address]) for address in busiest[:MAX_ADDRESSES]},
                "slow": {address: slow[address] for address in loudest[:MAX_ADDRESSES]},
            }
        )
        return cleaned

    def _lasting_orphans(self, found: Iterable[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        seen: dict[tuple[str, str, str], float] = {}
        lasting: list[dict[str, Any]] = []
        for orphan in found:
            key = (str(orphan.get("what")), str(orphan.get("id")), str(orphan.get("namespace")))
            since = seen[key] = self._orphans.get(key, now)
            if now - since >= self.orphan_grace and len(lasting) < MAX_ORPHANS:
                lasting.append({**orphan, "since": since})
        self._orphans = seen
        return lasting


# -- writing (in the monitor's thread) ----------------------------------------------------


def missing_tables(using: str) -> list[str]:
    """The registry's tables that database ``using`` lacks (not migrated)."""
    connection = connections[using]
    with connection.cursor() as cursor:
        existing = {name.lower() for name in connection.introspection.table_names(cursor)}
    return [
        model._meta.db_table
        for model in REGISTRY_MODELS
        if model._meta.db_table.lower() not in existing
    ]


def _upsert(using: str, model: type[M], rows: list[M], unique: str, fields: list[str]) -> None:
    if not rows:
        return
    # MySQL and MariaDB name no conflict target: the primary key is the only unique key.
    target = [unique] if connections[using].features.supports_update_conflicts_with_target else None
    for chunk in batches(rows):
        model._default_manager.using(using).bulk_create(
            list(chunk), update_conflicts=True, unique_fields=target, update_fields=fields
        )


def _node_values(node: NodeFields) -> dict[str, Any]:
    return {
        "host": _fit(node.host, 255),
        "pid": node.pid,
        "channel": _fit(node.channel, 255),
        "started_at": as_datetime(node.started_at),
        "last_heartbeat": as_datetime(node.heartbeat),
        "gone_at": None,
        "sessions": node.sessions,
        "sockets": node.sockets,
        "packets_in_per_s": node.packets_in_per_s,
        "packets_out_per_s": node.packets_out_per_s,
        "report": node.report,
    }


def _session(row: SessionRow, node_id: str, now: datetime) -> LiveSession:
    socket_ids = {socket.id for socket in row.sockets}
    rooms = sorted({room for socket in row.sockets for room in socket.rooms} - socket_ids)
    return LiveSession(
        sid=row.sid,
        node_id=node_id,
        state=LiveSession.State.LIVE,
        transport=_fit(row.transport, 16),
        upgrade=_fit(row.upgrade, 16),
        address=_fit(row.address, 64),
        user_agent=_text(row.user_agent),
        user_id=None if row.user_id is None else _fit(row.user_id, 255),
        username=_fit(row.username, 255),
        connected_at=as_datetime(row.connected_at),
        last_pong_at=None if row.last_pong_at is None else as_datetime(row.last_pong_at),
        rtt_ms=None if row.rtt is None else round(row.rtt * 1000, 3),
        packets_in=row.packets_in,
        packets_out=row.packets_out,
        bytes_in=row.bytes_in,
        bytes_out=row.bytes_out,
        queued=row.queued,
        namespaces=_text("\n".join(sorted({socket.namespace for socket in row.sockets}))),
        socket_ids="\n".join(socket.id for socket in row.sockets),
        rooms=_text("\n".join(rooms)),
        fingerprint=_fingerprint(row.fingerprint),
        handshake=_clean(row.handshake),
        updated_at=now,
    )


def _socket(row: SocketRow, sid: str) -> LiveSocket:
    return LiveSocket(
        id=_fit(row.id, 64),
        session_id=sid,
        namespace=_fit(row.namespace, 255),
        rooms=_clean(sorted(room for room in row.rooms if room != row.id)),
        pid=_fit(row.pid or "", 64),
        recovered=row.recovered,
        connected_at=as_datetime(row.connected_at),
    )


def delete_sessions(using: str, sids: Sequence[str]) -> None:
    """Delete sessions and their sockets: two statements per ``BATCH`` sessions.

    ``_raw_delete``: the collector of ``QuerySet.delete()`` would read every row first (and
    send delete signals for rows that are a cache of the nodes' memory)."""
    for chunk in batches(sids):
        LiveSocket.objects.using(using).filter(session_id__in=chunk)._raw_delete(using)
        LiveSession.objects.using(using).filter(sid__in=chunk)._raw_delete(using)


def _write_sockets(using: str, sockets: dict[str, tuple[SocketRow, ...]]) -> None:
    items = list(sockets.items())
    for chunk in batches(items):
        rows = [_socket(socket, sid) for sid, rows in chunk for socket in rows]
        gone = LiveSocket.objects.using(using).filter(session_id__in=[sid for sid, _ in chunk])
        gone.exclude(id__in=[row.id for row in rows])._raw_delete(using)
        _upsert(using, LiveSocket, rows, "id", _SOCKET_UPDATES)


def _delete_stale(using: str, node_id: str, live: frozenset[str]) -> None:
    known = LiveSession.objects.using(using).filter(node_id=node_id)
    delete_sessions(using, sorted(set(known.values_list("sid", flat=True)) - live))


def write_flush(using: str, flush: Flush) -> None:
    """Write ``flush`` in one transaction; NodeNotCurrent (nothing written) when this node's
    row is missing or marked gone and the flush is not a full one."""
    node = flush.node
    now = as_datetime(node.heartbeat)
    with transaction.atomic(using=using):
        values = _node_values(node)
        if flush.live is None:
            nodes = Node.objects.using(using).filter(pk=node.id, gone_at__isnull=True)
            if not nodes.update(**values):
                raise NodeNotCurrent(node.id)
        else:
            _upsert(using, Node, [Node(id=node.id, **values)], "id", _NODE_UPDATES)
            _delete_stale(using, node.id, flush.live)
        if flush.closed:
            delete_sessions(using, flush.closed)
        sessions = [_session(row, node.id, now) for row in flush.sessions]
        _upsert(using, LiveSession, sessions, "sid", _SESSION_UPDATES)
        if flush.sockets:
            _write_sockets(using, flush.sockets)
        NodeSample.objects.using(using).create(node=node.id, at=now, sessions=node.sessions)


def write_goodbye(using: str, node_id: str, now: datetime) -> None:
    """A clean stop: this node's sessions are deleted and its row marked gone (without
    sessions, which is no alarm); the rules purge the row after ``retention``."""
    with transaction.atomic(using=using):
        sockets = LiveSocket.objects.using(using).filter(session__node_id=node_id)
        sockets._raw_delete(using)
        LiveSession.objects.using(using).filter(node_id=node_id)._raw_delete(using)
        Node.objects.using(using).filter(pk=node_id).update(
            gone_at=now,
            last_heartbeat=now,
            sessions=0,
            sockets=0,
            packets_in_per_s=0,
            packets_out_per_s=0,
        )
