"""The memory store: the packet log and sessions in this process's memory (tests, one
process under ``runserver``). Lost on restart; cannot serve several processes."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..socketio.adapter import SessionRecord
from .store import KeptSession, LoggedPacket, PacketRecord, RecoveryStore, load_data, serialized

__all__ = ["MemoryStore"]


def _loaded(packet: PacketRecord) -> PacketRecord:
    assert packet.dumped is not None
    return replace(packet, data=load_data(*packet.dumped), dumped=None)


class MemoryStore(RecoveryStore):
    """Packets in a bounded deque per namespace (``max_packets`` each), sessions in a dict.

    Offsets are decimal numbers, one counter for the process.
    """

    shared = False
    purges_in_background = False

    def __init__(self, *, max_packets: int = 10_000, **options: Any) -> None:
        super().__init__(**options)
        self.max_packets = max_packets
        self._last = 0
        # namespace -> (offset, time written, packet), oldest first
        self._log: dict[str, deque[tuple[int, float, PacketRecord]]] = {}
        # namespace -> (newest offset the max_packets cap removed, the time it was written)
        self._capped: dict[str, tuple[int, float]] = {}
        self._sessions: dict[str, tuple[SessionRecord, float]] = {}  # pid -> (session, expiry)

    async def append(self, packets: Sequence[PacketRecord]) -> list[str]:
        now = time.time()
        offsets = []
        for packet in packets:
            self._last += 1
            log = self._log.setdefault(packet.namespace, deque())
            # Kept serialized: what was sent, whatever the application does to its objects after.
            log.append((self._last, now, replace(packet, data=[], dumped=serialized(packet))))
            if len(log) > self.max_packets:
                offset, written, _ = log.popleft()
                self._capped[packet.namespace] = (offset, written)
            offsets.append(str(self._last))
        self._purge_packets(now)
        return offsets

    async def end(self) -> str:
        return str(self._last)

    async def read_after(
        self, namespaces: Sequence[str], after: str
    ) -> list[tuple[str, PacketRecord]] | None:
        if not after.isdigit():
            return None
        start = int(after)
        horizon = time.time() - self.max_age
        found: list[tuple[int, PacketRecord]] = []
        for namespace in namespaces:
            capped = self._capped.get(namespace)
            if capped is not None and capped[0] > start and capped[1] >= horizon:
                return None
            found.extend(
                (offset, packet)
                for offset, _, packet in self._log.get(namespace, ())
                if offset > start
            )
        if len(found) > self.replay_limit:
            return None
        found.sort(key=lambda item: item[0])
        return [(str(offset), _loaded(packet)) for offset, packet in found]

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

    async def purge(self) -> int:
        now = time.time()
        expired = [pid for pid, (_, expiry) in self._sessions.items() if expiry <= now]
        for pid in expired:
            del self._sessions[pid]
        return len(expired) + self._purge_packets(now)

    def _purge_packets(self, now: float) -> int:
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
        logs = [self._log.get(namespace, deque())] if namespace else list(self._log.values())
        entries = sorted((entry for log in logs for entry in log), key=lambda e: -e[0])
        return [
            LoggedPacket(str(o), _loaded(packet), created) for o, created, packet in entries[:limit]
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
