"""A Socket.IO socket: one client connected to one namespace."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from ..engineio.packet import Packet as EnginePacket
from .adapter import RecoveredSession, SessionRecord, engine_packets
from .broadcast import BroadcastFlags, BroadcastOperator, _room_set
from .exceptions import AckTimeoutError, DisconnectedError
from .handlers import Handler, run_at_once
from .packet import Packet, PacketType, encode, validate_event_name

if TYPE_CHECKING:
    # Types only: this layer imports no Django at run time.
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.base import SessionBase

    from .bus import SocketSnapshot
    from .client import Client
    from .namespace import Namespace

__all__ = ["RECOVERABLE_REASONS", "Handshake", "Socket", "SocketState", "new_pid"]

logger = logging.getLogger("channels_sio.socketio")

AckCallback = Callable[[list[Any]], None]

#: How long a recovered socket remembers the offsets replayed to it (seconds): longer than a
#: packet recorded before the restore can take to reach it.
REPLAYED_KEPT = 30.0

#: Disconnect reasons after which the session is kept for connection state recovery: the
#: connection was lost, or the server closed it without a DISCONNECT packet, so the client
#: reconnects. Never after a disconnect either side asked for (the client then stays away) or
#: after a malformed packet ("parse error").
RECOVERABLE_REASONS = frozenset(
    {"transport close", "transport error", "ping timeout", "forced close", "server shutting down"}
)


def new_pid() -> str:
    """A private session id: unguessable, and never a socket id or an Engine.IO sid."""
    return secrets.token_urlsafe(18)


class SocketState(Enum):
    """Life cycle of a socket."""

    CONNECTING = "connecting"  # middlewares and the connect handler are running
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class Handshake:
    """What the client sent when it connected, as socket.io's ``socket.handshake``."""

    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    auth: dict[str, Any] = field(default_factory=dict)
    address: str | None = None
    url: str = ""
    secure: bool = False
    issued: int = 0  # milliseconds since the epoch
    time: str = ""

    @classmethod
    def from_scope(cls, scope: Any, auth: dict[str, Any], now: float) -> Handshake:
        """The handshake of a connection opened by ``scope``, at ``now`` (``time.time()``)."""
        if not isinstance(scope, dict):
            return cls(auth=auth)
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers", ())
        }
        query_string = scope.get("query_string", b"").decode("latin-1")
        client = scope.get("client")
        return cls(
            headers=headers,
            query=dict(parse_qsl(query_string)),
            auth=auth,
            address=client[0] if client else None,
            url=scope.get("path", "") + (f"?{query_string}" if query_string else ""),
            secure=scope.get("scheme") in ("https", "wss"),
            issued=int(now * 1000),
            time=time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)),
        )


# Read on every packet: module-level names, because Python 3.11 looks an enum member up
# on its class through a descriptor call.
_CONNECTED = SocketState.CONNECTED
_ACK = PacketType.ACK


def _ack_args(result: Any) -> list[Any]:
    """A handler's return value as acknowledgement arguments."""
    if result is None:
        return []
    if isinstance(result, tuple):
        return list(result)
    return [result]


