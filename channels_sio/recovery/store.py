"""The recovery store contract: a log of the packets sent, and the sessions of disconnected
sockets. Stores implement grouped writes; the base class groups the calls.

Every store keeps to the same rules, and tests/recovery/test_stores.py checks each one:

- ``append`` writes packets in order, as one write, and gives each an offset: an opaque string,
  increasing in the order of writes, that stays valid after a restart for persistent stores.
- ``read_after`` gives the packets of some namespaces written after an offset, in order, or
  None when the log cannot tell which those are: a malformed offset, more than
  ``replay_limit`` packets, or packets after it removed by a length cap while they were younger
  than the maximum disconnection duration. Packets removed for their age never count: they
  were sent before the client's last disconnection began, when it was still connected.
- ``end`` is the log's current end: reading after it gives only what is written later.
- ``save_sessions`` keeps sessions for the maximum disconnection duration (from this write:
  saving a session again extends it); a session saved without a position gets the log's
  current end. ``take_session`` returns a session once. ``discard_sessions`` removes sessions,
  so that they can no longer be restored.
- ``purge`` removes expired sessions and packets older than the maximum disconnection
  duration, in batches.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from ..socketio.adapter import SessionRecord
from ..socketio.packet import dump_json, join_binary

__all__ = [
    "KeptSession",
    "LoggedPacket",
    "PacketRecord",
    "RecoveryStore",
    "SetMemo",
    "Waiter",
    "WriteGroup",
    "dump_data",
    "load_data",
    "pack_buffers",
    "serialized",
    "unpack_buffers",
]

logger = logging.getLogger("channels_sio.recovery")

T = TypeVar("T")
R = TypeVar("R")
R_contra = TypeVar("R_contra", contravariant=True)


@dataclass(slots=True)  # not frozen: one is made per recorded packet, and frozen costs 3x
class PacketRecord:
    """One recorded EVENT: the namespace it was sent to (a name, or ``#n`` for the n-th
    dynamic family), its event and arguments without the offset, and who it was for."""

    namespace: str
    data: list[Any]
    rooms: frozenset[str] = frozenset()
    except_rooms: frozenset[str] = frozenset()
    #: The socket that sent it to the others (``socket.broadcast`` / ``socket.to()``).
    exclude_sid: str | None = None
    #: ``dump_data(data)``, when the recorder made it already (see :func:`serialized`).
    dumped: tuple[str, list[bytes]] | None = field(default=None, compare=False, repr=False)

    def reaches(self, sid: str, rooms: frozenset[str]) -> bool:
        """Whether a socket ``sid`` in ``rooms`` (its own id among them) was to get it."""
        if sid == self.exclude_sid:
            return False
        if self.rooms and self.rooms.isdisjoint(rooms):
            return False
        return not (self.except_rooms and not self.except_rooms.isdisjoint(rooms))


@dataclass(frozen=True, slots=True)
class LoggedPacket:
    """A packet as the log holds it, for browsing (the admin)."""

    offset: str
    packet: PacketRecord
    #: When it was written, in seconds since the epoch.
    created: float


@dataclass(frozen=True, slots=True)
class KeptSession:
    """A session as the store keeps it, for browsing (the admin)."""

    session: SessionRecord
    #: When it can no longer be restored, in seconds since the epoch.
    expires: float


#: A packet's data as JSON text, bytes replaced by attachment placeholders, and the bytes
#: (:func:`~channels_sio.socketio.packet.dump_json`, named for the stores).
dump_data = dump_json


def serialized(packet: PacketRecord) -> tuple[str, list[bytes]]:
    """A packet's data as :func:`dump_data` gives it, made once."""
    return packet.dumped if packet.dumped is not None else dump_data(packet.data)


def load_data(text: str, buffers: list[bytes]) -> list[Any]:
    """The inverse of :func:`dump_data`."""
    data: list[Any] = join_binary(json.loads(text), buffers)
    return data


