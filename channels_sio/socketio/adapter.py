"""The adapter of a namespace: its sockets, its rooms, and the delivery of its packets.

As in socket.io, every packet a namespace sends to many sockets (and, with connection state
recovery, to one) goes through its adapter. :class:`LocalAdapter` serves this process's
sockets; the cluster adapter (``channels_sio.cluster.adapter``) adds the other processes, and
the recovery adapter (``channels_sio.recovery.adapter``) wraps either to record packets and
keep sessions of disconnected sockets.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engineio.packet import Packet as EnginePacket
from ..engineio.packet import PacketType as EnginePacketType
from .packet import Packet, encode

if TYPE_CHECKING:
    from .broadcast import BroadcastFlags
    from .bus import RemoteSocket
    from .namespace import Namespace
    from .socket import Socket

__all__ = [
    "Adapter",
    "HeldPacket",
    "LocalAdapter",
    "RecoveredSession",
    "RoomIndex",
    "SessionRecord",
    "engine_packets",
]


def engine_packets(parts: list[str | bytes]) -> list[EnginePacket]:
    """An encoded Socket.IO packet (:func:`encode`) as the Engine.IO messages that carry it."""
    return [EnginePacket(EnginePacketType.MESSAGE, part) for part in parts]


#: A packet delivered to a socket while it was being restored: its offset (None when it was
#: not recorded) and its Engine.IO messages.
HeldPacket = tuple[str | None, list[EnginePacket]]


@dataclass(frozen=True)
class SessionRecord:
    """A disconnected socket's session, kept for connection state recovery."""

    pid: str
    sid: str
    namespace: str
    rooms: frozenset[str]
    data: dict[str, Any]
    #: The Django user's primary key as text (None when anonymous): only that user recovers it.
    user_id: str | None = None
    #: Where to replay the log from when the client comes back without an offset (it received
    #: no recorded packet); None: the log's end when the session was persisted.
    position: str | None = None


@dataclass
class RecoveredSession:
    """A session restored for a reconnecting client, with the packets it missed."""

    session: SessionRecord
    #: The EVENT packets it missed, in order: (offset, event and arguments without the offset).
    missed: list[tuple[str, list[Any]]] = field(default_factory=list)
    #: What was delivered to it since it was put in its rooms, before the log was read
    #: (:meth:`Adapter.hold`); its CONNECT reply releases it.
    held: list[HeldPacket] = field(default_factory=list)