class Socket:
    """One client's connection to one namespace.

    ``id`` is this socket's own id (never the Engine.IO sid). ``scope`` is the ASGI scope of
    the request that opened the connection, so ``user`` and ``session`` are Django's when it went
    through the connection middleware (``get_application``'s default, or Channels'
    ``AuthMiddlewareStack``). ``data`` is free for the application.
    """

    def __init__(self, nsp: Namespace, client: Client, auth: dict[str, Any]) -> None:
        self.id = secrets.token_urlsafe(16)  # 128 bits
        self.nsp = nsp
        self.client = client
        self._auth = auth
        self._connected_at = time.time()
        self._handshake: Handshake | None = None
        self.data: dict[str, Any] = {}
        self._user: AbstractBaseUser | AnonymousUser | None = None
        self.state = SocketState.CONNECTING
        #: The private session id a client brings back to recover this socket (recovery on).
        self.pid: str | None = None
        #: Whether this socket took over a previous connection's id, rooms, data and missed
        #: packets (connection state recovery).
        self.recovered = False
        #: Where in the packet log to replay from if the client comes back without an offset.
        self.position: str | None = None
        #: Offsets replayed to a recovered socket, which a delivery still on its way must not
        #: repeat; dropped after ``REPLAYED_KEPT`` seconds.
        self.replayed: set[str] | None = None
        self._own_room: BroadcastFlags | None = None
        self.acks: dict[int, AckCallback] = {}
        # A dict as an ordered set: an empty one is a third the size of an empty set, and
        # most sockets never wait for an acknowledgement.
        self._waiting: dict[asyncio.Future[list[Any]], None] = {}
        self._queued: list[list[EnginePacket]] = []

    def __repr__(self) -> str:
        return f"<Socket {self.id} {self.nsp.name} {self.state.value}>"

    # -- Django and connection facts ------------------------------------------------------

    @property
    def handshake(self) -> Handshake:
        """What the client sent when it connected (built on first use)."""
        if self._handshake is None:
            self._handshake = Handshake.from_scope(
                self.client.session.context, self._auth, self._connected_at
            )
        return self._handshake

    @property
    def scope(self) -> dict[str, Any]:
        context = self.client.session.context
        return context if isinstance(context, dict) else {}

    @property
    def user(self) -> AbstractBaseUser | AnonymousUser | None:
        """The Django user: the one a middleware or the connect handler set (say from a token
        in the auth payload), else the opening request's (``AnonymousUser`` when logged out,
        ``None`` when the request went through no connection middleware)."""
        if self._user is not None:
            return self._user
        user: AbstractBaseUser | AnonymousUser | None = self.scope.get("user")
        return user

    @user.setter
    def user(self, user: AbstractBaseUser | AnonymousUser | None) -> None:
        # This socket's own: the scope is shared by every namespace of the connection.
        self._user = user

    @property
    def session(self) -> SessionBase | None:
        """The Django session of the opening request (changes are saved by the handler); None
        when no connection middleware put one on the scope."""
        session: SessionBase | None = self.scope.get("session")
        return session

    @property
    def connected(self) -> bool:
        return self.state is _CONNECTED

    @property
    def rooms(self) -> frozenset[str]:
        """The rooms this socket is in, its own id included."""
        return self.nsp.adapter.rooms_of(self.id)

    # -- sending --------------------------------------------------------------------------

    async def _send(self, packet: Packet) -> None:
        if self.state is SocketState.CONNECTING:
            # Emitted from a middleware or connect handler: sent right after the CONNECT reply,
            # but encoded now, so that bad arguments raise in the emitting code.
            self._queued.append(engine_packets(encode(packet)))
        elif self.state is SocketState.CONNECTED:
            await self.client.send(packet)

    async def emit(
        self, event: str, *args: Any, callback: Callable[..., Any] | None = None
    ) -> None:
        """Send ``event`` to this client; ``callback(*ack_args)`` runs when it acknowledges."""
        validate_event_name(event)
        packet = Packet(PacketType.EVENT, self.nsp.name, [event, *args])
        if callback is None and self.pid is not None:
            # With recovery on, recorded by the adapter as sent to this socket's own room (as
            # socket.io does), and given its offset; then it goes straight to this socket, the
            # only one that room holds.
            state = self.state
            if state is SocketState.DISCONNECTED:
                return
            flags = self._own_room
            if flags is None or self.id not in flags.rooms:  # its id changes on recovery
                flags = self._own_room = BroadcastFlags(rooms=frozenset((self.id,)), local=True)
            if state is _CONNECTED:
                # Sent once recorded, in its place among this connection's packets; the
                # emitter need not wait for the store.
                sending = self.nsp.adapter.emit_to(self, packet, flags)
                if sending is not None:
                    await sending
                return
            # From a middleware or connect handler: recorded now, sent after the CONNECT reply.
            recorded = self.nsp.adapter.record(packet, flags)
            if recorded is not None and not isinstance(recorded, str):
                await recorded
            await self._send(packet)
            return
        if callback is not None:
            packet.id = self.nsp.next_ack_id()
            server = self.nsp.server

            async def call(ack_args: list[Any]) -> None:
                await server.call_handler(callback, *ack_args)

            def on_ack(ack_args: list[Any]) -> None:
                self.client.start(call(ack_args))

            self.acks[packet.id] = on_ack
        await self._send(packet)

    async def emit_with_ack(
        self,
        event: str,
        *args: Any,
        timeout: float | None = None,
    ) -> Any:
        """Send ``event`` and wait for the client's acknowledgement.

        Returns the acknowledgement's argument (a tuple when there are several, None for
        none). ``timeout`` is in seconds; on expiry :class:`AckTimeoutError` is raised.
        """
        validate_event_name(event)
        if self.state is SocketState.DISCONNECTED:
            raise DisconnectedError(f"socket {self.id} is disconnected")
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        packet = Packet(PacketType.EVENT, self.nsp.name, [event, *args], self.nsp.next_ack_id())
        ack_id = packet.id
        assert ack_id is not None

        def on_ack(ack_args: list[Any]) -> None:
            if not future.done():
                future.set_result(ack_args)

        self.acks[ack_id] = on_ack
        self._waiting[future] = None
        try:
            await self._send(packet)
            result = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AckTimeoutError(f"no acknowledgement for {event!r} within {timeout}s") from None
        finally:
            self.acks.pop(ack_id, None)
            self._waiting.pop(future, None)
        if len(result) == 1:
            return result[0]
        return tuple(result) if result else None

    def snapshot(self, node: str) -> SocketSnapshot:
        """This socket as described to other processes (``data`` must be serializable)."""
        from .bus import SocketSnapshot

        return SocketSnapshot(
            id=self.id,
            namespace=self.nsp.name,
            rooms=self.rooms,
            data=self.data,
            handshake=self.handshake,
            node=node,
        )

    # -- rooms ----------------------------------------------------------------------------

    def join(self, *rooms: str | Iterable[str]) -> None:
        """Join one or more rooms."""
        if self.state is not SocketState.DISCONNECTED:
            self.nsp.adapter.join(self.id, _room_set(rooms))

    def leave(self, room: str) -> None:
        """Leave a room."""
        self.nsp.adapter.leave(self.id, room)

    def to(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        """Broadcast to rooms, leaving this socket out."""
        return self.broadcast.to(*rooms)

    in_ = to

    def except_(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        return self.broadcast.except_(*rooms)

    @property
    def broadcast(self) -> BroadcastOperator:
        """Every socket of the namespace but this one."""
        return BroadcastOperator(self.nsp, BroadcastFlags(exclude_sid=self.id))

    @property
    def volatile(self) -> _SocketVolatile:
        """``socket.volatile.emit(...)``: dropped if the transport cannot take it now."""
        return _SocketVolatile(self)

    # -- receiving ------------------------------------------------------------------------

    def handle_event(self, packet: Packet, *, at_once: bool = True) -> list[str | bytes] | None:
        """Run the application's handler for an EVENT; returns the acknowledgement to send,
        encoded.

        A handler that cannot wait (see :func:`~.handlers.cannot_wait`) runs to its end here,
        as socket.io runs its handlers, and its acknowledgement is returned, unless
        ``at_once`` is False (an earlier packet's task has not started yet, and this one must
        not overtake it). Any other handler runs in a task of its own, which sends the
        acknowledgement itself; None is returned then.
        """
        event, *args = packet.data
        handlers = self.nsp.handlers
        handler = handlers.events.get(event)
        if handler is None:
            handler = handlers.catch_all
            if handler is None:
                return None
            args.insert(0, event)
        if not (at_once and handlers.runs_at_once(handler)):
            self.client.start(self._run_event(event, handler, args, packet.id))
            return None
        try:
            result = run_at_once(handler, self, *args)
        except Exception:
            logger.exception("handler for %r failed (socket %s, %s)", event, self.id, self.nsp)
            return None
        return self._ack(event, packet.id, result)

    async def _run_event(
        self, event: str, handler: Handler, args: list[Any], ack_id: int | None
    ) -> None:
        try:
            result = await self.nsp.server.call_handler(handler, self, *args)
        except Exception:
            logger.exception("handler for %r failed (socket %s, %s)", event, self.id, self.nsp)
            return
        ack = self._ack(event, ack_id, result)
        if ack is not None:
            await self.client.send_parts(ack)

    def _ack(self, event: str, ack_id: int | None, result: Any) -> list[str | bytes] | None:
        """The acknowledgement of a handler's result, encoded; None when none is to be sent."""
        if ack_id is None or self.state is not _CONNECTED:
            return None
        try:
            return encode(Packet(_ACK, self.nsp.name, _ack_args(result), ack_id))
        except (TypeError, ValueError) as exc:
            logger.error(
                "handler for %r returned what cannot be sent as an acknowledgement "
                "(socket %s, %s): %s",
                event,
                self.id,
                self.nsp,
                exc,
            )
            return None

    def handle_ack(self, packet: Packet) -> None:
        callback = self.acks.pop(packet.id, None) if packet.id is not None else None
        if callback is not None:
            callback(packet.data)

    # -- connecting and disconnecting -----------------------------------------------------

    @property
    def user_id(self) -> str | None:
        """The primary key of the authenticated Django user, as text (None when anonymous)."""
        user = self.user
        if user is None or not getattr(user, "is_authenticated", False):
            return None
        return str(user.pk)

    def take_over(self, recovered: RecoveredSession) -> None:
        """Become the socket of a recovered session: its id, pid, data and log position."""
        session = recovered.session
        self.id = session.sid
        self.pid = session.pid
        self.data = dict(session.data)
        self.recovered = True
        self.position = recovered.missed[-1][0] if recovered.missed else session.position

    def session_record(self) -> SessionRecord:
        """What is persisted of this socket for recovery (its rooms as they are now)."""
        assert self.pid is not None
        return SessionRecord(
            pid=self.pid,
            sid=self.id,
            namespace=self.nsp.name,
            rooms=self.rooms,
            data=self.data,
            user_id=self.user_id,
            position=self.position,
        )

    async def connected_now(self, recovered: RecoveredSession | None = None) -> None:
        """The connect handler accepted: reply CONNECT, then send what it emitted.

        A recovered socket first gets the packets it missed, each with its offset as its last
        argument, then those delivered to it while it was being restored (``held``) that the
        log had not shown yet, all before the CONNECT reply, as in socket.io.
        """
        name = self.nsp.name
        out: list[EnginePacket] = []
        if recovered is not None:
            replayed: set[str] = set()
            for offset, data in recovered.missed:
                replayed.add(offset)
                out.extend(engine_packets(encode(Packet(PacketType.EVENT, name, [*data, offset]))))
            for held_offset, encoded in recovered.held:
                if held_offset is None:
                    out.extend(encoded)
                elif held_offset not in replayed:
                    replayed.add(held_offset)
                    out.extend(encoded)
            if replayed:
                # A packet the log showed may still be on its way to this process (recorded,
                # not yet delivered): when it comes, it is dropped, not sent twice.
                self.replayed = replayed
                asyncio.get_running_loop().call_later(REPLAYED_KEPT, self._forget_replayed)
        reply: dict[str, Any] = {"sid": self.id}
        if self.pid is not None:
            reply["pid"] = self.pid
        out.extend(engine_packets(encode(Packet(PacketType.CONNECT, name, reply))))
        for encoded in self._queued:
            out.extend(encoded)
        self._queued = []
        # No wait from here to the send: a packet delivered meanwhile cannot overtake these.
        self.state = SocketState.CONNECTED
        adapter = self.nsp.adapter
        adapter.add(self)
        if recovered is not None:
            adapter.release(self.id)
        server = self.nsp.server
        if server.observers:
            server.notify("socket_connected", self)
        await self.client.send_encoded(out)
        hooks = server.hooks
        if hooks is not None:
            pending = hooks.connected(self)
            if pending is not None:
                await pending

    def _forget_replayed(self) -> None:
        self.replayed = None

    async def disconnect(self, close: bool = False) -> None:
        """Disconnect from this namespace; ``close=True`` closes the whole connection."""
        if self.state is SocketState.DISCONNECTED:
            return
        if close:
            await self.client.close_by_server()
            return
        if self.connected:
            await self.client.flushed()  # what was emitted before goes first
            await self.client.send(Packet(PacketType.DISCONNECT, self.nsp.name))
        await self.closed("server namespace disconnect")

    async def closed(self, reason: str) -> None:
        """The socket is gone (for ``reason``): leave every room and run the handler once."""
        if self.state is SocketState.DISCONNECTED:
            return
        was_connected = self.connected
        self.state = SocketState.DISCONNECTED
        adapter = self.nsp.adapter
        record = (
            self.session_record()
            if was_connected and self.pid is not None and reason in RECOVERABLE_REASONS
            else None
        )
        adapter.remove(self)
        self.client.forget(self)
        for future in self._waiting:
            if not future.done():
                future.set_exception(DisconnectedError(reason))
        self.acks.clear()
        self._queued.clear()
        if record is not None:
            await adapter.persist_session(record)
        elif was_connected and self.pid is not None:
            await adapter.discard_session(self.pid)
        handlers = self.nsp.handlers
        handler = handlers.disconnect
        server = self.nsp.server
        if was_connected and handler is not None:
            try:
                await server.call_handler(handler, *handlers.trim(handler, (self, reason)))
            except Exception:
                logger.exception("disconnect handler failed (socket %s, %s)", self.id, self.nsp)
        if was_connected and server.observers:
            server.notify("socket_disconnected", self, reason)
        hooks = server.hooks
        if was_connected and hooks is not None:
            pending = hooks.disconnected(self, reason)
            if pending is not None:
                await pending


class _SocketVolatile:
    __slots__ = ("socket",)

    def __init__(self, socket: Socket) -> None:
        self.socket = socket

    async def emit(self, event: str, *args: Any) -> None:
        # Checked before deciding to drop: an invalid name raises whatever the transport does.
        validate_event_name(event)
        socket = self.socket
        if socket.client.session.transport.writable:
            # Volatile packets are never recorded: no offset, straight to the client.
            await socket._send(Packet(PacketType.EVENT, socket.nsp.name, [event, *args]))
