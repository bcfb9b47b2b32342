"""The memory store: the packet log and sessions in this process's memory (tests, one
process under ``runserver``). Lost on restart; cannot serve several processes."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..socketio.adapter import SessionRecord
from .store import (
    KeptSession,
    LoggedPacket,
    PacketRecord,
    RecoveryStore,
    SetMemo,
    dump_data,
    load_data,
)

__all__ = ["MemoryStore"]


#: A logged packet: offset, time written, and the packet without its namespace, as flat
#: tuples of strings (text, attachments, rooms, except-rooms, excluded sid). Tuples of atomic
#: values leave the garbage collector's tracking: ten thousand of them cost no collection.
#: A room tuple is shared (``SetMemo``), never made per entry: a collection finds a new
#: inner tuple after its entry, so the entry would stay tracked into the oldest generation,
#: which every full collection then walks (1.7 µs a message in process).
_Entry = tuple[int, float, str, tuple[bytes, ...], tuple[str, ...], tuple[str, ...], str | None]


def _packet(namespace: str, entry: _Entry) -> PacketRecord:
    _, _, text, buffers, rooms, except_rooms, exclude = entry
    return PacketRecord(
        namespace,
        load_data(text, list(buffers)),
        frozenset(rooms),
        frozenset(except_rooms),
        exclude,
    )


class MemoryStore(RecoveryStore):
    """Packets in a bounded deque per namespace (``max_packets`` each), sessions in a dict.

    Offsets are decimal numbers, one counter for the process.
    """

    shared = False
    purges_in_background = False
    writes_at_once = True

    def __init__(self, *, max_packets: int = 10_000, **options: Any) -> None:
        super().__init__(**options)
        self.max_packets = max_packets
        self._last = 0
        # namespace -> its entries, oldest first
        self._log: dict[str, deque[_Entry]] = {}
        # namespace -> (newest offset the max_packets cap removed, the time it was written)
        self._capped: dict[str, tuple[int, float]] = {}
        self._sessions: dict[str, tuple[SessionRecord, float]] = {}  # pid -> (session, expiry)
        self._purged_at = 0.0
        self._room_tuples: SetMemo[tuple[str, ...]] = SetMemo(tuple)

    def record(self, packet: PacketRecord) -> str:
        # Nothing to wait for, so nothing to group: written at once, in one call (this runs
        # for every packet emitted).
        now = time.time()
        self._last = offset = self._last + 1
        namespace = packet.namespace
        log = self._log.get(namespace)
        if log is None:
            log = self._log[namespace] = deque()
        # Kept serialized: what was sent, whatever the application does to its objects after.
        dumped = packet.dumped
        text, buffers = dumped if dumped is not None else dump_data(packet.data)
        room_tuples = self._room_tuples
        log.append(
            (
                offset,
                now,
                text,
                tuple(buffers),
                room_tuples[packet.rooms],
                room_tuples[packet.except_rooms],
                packet.exclude_sid,
            )
        )
        if len(log) > self.max_packets:
            removed = log.popleft()
            self._capped[namespace] = (removed[0], removed[1])
        if now - self._purged_at > 1.0:  # at most once a second, not once per packet
            self._purge_packets(now)
        return str(offset)

    async def append(self, packets: Sequence[PacketRecord]) -> list[str]:
        return [self.record(packet) for packet in packets]

    async def end(self) -> str:
        return str(self._last)

    async def read_after(
        self, namespaces: Sequence[str], after: str
    ) -> list[tuple[str, PacketRecord]] | None:
        if not after.isdigit():
            return None
        start = int(after)
        horizon = time.time() - self.max_age
        found: list[tuple[str, _Entry]] = []
        for namespace in namespaces:
            capped = self._capped.get(namespace)
            if capped is not None and capped[0] > start and capped[1] >= horizon:
                return None
            found.extend(
                (namespace, entry) for entry in self._log.get(namespace, ()) if entry[0] > start
            )
        if len(found) > self.replay_limit:
            return None
        found.sort(key=lambda item: item[1][0])
        return [(str(entry[0]), _packet(namespace, entry)) for namespace, entry in found]

    async def save_sessions(self, sessions: Sequence[SessionRecord]) -> None:
        await self.purge()  # what a background purge would do, once per write
        expiry = time.time() + self.max_age
        for session in sessions:
            if session.position is None:
                session = replace(session, position=str(self._last))
            self._sessions[session.pid] = (session, expiry)

    async def take_session(self, pid: str) -> SessionRecord | None:
        found = self._sessions.pop(pid, None)
        if found is None or found[1] <= time.time():
            return None
        return found[0]

    async def discard_sessions(self, pids: Sequence[str]) -> None:
        for pid in pids:
            self._sessions.pop(pid, None)

    async def purge(self) -> int:
        now = time.time()
        expired = [pid for pid, (_, expiry) in self._sessions.items() if expiry <= now]
        for pid in expired:
            del self._sessions[pid]
        return len(expired) + self._purge_packets(now)

    def _purge_packets(self, now: float) -> int:
        self._purged_at = now
        horizon = now - self.max_age
        removed = 0
        for log in self._log.values():
            while log and log[0][1] < horizon:
                log.popleft()
                removed += 1
        return removed

    async def browse_packets(
        self, *, namespace: str | None = None, limit: int = 100
    ) -> list[LoggedPacket]:
        names = [namespace] if namespace else list(self._log)
        entries = sorted(
            ((name, entry) for name in names for entry in self._log.get(name, ())),
            key=lambda item: -item[1][0],
        )
        return [
            LoggedPacket(str(entry[0]), _packet(name, entry), entry[1])
            for name, entry in entries[:limit]
        ]

    async def browse_sessions(
        self, *, namespace: str | None = None, search: str | None = None, limit: int = 100
    ) -> list[KeptSession]:
        now = time.time()
        found = [
            KeptSession(session, expiry)
            for session, expiry in self._sessions.values()
            if expiry > now
            and (namespace is None or session.namespace == namespace)
            and (not search or session.pid.startswith(search) or session.sid.startswith(search))
        ]
        found.sort(key=lambda kept: -kept.expires)
        return found[:limit]