class RoomIndex:
    """Rooms of the local sockets of one namespace. Every socket is in the room of its own id."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[str]] = {}
        self.sids: dict[str, set[str]] = {}

    def add(self, sid: str, rooms: Iterable[str]) -> None:
        joined = self.sids.setdefault(sid, set())
        for room in rooms:
            joined.add(room)
            self.rooms.setdefault(room, set()).add(sid)

    def discard(self, sid: str, room: str) -> None:
        joined = self.sids.get(sid)
        if joined is not None:
            joined.discard(room)
        members = self.rooms.get(room)
        if members is not None:
            members.discard(sid)
            if not members:
                del self.rooms[room]

    def remove(self, sid: str) -> None:
        """Forget a socket and every room it was in."""
        for room in self.sids.pop(sid, ()):
            members = self.rooms.get(room)
            if members is not None:
                members.discard(sid)
                if not members:
                    del self.rooms[room]

    def rooms_of(self, sid: str) -> frozenset[str]:
        return frozenset(self.sids.get(sid, ()))

    def select(self, rooms: frozenset[str], except_rooms: frozenset[str]) -> list[str]:
        """Socket ids in any of ``rooms`` (all when empty) and in none of ``except_rooms``."""
        if rooms:
            chosen: set[str] = set()
            for room in rooms:
                chosen.update(self.rooms.get(room, ()))
        else:
            chosen = set(self.sids)
        if except_rooms:
            for room in except_rooms:
                chosen.difference_update(self.rooms.get(room, ()))
        return list(chosen)


class Adapter(ABC):
    """The contract of a namespace's adapter (socket.io's ``Adapter``).

    ``broadcast`` and the other operations with flags reach the sockets the flags select
    (``flags.local`` keeps them to this process); ``deliver`` reaches this process's sockets
    only and records nothing: it is what packets from other processes go through.
    """

    nsp: Namespace
    #: Whether packets sent to one socket go through :meth:`broadcast` too (to be recorded).
    records: bool = False

    # -- sockets and rooms ----------------------------------------------------------------

    @property
    @abstractmethod
    def sockets(self) -> dict[str, Socket]:
        """This process's connected sockets of the namespace, by id."""

    @property
    @abstractmethod
    def local(self) -> LocalAdapter:
        """The adapter that serves this process's sockets (this one, or the one it wraps)."""

    @abstractmethod
    def add(self, socket: Socket) -> None:
        """A socket connected: it joins its own room."""

    @abstractmethod
    def remove(self, socket: Socket) -> None:
        """A socket is gone: it leaves every room."""

    @abstractmethod
    def join(self, sid: str, rooms: Iterable[str]) -> None: ...

    @abstractmethod
    def leave(self, sid: str, room: str) -> None: ...

    @abstractmethod
    def rooms_of(self, sid: str) -> frozenset[str]: ...

    @abstractmethod
    def select(self, flags: BroadcastFlags) -> list[Socket]:
        """This process's connected sockets that ``flags`` select."""

    # -- delivery -------------------------------------------------------------------------

    @abstractmethod
    async def deliver(
        self, packet: Packet, flags: BroadcastFlags, offset: str | None = None
    ) -> int:
        """Deliver to the matching sockets of this process; how many got it."""

    @abstractmethod
    async def broadcast(
        self, packet: Packet, flags: BroadcastFlags, offset: str | None = None
    ) -> None:
        """Deliver to every matching socket, in every process unless ``flags.local``.
        ``offset`` is the packet's in the recovery log (already its last argument), if any."""

    @abstractmethod
    async def broadcast_with_ack(
        self, packet: Packet, flags: BroadcastFlags
    ) -> tuple[list[Any], bool]:
        """Deliver and gather acknowledgements: the responses, and whether all came in time."""

    @abstractmethod
    async def fetch_sockets(self, flags: BroadcastFlags) -> list[Socket | RemoteSocket]: ...

    @abstractmethod
    async def add_sockets(self, flags: BroadcastFlags, rooms: frozenset[str]) -> None: ...

    @abstractmethod
    async def del_sockets(self, flags: BroadcastFlags, rooms: frozenset[str]) -> None: ...

    @abstractmethod
    async def disconnect_sockets(self, flags: BroadcastFlags, close: bool) -> None: ...

    # -- connection state recovery --------------------------------------------------------

    @abstractmethod
    def hold(self, sid: str, rooms: Iterable[str]) -> list[HeldPacket]:
        """Put a socket being restored in its rooms before it is connected: what is delivered
        to it meanwhile is appended to the returned list instead of being sent."""

    @abstractmethod
    def release(self, sid: str) -> None:
        """The socket held by :meth:`hold` connected (or failed to): stop holding for it."""

    @property
    @abstractmethod
    def head(self) -> str | None:
        """The offset of the newest recorded packet this process has seen here, if any."""

    async def position(self) -> str | None:
        """Where the packet log stands for this namespace now (None without recovery): a
        socket connecting now was sent nothing recorded at or before it."""
        return None

    def emit_to(
        self, socket: Socket, packet: Packet, flags: BroadcastFlags
    ) -> Awaitable[None] | None:
        """Send an EVENT without an acknowledgement to one connected socket (``socket.emit``,
        ``flags`` its own room): with recovery on, recorded first, and sent in its place among
        the connection's packets once it is, without the emitter waiting for the store. The
        send to await, if there is one."""
        return socket.client.send(packet)

    def record(self, packet: Packet, flags: BroadcastFlags) -> str | Awaitable[str | None] | None:
        """Record an EVENT about to be sent, appending its offset to its arguments; the offset,
        or None when nothing is recorded (no recovery, a volatile packet, a store failure).
        A store that waits gives an awaitable of that instead: the packet is sent once it is
        recorded (write-ahead)."""
        return None

    async def persist_session(self, session: SessionRecord) -> None:  # noqa: B027
        """Keep the session of a socket that disconnected for a recoverable reason.
        Nothing to do without recovery."""

    async def discard_session(self, pid: str) -> None:  # noqa: B027
        """The socket of ``pid`` disconnected for a reason that is not recoverable: its
        session must not be restored (a kept one is removed). Nothing to do without recovery."""

    async def restore_session(
        self, pid: str, offset: str | None, user_id: str | None
    ) -> RecoveredSession | None:
        """The session of ``pid`` with the packets it missed since ``offset``, once; None
        without recovery or when it cannot be restored."""
        return None

    async def took_over(self, pid: str) -> None:  # noqa: B027
        """A restore in this process took over session ``pid``, which was kept while its
        socket was connected (``persist_live_sessions``): the other processes close that
        socket's connection if they still hold it. Nothing to do in one process."""

    async def taken_over(self, pid: str) -> None:  # noqa: B027
        """Another process took over session ``pid``: close its socket's connection here,
        if this process still holds it, without keeping or discarding the session (it is the
        other process's now). Nothing to do without recovery."""

    async def close(self) -> None:  # noqa: B027
        """Release what the adapter holds (the server is shutting down)."""