class SetMemo(dict[frozenset[str], T]):
    """What ``make`` gives for a room set, made once per set: ``memo[rooms]`` (the same few
    sets, a socket's own room or a chat's room, come with most packets, and a hit costs no
    Python call). Bounded: cleared when full."""

    def __init__(self, make: Callable[[frozenset[str]], T], size: int = 4096) -> None:
        super().__init__()
        self._make = make
        self._size = size

    def __missing__(self, rooms: frozenset[str]) -> T:
        if len(self) >= self._size:
            self.clear()
        made = self[rooms] = self._make(rooms)
        return made


_LENGTH = struct.Struct(">I")


def pack_buffers(buffers: list[bytes]) -> bytes:
    """Attachments as one bytes value: each one's length (4 bytes, big-endian), then it."""
    return b"".join(_LENGTH.pack(len(buffer)) + buffer for buffer in buffers)


def unpack_buffers(packed: bytes) -> list[bytes]:
    """The inverse of :func:`pack_buffers`."""
    buffers, position = [], 0
    view = memoryview(packed)
    while position < len(view):
        (size,) = _LENGTH.unpack_from(view, position)
        position += _LENGTH.size
        buffers.append(bytes(view[position : position + size]))
        position += size
    return buffers


class Waiter(Protocol[R_contra]):
    """What gets a grouped write's result: an asyncio future, or an object that acts on the
    result at once (a recorded emit's place in its connection's send order)."""

    def done(self) -> bool: ...

    def set_result(self, result: R_contra, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...

    def cancel(self) -> Any: ...


class WriteGroup(Generic[T, R]):
    """Groups concurrent writes: what is added while a write is in flight goes out together in
    the next one, so a burst of broadcasts costs one statement or one pipeline, not one each.

    The writing task is the group's own; :meth:`close` lets it finish.
    """

    def __init__(
        self, write: Callable[[list[T]], Awaitable[list[R]]], loop: asyncio.AbstractEventLoop
    ) -> None:
        self._write = write
        self._loop = loop
        # What was added since the write in flight began, and who waits for each.
        self._items: list[T] = []
        self._waiters: list[Waiter[R]] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, item: T) -> asyncio.Future[R]:
        """Queue ``item``; the future gets its result (or the write's error). Called on the
        loop the group was made on."""
        future: asyncio.Future[R] = self._loop.create_future()
        self.add_waiter(item, future)
        return future

    def add_waiter(self, item: T, waiter: Waiter[R]) -> None:
        """Queue ``item``; ``waiter`` gets its result (or the write's error, or is cancelled
        when the group is), in the order the items were added. A waiter that is not a future
        is completed once, and not asked whether it is done."""
        self._items.append(item)
        self._waiters.append(waiter)
        if self._task is None:
            self._task = self._loop.create_task(self._flush())

    async def _flush(self) -> None:
        waiters: list[Waiter[R]] = []
        try:
            while self._items:
                items, waiters = self._items, self._waiters
                self._items, self._waiters = [], []
                try:
                    results = await self._write(items)
                except Exception as exc:
                    for waiter in waiters:
                        if not waiter.done():
                            try:
                                waiter.set_exception(exc)
                            except Exception:
                                logger.exception("a grouped write's waiter failed")
                else:
                    await self._complete(waiters, results)
                waiters = []
                if self._items:
                    # A turn of the loop first: what it reads joins the next write.
                    await asyncio.sleep(0)
        finally:
            self._task = None
            for waiter in waiters:
                if not waiter.done():
                    waiter.cancel()
            for waiter in self._waiters:
                waiter.cancel()
            self._items, self._waiters = [], []

    async def _complete(self, waiters: list[Waiter[R]], results: list[R]) -> None:
        woken = False
        for waiter, result in zip(waiters, results, strict=True):
            if isinstance(waiter, asyncio.Future):
                if not waiter.done():  # its caller may have been cancelled
                    waiter.set_result(result)
                    woken = True
                continue
            if woken:
                # An earlier item's task resumes on the loop's next turn: it goes first, so
                # that clients get the packets in the order of their offsets.
                await asyncio.sleep(0)
                woken = False
            try:
                waiter.set_result(result)
            except Exception:
                # A waiter that acts at once must not stop the batch's others, nor the group.
                logger.exception("a grouped write's waiter failed")

    async def close(self) -> None:
        """Wait for the writes in flight and queued (the store is closing)."""
        task = self._task
        if task is not None:
            await asyncio.wait([task])


