"""Connection state recovery around a namespace's adapter: every EVENT that wants no
acknowledgement and is not volatile is recorded, and given its offset, before any socket gets
it; the sessions of sockets lost for a recoverable reason are kept, and restored once."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from ..engineio import CloseReason
from ..socketio.adapter import (
    Adapter,
    HeldPacket,
    LocalAdapter,
    RecoveredSession,
    SessionRecord,
)
from ..socketio.broadcast import BroadcastFlags
from ..socketio.client import Deferred
from ..socketio.packet import encode
from ..socketio.socket import SocketState
from .live import LiveSessions
from .store import PacketRecord, RecoveryStore, dump_data

if TYPE_CHECKING:
    from ..socketio.bus import RemoteSocket
    from ..socketio.packet import Packet
    from ..socketio.socket import Socket

__all__ = ["ConnectionStateRecovery", "RecoveryAdapter"]

logger = logging.getLogger("channels_sio.recovery")

_CONNECTED = SocketState.CONNECTED


class _RecordedEmit(Deferred):
    """A recorded ``socket.emit``'s place in its connection's send order: the store's grouped
    write completes it as it would a future (:class:`.store.Waiter`), with the packet's
    offset, and it goes out then."""

    __slots__ = ("adapter", "entry", "packet", "socket")

    def __init__(
        self, adapter: RecoveryAdapter, socket: Socket, packet: Packet, entry: PacketRecord
    ) -> None:
        self.parts = None
        self.adapter = adapter
        self.socket = socket
        self.packet = packet
        self.entry = entry

    def done(self) -> bool:
        return self.parts is not None

    def set_result(self, offset: str) -> None:
        dumped = self.entry.dumped
        assert dumped is not None
        packet, socket, adapter = self.packet, self.socket, self.adapter
        adapter._recorded(packet, dumped, offset)
        if socket.state is _CONNECTED:
            socket.client.fill(self, encode(packet))
            return
        # Gone meanwhile (a server-side disconnect waits for what was emitted before it:
        # Client.flushed). A client being restored, or restored already, in any process may
        # have read the log before this write landed: it gets the packet as a broadcast to
        # its id reaches it, held until its CONNECT reply, never twice.
        socket.client.fill(self, [])
        own_room = BroadcastFlags(rooms=self.entry.rooms)
        socket.nsp.server.spawn(adapter.inner.broadcast(packet, own_room, offset))

    def set_exception(self, exc: BaseException) -> None:
        # Not recorded: sent all the same, as a failed broadcast is, as it was when emitted.
        self.adapter.recovery.failed("recording a packet", exc)
        packet, socket = self.packet, self.socket
        packet.dumped = self.entry.dumped
        socket.client.fill(self, encode(packet) if socket.state is _CONNECTED else [])

    def cancel(self) -> None:
        # The store is closing (the server shuts down): never sent, and never recorded.
        self.socket.client.fill(self, [])


class ConnectionStateRecovery:
    """Connection state recovery for a server (its ``ServerConfig.recovery``): one store for
    every namespace; ``skip_middlewares`` skips them for recovered sockets;
    ``persist_live_sessions`` keeps the sessions of connected sockets in the store as they
    change (:mod:`.live`), so that a client whose worker died recovers too.

    ``store`` may be a zero-argument callable, called once, when first needed.
    """

    def __init__(
        self,
        store: RecoveryStore | Callable[[], RecoveryStore],
        *,
        skip_middlewares: bool = True,
        persist_live_sessions: bool = False,
    ) -> None:
        self._store_source = store
        self._store: RecoveryStore | None = store if isinstance(store, RecoveryStore) else None
        self._skip_middlewares = skip_middlewares
        #: The writer of connected sockets' sessions; None when they are kept at disconnect only.
        self.live: LiveSessions | None = LiveSessions(self) if persist_live_sessions else None
        #: Whether the last store call failed.
        self.failing = False

    @property
    def skip_middlewares(self) -> bool:
        return self._skip_middlewares

    @property
    def store(self) -> RecoveryStore:
        if self._store is None:
            source = self._store_source
            assert not isinstance(source, RecoveryStore)
            self._store = source()
        return self._store

    def wrap(self, adapter: Adapter) -> RecoveryAdapter:
        return RecoveryAdapter(adapter, self)

    async def close(self) -> None:
        if self.live is not None:
            await self.live.close()
        if self._store is not None:
            await self._store.close()

    def failed(self, what: str, error: BaseException | None = None) -> None:
        """A store call failed (with ``error``, else the exception being handled): log it
        once until one succeeds again (not once per packet)."""
        if not self.failing:
            self.failing = True
            logger.error(
                "connection state recovery: %s failed; packets go out unrecorded until the "
                "store answers again",
                what,
                exc_info=error if error is not None else True,
            )

    def succeeded(self) -> None:
        if self.failing:
            self.failing = False
            logger.warning("connection state recovery: the store answers again")


class RecoveryAdapter(Adapter):
    """Records packets and keeps sessions around another adapter (local or cluster), which
    delivers them."""

    records = True

    def __init__(self, inner: Adapter, recovery: ConnectionStateRecovery) -> None:
        self.inner = inner
        self.nsp = inner.nsp
        self.recovery = recovery
        #: The recovery's store, made now (if it was a factory) rather than looked up per packet.
        self.store = recovery.store
        server = self.nsp.server
        # Recorded under the name other processes use too: a dynamic family's is "#n".
        self.key = server.namespace_key(self.nsp)
        parent = self.nsp.parent
        # A dynamic family's child also replays what was sent to the whole family.
        self._logs = [self.key] if parent is None else [self.key, server.namespace_key(parent)]
        self._local = inner.local
        self._live = recovery.live
        self._pids: dict[str, Socket] = {}
        self._end: str | None = None
        self._persisting: dict[str, asyncio.Future[None]] = {}

    def __repr__(self) -> str:
        return f"<RecoveryAdapter around {self.inner!r}>"

    # -- what the wrapped adapter does ----------------------------------------------------

    @property
    def sockets(self) -> dict[str, Socket]:
        return self.inner.sockets

    @property
    def local(self) -> LocalAdapter:
        return self.inner.local

    @property
    def head(self) -> str | None:
        return self.inner.head

    async def position(self) -> str | None:
        head = self.inner.head
        if head is not None:
            return head
        if self._end is None:
            # Nothing recorded was seen here yet: ask the store, once. Every packet recorded
            # after that reaches this process's adapter and becomes its head.
            try:
                self._end = await self.store.end()
            except Exception:
                self.recovery.failed("reading the end of the packet log")
                return None
        return self._end

    def add(self, socket: Socket) -> None:
        self.inner.add(socket)
        if socket.pid is not None:
            self._pids[socket.pid] = socket
            if self._live is not None:
                self._live.connected(socket)

    def remove(self, socket: Socket) -> None:
        self.inner.remove(socket)
        if socket.pid is not None and self._pids.get(socket.pid) is socket:
            del self._pids[socket.pid]
        if self._live is not None:
            self._live.gone(socket)

    def join(self, sid: str, rooms: Iterable[str]) -> None:
        self.inner.join(sid, rooms)
        if self._live is not None:
            self._rooms_changed(sid)

    def leave(self, sid: str, room: str) -> None:
        self.inner.leave(sid, room)
        if self._live is not None:
            self._rooms_changed(sid)

    def _rooms_changed(self, sid: str) -> None:
        socket = self.inner.sockets.get(sid)
        if socket is not None and self._live is not None:
            self._live.changed(socket)

    def rooms_of(self, sid: str) -> frozenset[str]:
        return self.inner.rooms_of(sid)

    def select(self, flags: BroadcastFlags) -> list[Socket]:
        return self.inner.select(flags)

    def hold(self, sid: str, rooms: Iterable[str]) -> list[HeldPacket]:
        return self.inner.hold(sid, rooms)

    def release(self, sid: str) -> None:
        self.inner.release(sid)

    async def deliver(
        self, packet: Packet, flags: BroadcastFlags, offset: str | None = None
    ) -> int:
        return await self.inner.deliver(packet, flags, offset)

    async def broadcast_with_ack(
        self, packet: Packet, flags: BroadcastFlags
    ) -> tuple[list[Any], bool]:
        return await self.inner.broadcast_with_ack(packet, flags)

    async def fetch_sockets(self, flags: BroadcastFlags) -> list[Socket | RemoteSocket]:
        return await self.inner.fetch_sockets(flags)

    async def add_sockets(self, flags: BroadcastFlags, rooms: frozenset[str]) -> None:
        await self.inner.add_sockets(flags, rooms)

    async def del_sockets(self, flags: BroadcastFlags, rooms: frozenset[str]) -> None:
        await self.inner.del_sockets(flags, rooms)

    async def disconnect_sockets(self, flags: BroadcastFlags, close: bool) -> None:
        await self.inner.disconnect_sockets(flags, close)

    async def close(self) -> None:
        await self.inner.close()

    # -- recording ------------------------------------------------------------------------

    async def broadcast(
        self, packet: Packet, flags: BroadcastFlags, offset: str | None = None
    ) -> None:
        if offset is None:
            recorded = self.record(packet, flags)
            offset = recorded if recorded is None or isinstance(recorded, str) else await recorded
        await self.inner.broadcast(packet, flags, offset)

    def emit_to(
        self, socket: Socket, packet: Packet, flags: BroadcastFlags
    ) -> Awaitable[None] | None:
        entry = self._entry(packet, flags)
        store = self.store
        if store.writes_at_once:
            self._record_entry(packet, entry)
            return socket.client.send(packet)
        # No future and no wait: the store's grouped write fills the packet's place in the
        # connection's send order (the emitting handler usually ends meanwhile, and its
        # task with it, rather than living on for the write).
        place = _RecordedEmit(self, socket, packet, entry)
        socket.client.defer(place)
        try:
            store.record_later(entry, place)
        except Exception as exc:
            place.set_exception(exc)
        return None

    def record(self, packet: Packet, flags: BroadcastFlags) -> str | Awaitable[str | None] | None:
        if flags.volatile or packet.id is not None:
            return None
        return self._record_entry(packet, self._entry(packet, flags))

    def _entry(self, packet: Packet, flags: BroadcastFlags) -> PacketRecord:
        data: list[Any] = packet.data
        # Serialized here, once: arguments JSON cannot hold raise in the emitting code, as
        # they do without recovery, rather than failing the store's grouped write; and the
        # wire's JSON is made from it.
        return PacketRecord(
            self.key,
            data,  # not copied: the offset goes into a new list (_recorded)
            flags.rooms,
            flags.except_rooms,
            flags.exclude_sid,
            dump_data(data),
        )

    def _record_entry(
        self, packet: Packet, entry: PacketRecord
    ) -> str | Awaitable[str | None] | None:
        dumped = entry.dumped
        assert dumped is not None
        recovery = self.recovery
        try:
            written = self.store.record(entry)
        except Exception:
            # The packet still goes out: live sockets must not pay for a store outage.
            recovery.failed("recording a packet")
            return None
        if isinstance(written, str):
            # A store with nothing to wait for (memory): no coroutine for this packet.
            return self._recorded(packet, dumped, written)
        return self._wait_recorded(packet, dumped, written)

    async def _wait_recorded(
        self, packet: Packet, dumped: tuple[str, list[bytes]], written: Awaitable[str]
    ) -> str | None:
        try:
            offset = await written
        except Exception:
            self.recovery.failed("recording a packet")
            return None
        return self._recorded(packet, dumped, offset)

    def _recorded(self, packet: Packet, dumped: tuple[str, list[bytes]], offset: str) -> str:
        recovery = self.recovery
        if recovery.failing:
            recovery.succeeded()
        # A new list: the record's (the same until now) stays without the offset.
        packet.data = [*packet.data, offset]
        # The offset goes in before the closing bracket.
        text, buffers = dumped
        packet.dumped = (f"{text[:-1]},{encode_basestring(offset)}]", buffers)
        self._local._head = offset
        return offset

    # -- sessions -------------------------------------------------------------------------

    async def persist_session(self, session: SessionRecord) -> None:
        try:
            # A copy, as stored: the disconnect handler that runs next may change socket.data.
            session = replace(session, data=json.loads(json.dumps(session.data)))
        except (TypeError, ValueError) as exc:
            logger.warning(
                "socket %s is not kept for recovery: its data cannot be stored (%s)",
                session.sid,
                exc,
            )
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._persisting[session.pid] = done
        recovery = self.recovery
        try:
            await self.store.save_session(session)
        except Exception:
            recovery.failed(f"keeping session {session.pid}")
        else:
            recovery.succeeded()
        finally:
            done.set_result(None)
            if self._persisting.get(session.pid) is done:
                del self._persisting[session.pid]

    async def discard_session(self, pid: str) -> None:
        if self._live is None:
            return  # nothing was kept while it was connected
        recovery = self.recovery
        try:
            await self.store.discard_session(pid)
        except Exception:
            recovery.failed(f"discarding session {pid}")
        else:
            recovery.succeeded()

    async def restore_session(
        self, pid: str, offset: str | None, user_id: str | None
    ) -> RecoveredSession | None:
        await self._take_over(pid, user_id)
        persisting = self._persisting.get(pid)
        if persisting is not None:
            await persisting  # its connection closed a moment ago: its session is being kept
        store = self.store
        session = await store.take_session(pid)
        if session is None:
            return None
        if session.namespace != self.nsp.name or session.user_id != user_id:
            # Another user's pid, or another namespace's: refused, and kept for its owner.
            await store.save_session(session)
            logger.info("pid %s belongs to another user or namespace: not restored", pid)
            return None
        after = self._replay_from(offset, session.position)
        if after is None:
            return None
        sid, rooms = session.sid, session.rooms
        # In its rooms before the log is read: what is recorded after the read is delivered
        # to it (held until its CONNECT reply), what was recorded before is in the read.
        held = self.inner.hold(sid, rooms)
        missed: list[tuple[str, PacketRecord]] | None = None
        try:
            missed = await store.read_after(self._logs, after)
        finally:
            if missed is None:
                self.inner.release(sid)
        if missed is None:
            return None
        if self._live is not None:
            # Kept while connected, its socket may still be open in another process that has
            # not noticed the client went (it came back here faster): that one must go, and
            # must not keep its session over this one's when it does.
            await self.took_over(pid)
        return RecoveredSession(
            session,
            [(at, packet.data) for at, packet in missed if packet.reaches(sid, rooms)],
            held,
        )

    def _replay_from(self, offset: str | None, position: str | None) -> str | None:
        """The offset to replay after: the client's, unless it is older than the session's
        position. socket.io-client keeps the last offset it received across sessions, so a
        socket that received nothing yet brings its previous session's offset; what was
        recorded before this session's position was never meant for it."""
        if offset is None or position is None:
            return offset if offset is not None else position
        store = self.store
        key, start = store.offset_key(offset), store.offset_key(position)
        if key is None:
            return offset  # malformed: read_after says so
        return position if start is not None and key < start else offset

    async def took_over(self, pid: str) -> None:
        await self.inner.took_over(pid)

    async def taken_over(self, pid: str) -> None:
        old = self._pids.get(pid)
        if old is None:
            return
        # The client came back elsewhere, with every namespace of this connection, whose
        # sessions are all in the store (kept while connected): as the connection closes, none
        # is kept again over the newer ones, nor discarded.
        for socket in list(old.client.sockets.values()):
            adapter = socket.nsp.adapter
            if isinstance(adapter, RecoveryAdapter):
                adapter._disown(socket)
        logger.info(
            "socket %s was recovered in another process: its connection here closes", old.id
        )
        await old.client.session.close(CloseReason.TRANSPORT_CLOSE)

    def _disown(self, socket: Socket) -> None:
        """``socket``'s session is another process's now: it no longer has a pid here."""
        pid = socket.pid
        if pid is None:
            return
        if self._pids.get(pid) is socket:
            del self._pids[pid]
        if self._live is not None:
            self._live.gone(socket)
        socket.pid = None

    async def _take_over(self, pid: str, user_id: str | None) -> None:
        """The client came back before this process noticed it had gone: its old connection
        is closed now (its session is kept as for any lost connection), so that it can be
        restored, rather than leaving two sockets with one id."""
        old = self._pids.get(pid)
        if old is None or old.user_id != user_id:
            return
        logger.info("socket %s reconnected before its old connection closed", old.id)
        await old.client.session.close(CloseReason.TRANSPORT_CLOSE)
