"""The sessions of connected sockets, kept in the store as they change
(``persist_live_sessions``): a client whose worker died without closing it (SIGKILL, a crash,
the machine lost) recovers on another worker, which finds its session in the shared store.

socket.io keeps a session only when it sees the disconnect. Here each connected socket's
session is written when it connects and when its rooms change, and rewritten every quarter of
the maximum disconnection duration (which also takes ``socket.data`` as it is then), so that it
never expires while its socket lives. Changes are grouped: a socket changed several times
before the write is written once, as it is then, and every socket changed meanwhile goes in
one write of the store (one statement, one Redis round trip), never a write per change on the
event loop. An explicit disconnect discards the session, in the same ordered group of writes,
so that a write in flight cannot bring it back.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..socketio.adapter import SessionRecord
    from ..socketio.socket import Socket
    from .adapter import ConnectionStateRecovery

__all__ = ["LiveSessions"]

logger = logging.getLogger("channels_sio.recovery")

#: Sessions per write: a refresh of many sockets goes out in writes of this size, one after
#: the other, rather than as one statement of unbounded size.
BATCH = 500


class LiveSessions:
    """Writes the sessions of this process's connected sockets when they change."""

    def __init__(self, recovery: ConnectionStateRecovery) -> None:
        self._recovery = recovery
        self._live: dict[str, Socket] = {}  # pid -> its connected socket
        self._changed: dict[str, Socket] = {}  # pid -> its socket, written by the next write
        self._writing: asyncio.Task[None] | None = None
        self._refreshing: asyncio.Task[None] | None = None

    def connected(self, socket: Socket) -> None:
        """``socket`` (with a pid) is connected: write its session, and keep it fresh."""
        assert socket.pid is not None
        self._live[socket.pid] = socket
        self.changed(socket)
        if self._refreshing is None:
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh())

    def changed(self, socket: Socket) -> None:
        """``socket``'s rooms changed: write its session with the next write."""
        pid = socket.pid
        if pid is None or self._live.get(pid) is not socket:
            return  # not connected yet (its connect writes it), or gone
        self._changed[pid] = socket
        if self._writing is None:
            self._writing = asyncio.get_running_loop().create_task(self._write())

    def gone(self, socket: Socket) -> None:
        """``socket`` disconnected: its session is kept or discarded by the caller."""
        pid = socket.pid
        if pid is not None and self._live.get(pid) is socket:
            del self._live[pid]
            self._changed.pop(pid, None)

    async def _write(self) -> None:
        recovery = self._recovery
        try:
            while self._changed:
                pids = list(self._changed)[:BATCH]
                records = [
                    record
                    for pid in pids
                    if (record := self._record(self._changed.pop(pid))) is not None
                ]
                if not records:
                    continue
                try:
                    await recovery.store.keep_sessions(records)
                except Exception:
                    recovery.failed("keeping the sessions of connected sockets")
                else:
                    recovery.succeeded()
        finally:
            self._writing = None

    def _record(self, socket: Socket) -> SessionRecord | None:
        record = socket.session_record()
        try:
            # A copy, as stored: the application goes on changing socket.data.
            return replace(record, data=json.loads(json.dumps(record.data, allow_nan=False)))
        except (TypeError, ValueError) as exc:
            # Not written again until it disconnects: one warning, not one per change.
            self.gone(socket)
            logger.warning(
                "socket %s: its session is not kept while it is connected: its data cannot "
                "be stored (%s)",
                socket.id,
                exc,
            )
            return None

    async def _refresh(self) -> None:
        # Each write keeps a session for the maximum disconnection duration: rewritten every
        # quarter of it, a session of a worker that died stays at least three quarters of it.
        every = self._recovery.store.max_age / 4
        while True:
            await asyncio.sleep(every)
            if self._live:
                self._changed.update(self._live)
                if self._writing is None:
                    self._writing = asyncio.get_running_loop().create_task(self._write())

    async def close(self) -> None:
        """Stop writing (the server is shutting down: its sockets were closed, and those
        closed for a recoverable reason kept, by then)."""
        tasks = [task for task in (self._writing, self._refreshing) if task is not None]
        self._refreshing = None
        for task in tasks:
            task.cancel()
        # wait() does not re-raise the tasks' CancelledError, yet lets ours through.
        if tasks:
            await asyncio.wait(tasks)