@dataclass(frozen=True, slots=True)
class _Writes:
    """A store's grouped writes on one event loop."""

    packets: WriteGroup[PacketRecord, str]
    #: (pid, the session to keep, or None to discard it), in the order they were asked for.
    sessions: WriteGroup[tuple[str, SessionRecord | None], None]


class RecoveryStore(ABC):
    """Where connection state recovery keeps the packet log and the sessions.

    ``max_disconnection_duration`` (ms) is how long a session can be recovered, and how long
    packets are kept; ``replay_limit`` bounds the packets one restore reads. Subclasses take
    their own options as keyword arguments (``CHANNELS_SIO["connection_state_recovery"]
    ["store_options"]``).
    """

    #: Whether several processes can share the store (the memory store cannot).
    shared: ClassVar[bool] = True
    #: Whether :meth:`purge` runs every ``purge_interval`` ms in the background (the memory
    #: store purges as it writes instead).
    purges_in_background: ClassVar[bool] = True
    #: Whether :meth:`record` gives the offset itself, having nothing to wait for (the memory
    #: store): :meth:`record_later` is not used then.
    writes_at_once: ClassVar[bool] = False

    def __init__(
        self,
        *,
        max_disconnection_duration: int = 120_000,
        replay_limit: int = 10_000,
        purge_interval: int = 60_000,
    ) -> None:
        self.max_disconnection_duration = max_disconnection_duration
        self.replay_limit = replay_limit
        self.purge_interval = purge_interval
        self._writes: dict[asyncio.AbstractEventLoop, _Writes] = {}
        self._purging: asyncio.Task[None] | None = None

    @property
    def max_age(self) -> float:
        """How long packets and sessions are kept, in seconds."""
        return self.max_disconnection_duration / 1000

    def record(self, packet: PacketRecord) -> str | Awaitable[str]:
        """Append one packet, grouped with concurrent calls; its offset, or an awaitable of it
        (a store that writes at once gives the offset: one coroutine less per packet)."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.record_later(packet, future)
        return future

    def record_later(self, packet: PacketRecord, waiter: Waiter[str]) -> None:
        """Append one packet, grouped with concurrent calls: ``waiter`` gets its offset (or
        the write's error) when it is written, in the order of the calls."""
        purging = self._purging
        if purging is None or purging.done():
            self._purge_in_background()
        writes = self._writes.get(asyncio.get_running_loop())
        (writes if writes is not None else self._writes_here()).packets.add_waiter(packet, waiter)

    async def save_session(self, session: SessionRecord) -> None:
        """Keep one session, grouped with concurrent calls."""
        self._purge_in_background()
        await self._writes_here().sessions.add((session.pid, session))

    async def keep_sessions(self, sessions: Sequence[SessionRecord]) -> None:
        """Keep sessions, grouped with concurrent calls (one write for all of them)."""
        self._purge_in_background()
        group = self._writes_here().sessions
        await asyncio.gather(*[group.add((session.pid, session)) for session in sessions])

    async def discard_session(self, pid: str) -> None:
        """Remove the session of ``pid`` if it is kept, grouped with concurrent calls and
        written after the saves asked for before (so a save in flight cannot bring it back)."""
        await self._writes_here().sessions.add((pid, None))

    def _writes_here(self) -> _Writes:
        # Grouped per event loop: the store serves the server's loop, and now and then another
        # one (asgiref's async_to_sync), whose futures only that loop may complete.
        loop = asyncio.get_running_loop()
        writes = self._writes.get(loop)
        if writes is None:
            for closed in [other for other in self._writes if other.is_closed()]:
                del self._writes[closed]
            writes = self._writes[loop] = _Writes(
                # Looked up at each write, not bound now: tests may wrap ``append``.
                WriteGroup(lambda packets: self.append(packets), loop),
                WriteGroup(self._save_all, loop),
            )
        return writes

    def _purge_in_background(self) -> None:
        if self.purges_in_background and (self._purging is None or self._purging.done()):
            self._purging = asyncio.get_running_loop().create_task(self._purge_every_interval())

    async def _purge_every_interval(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.purge_interval / 1000)
            try:
                removed = await self.purge()
            except Exception:
                if not failing:  # once per outage, not once per interval
                    logger.warning("%s: purge failed", type(self).__name__, exc_info=True)
                failing = True
                continue
            failing = False
            if removed:
                logger.debug("%s: purged %d", type(self).__name__, removed)

    async def _save_all(self, changes: list[tuple[str, SessionRecord | None]]) -> list[None]:
        # The last change of each pid wins: the others are what it replaced.
        latest = dict(changes)
        kept = [session for session in latest.values() if session is not None]
        discarded = [pid for pid, session in latest.items() if session is None]
        if kept:
            await self.save_sessions(kept)
        if discarded:
            await self.discard_sessions(discarded)
        return [None] * len(changes)

    @abstractmethod
    async def append(self, packets: Sequence[PacketRecord]) -> list[str]:
        """Write packets, in order, as one write; their offsets."""

    async def append_outside(self, packets: Sequence[PacketRecord]) -> list[str]:
        """:meth:`append`, for a caller outside the server, which may run on a short-lived
        event loop of its own (Django code through ``async_to_sync``). A store that keeps a
        connection per loop for its grouped writes overrides this, rather than opening one
        per call."""
        return await self.append(packets)

    def offset_key(self, offset: str) -> tuple[int, ...] | None:
        """What orders offsets (None for a malformed one). Offsets here are decimal numbers;
        a store whose offsets are not overrides this."""
        return (int(offset),) if offset.isdigit() and offset.isascii() else None

    @abstractmethod
    async def end(self) -> str:
        """The log's current end: an offset at least as great as every offset given so far,
        and smaller than every offset given later."""

    @abstractmethod
    async def read_after(
        self, namespaces: Sequence[str], after: str
    ) -> list[tuple[str, PacketRecord]] | None:
        """The packets of ``namespaces`` written after offset ``after``, in order, with their
        offsets; None when the log cannot tell which those are (see the module's rules)."""

    @abstractmethod
    async def save_sessions(self, sessions: Sequence[SessionRecord]) -> None:
        """Keep sessions for the maximum disconnection duration, as one write; one saved
        without a position gets the log's current end for its namespace."""

    @abstractmethod
    async def take_session(self, pid: str) -> SessionRecord | None:
        """The session of ``pid``, removed (a session is restored once); None when unknown
        or expired."""

    async def discard_sessions(self, pids: Sequence[str]) -> None:
        """Remove the sessions of ``pids`` (those kept), as one write where the store can.
        This default takes them one by one; the stores here override it."""
        for pid in pids:
            await self.take_session(pid)

    @abstractmethod
    async def purge(self) -> int:
        """Remove expired sessions and packets older than the maximum disconnection duration,
        in batches; how many rows or entries went."""

    @abstractmethod
    async def browse_packets(
        self, *, namespace: str | None = None, limit: int = 100
    ) -> list[LoggedPacket]:
        """The newest packets of the log (of ``namespace`` only, if given), newest first."""

    @abstractmethod
    async def browse_sessions(
        self, *, namespace: str | None = None, search: str | None = None, limit: int = 100
    ) -> list[KeptSession]:
        """The sessions kept (of ``namespace`` only, whose pid or sid starts with ``search``,
        if given), the latest to expire first; expired ones are left out."""

    async def close(self) -> None:
        """Finish the writes in flight and stop purging; the store may be used again after.
        Subclasses release their connections after calling this."""
        writes = self._writes.pop(asyncio.get_running_loop(), None)
        if writes is not None:
            await writes.packets.close()
            await writes.sessions.close()
        purging, self._purging = self._purging, None
        if purging is not None and not purging.done():
            loop = purging.get_loop()
            if loop is asyncio.get_running_loop():
                purging.cancel()
                # wait() does not re-raise the task's CancelledError, yet lets ours through.
                await asyncio.wait([purging])
            elif not loop.is_closed():
                loop.call_soon_threadsafe(purging.cancel)