class LocalAdapter(Adapter):
    """This process's sockets and rooms of one namespace, or of a dynamic family's children."""

    def __init__(self, nsp: Namespace) -> None:
        self.nsp = nsp
        self.index = RoomIndex()
        self._sockets: dict[str, Socket] = {}
        self._held: dict[str, list[HeldPacket]] = {}
        self._head: str | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.nsp.name}>"

    @property
    def sockets(self) -> dict[str, Socket]:
        return self._sockets

    @property
    def local(self) -> LocalAdapter:
        return self

    @property
    def head(self) -> str | None:
        return self._head

    def advance(self, offset: str) -> None:
        """A packet with ``offset`` was recorded here: the newest this process has seen."""
        self._head = offset

    def add(self, socket: Socket) -> None:
        self._sockets[socket.id] = socket
        self.index.add(socket.id, (socket.id,))

    def remove(self, socket: Socket) -> None:
        current = self._sockets.get(socket.id)
        if current is socket:
            del self._sockets[socket.id]
            self.index.remove(socket.id)
        elif current is None and socket.id not in self._held:
            # It never connected (refused, or its session closed first): the rooms a
            # middleware made it join go too.
            self.index.remove(socket.id)
        # Otherwise a restored socket with the same id has replaced this one, whose old
        # connection closed late: its rooms are the new socket's now (socket.io#4880).

    def join(self, sid: str, rooms: Iterable[str]) -> None:
        self.index.add(sid, rooms)

    def leave(self, sid: str, room: str) -> None:
        self.index.discard(sid, room)

    def rooms_of(self, sid: str) -> frozenset[str]:
        return self.index.rooms_of(sid)

    def _family(self) -> Iterator[LocalAdapter]:
        """The adapters whose sockets this one serves: its own, or a family's children's."""
        children = self.nsp.children
        if not children:
            yield self
            return
        for child in list(children.values()):
            yield child.adapter.local

    def select(self, flags: BroadcastFlags) -> list[Socket]:
        found = []
        for adapter in self._family():
            sockets = adapter._sockets
            for sid in adapter.index.select(flags.rooms, flags.except_rooms):
                socket = sockets.get(sid)
                if socket is not None and socket.connected and sid != flags.exclude_sid:
                    found.append(socket)
        return found

    def hold(self, sid: str, rooms: Iterable[str]) -> list[HeldPacket]:
        held: list[HeldPacket] = []
        self._held[sid] = held
        self.index.add(sid, rooms)
        return held

    def release(self, sid: str) -> None:
        if self._held.pop(sid, None) is not None and sid not in self._sockets:
            self.index.remove(sid)

    # -- delivery -------------------------------------------------------------------------

    async def deliver(
        self, packet: Packet, flags: BroadcastFlags, offset: str | None = None
    ) -> int:
        """Deliver to the matching local sockets; the packet is encoded once per namespace."""
        delivered = 0
        # Read once: the loop below runs once per recipient.
        exclude, volatile = flags.exclude_sid, flags.volatile
        for adapter in self._family():
            if offset is not None:
                adapter._head = offset
            packet.namespace = adapter.nsp.name
            encoded = engine_packets(encode(packet))
            sockets = adapter._sockets
            for sid in adapter.index.select(flags.rooms, flags.except_rooms):
                if sid == exclude:
                    continue
                socket = sockets.get(sid)
                if socket is None:
                    held = adapter._held.get(sid)
                    if held is not None:
                        held.append((offset, encoded))
                    continue
                if not socket.connected:
                    continue
                replayed = socket.replayed
                if replayed is not None and offset in replayed:
                    continue  # replayed when it was restored, and only now delivered here
                session = socket.client.session
                if volatile and not session.transport.writable:
                    continue
                await session.send_packets(encoded)
                delivered += 1
        return delivered

    async def broadcast(
        self, packet: Packet, flags: BroadcastFlags, offset: str | None = None
    ) -> None:
        await self.deliver(packet, flags, offset)

    async def broadcast_with_ack(
        self, packet: Packet, flags: BroadcastFlags
    ) -> tuple[list[Any], bool]:
        assert flags.timeout is not None
        loop = asyncio.get_running_loop()
        responses: list[Any] = []
        done: asyncio.Future[None] = loop.create_future()
        targets = self.select(flags)
        expected = len(targets)
        if expected == 0:
            return responses, True
        registered: list[tuple[Socket, int]] = []

        def on_ack(args: list[Any]) -> None:
            responses.append(args[0] if len(args) == 1 else args)
            if len(responses) == expected and not done.done():
                done.set_result(None)

        for socket in targets:
            ack_id = socket.nsp.next_ack_id()
            socket.acks[ack_id] = on_ack
            registered.append((socket, ack_id))
            packet.namespace = socket.nsp.name
            packet.id = ack_id
            await socket.client.send(packet)
        try:
            await asyncio.wait_for(done, flags.timeout)
        except TimeoutError:
            return list(responses), False
        finally:
            for socket, ack_id in registered:
                socket.acks.pop(ack_id, None)
        return responses, True

    async def fetch_sockets(self, flags: BroadcastFlags) -> list[Socket | RemoteSocket]:
        return list(self.select(flags))

    async def add_sockets(self, flags: BroadcastFlags, rooms: frozenset[str]) -> None:
        for socket in self.select(flags):
            socket.join(rooms)

    async def del_sockets(self, flags: BroadcastFlags, rooms: frozenset[str]) -> None:
        for socket in self.select(flags):
            for room in rooms:
                socket.leave(room)

    async def disconnect_sockets(self, flags: BroadcastFlags, close: bool) -> None:
        for socket in self.select(flags):
            await socket.disconnect(close)
