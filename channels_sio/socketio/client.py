"""The one bridge between an Engine.IO session and its Socket.IO namespaces."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Coroutine
from typing import TYPE_CHECKING, Any

from ..engineio import CloseReason, Session
from ..engineio.packet import Packet as EnginePacket
from ..engineio.session import DONE
from .adapter import RecoveredSession, engine_packets
from .exceptions import ConnectionRefusedError
from .packet import Decoder, Packet, PacketType, SocketIOParseError, encode
from .socket import Socket, SocketState, new_pid

if TYPE_CHECKING:
    from .server import SocketIOServer

__all__ = ["Client", "Deferred"]

logger = logging.getLogger("channels_sio.socketio")

_INVALID_NAMESPACE = {"message": "Invalid namespace"}

# Read on every packet: module-level names, because Python 3.11 looks an enum member up
# on its class through a descriptor call.
_CONNECT, _EVENT, _ACK = PacketType.CONNECT, PacketType.EVENT, PacketType.ACK
_SOCKET_CONNECTED = SocketState.CONNECTED


class Deferred:
    """A packet's place in its connection's send order, taken when it is sent and filled
    later (:meth:`Client.defer`): a recorded emit, which goes out once the recovery store
    has given it its offset, while its sender goes on."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        #: What to send (:func:`~.packet.encode`'s messages), once known; ``[]`` for nothing.
        self.parts: list[str | bytes] | None = None


class Client:
    """Owns the decoder of one Engine.IO session, routes its packets to namespace sockets,
    closes it on protocol violations, and enforces the connect timeout."""

    def __init__(self, server: SocketIOServer, session: Session) -> None:
        self.server = server
        self.session = session
        self.decoder = Decoder(server.config.max_attachments)
        self.sockets: dict[str, Socket] = {}
        # Tasks started for this connection's packets that have not run yet (Python 3.11).
        self._unstarted = 0
        # Packets to send in order, the first still waiting to be filled (see defer()); None
        # until a packet is deferred (with connection state recovery only).
        self._backlog: deque[Deferred] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._connect_timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            server.config.connect_timeout / 1000, self._connect_timed_out
        )

    def __repr__(self) -> str:
        return f"<Client {self.session.sid} {sorted(self.sockets)}>"

    def send(self, packet: Packet) -> Awaitable[None]:
        """Send a packet, awaited (its encoding errors raise at once)."""
        return self.send_parts(encode(packet))

    def send_parts(self, parts: list[str | bytes]) -> Awaitable[None]:
        """Send an encoded packet (:func:`~.packet.encode`'s messages), awaited."""
        if self._backlog:
            return self._behind(parts)
        if len(parts) == 1:
            return self.session.send(parts[0])
        return self.session.send_packets(engine_packets(parts))

    async def send_encoded(self, packets: list[EnginePacket]) -> None:
        if self._backlog:
            self._behind([packet.data for packet in packets])
            return
        await self.session.send_packets(packets)

    # -- sending in order with packets sent later -----------------------------------------

    def defer(self, place: Deferred) -> None:
        """Take ``place`` in this connection's send order: what is sent after it waits until
        it is filled (:meth:`fill`)."""
        backlog = self._backlog
        if backlog is None:
            backlog = self._backlog = deque()
        backlog.append(place)

    def fill(self, place: Deferred, parts: list[str | bytes]) -> None:
        """A deferred packet is ready (``parts`` as :func:`~.packet.encode` gives them; ``[]``
        to drop it): send what waited for it, in order, without waiting for the client."""
        place.parts = parts
        backlog = self._backlog
        assert backlog is not None
        if backlog[0] is not place:
            return  # an earlier one still waits: this goes out with it
        backlog.popleft()
        out = parts
        if backlog:
            out = list(parts)
        while backlog:
            ready = backlog[0].parts
            if ready is None:
                break
            out += ready
            backlog.popleft()
        if len(out) == 1:
            self.session.post(out[0])
        elif out:
            self.session.post_packets(engine_packets(out))
        if not backlog and self._drained is not None:
            self._drained.set_result(None)
            self._drained = None

    def _behind(self, parts: list[str | bytes]) -> Awaitable[None]:
        place = Deferred()
        place.parts = parts
        self.defer(place)
        return DONE

    async def flushed(self) -> None:
        """Wait until every deferred packet of this connection has been sent (or dropped)."""
        if self._backlog:
            if self._drained is None:
                self._drained = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._drained)

    # -- receiving ------------------------------------------------------------------------

    async def receive(self, message: str | bytes) -> None:
        """One Engine.IO message from the client."""
        try:
            packet = self.decoder.feed(message)
        except SocketIOParseError as exc:
            logger.info("session %s: malformed Socket.IO packet: %s", self.session.sid, exc)
            await self.session.close(CloseReason.PARSE_ERROR)
            return
        if packet is None:
            return
        kind = packet.type
        if kind is _CONNECT:
            # Middlewares and connect handlers may be slow (database, auth): off the receive path.
            self.start(self._connect(packet))
            return
        socket = self.sockets.get(packet.namespace)
        if socket is None or socket.state is not _SOCKET_CONNECTED:
            logger.debug(
                "session %s: packet for unconnected %s", self.session.sid, packet.namespace
            )
            return
        if kind is _EVENT:
            ack = socket.handle_event(packet, at_once=not self._unstarted)
            if ack is not None:
                await self.send_parts(ack)
        elif kind is _ACK:
            socket.handle_ack(packet)
        elif kind is PacketType.DISCONNECT:
            await socket.closed("client namespace disconnect")

    def start(self, coro: Coroutine[Any, Any, None]) -> None:
        """Handle one packet of this connection at once, up to its first wait, and the rest
        in a task of its own (the server's: :meth:`.SocketIOServer.start_handler`).

        When the server could only start a task, which starts on the loop's next turn, this
        connection's later packets start in tasks too until it has (see also
        ``Socket.handle_event``), so that none overtakes it.
        """
        if not self.server.start_handler(coro, eager=not self._unstarted):
            self._unstarted += 1
            # The task's first step is the last callback in the loop's queue: this one follows.
            asyncio.get_running_loop().call_soon(self._task_began)

    def _task_began(self) -> None:
        self._unstarted -= 1

    async def _connect(self, packet: Packet) -> None:
        name = packet.namespace
        if name in self.sockets:
            logger.info("session %s: second CONNECT to %s ignored", self.session.sid, name)
            return
        auth: dict[str, Any] = packet.data if isinstance(packet.data, dict) else {}
        nsp = await self.server.resolve_namespace(name, auth)
        if nsp is None:
            self.server.notify("connect_refused", self, name, _INVALID_NAMESPACE)
            await self.send(Packet(PacketType.CONNECT_ERROR, name, _INVALID_NAMESPACE))
            return
        if not self.session.is_open:
            return  # closed while a dynamic namespace's matcher ran: no socket to make
        socket = Socket(nsp, self, auth)
        self.sockets[name] = socket
        adapter = nsp.adapter
        recovered: RecoveredSession | None = None
        if adapter.records:
            recovered = await self._restore(socket, auth)
            if recovered is not None:
                socket.take_over(recovered)
            else:
                socket.pid = new_pid()
                socket.position = await adapter.position()
        try:
            accepted = await self.server.run_connect(
                socket, auth, middlewares=recovered is None or not self.server.skips_middlewares
            )
        except ConnectionRefusedError as refusal:
            accepted, payload = False, refusal.payload()
        except Exception:
            # A bug in a middleware or connect handler refuses the socket (the client learns
            # at once, and may retry) without showing the client the exception's text.
            logger.exception("connect handler or middleware failed on %s", name)
            accepted, payload = False, {"message": "Internal server error"}
        else:
            payload = ConnectionRefusedError().payload()
        if not self.session.is_open or self.sockets.get(name) is not socket:
            if recovered is not None:
                # Lost again while being restored: the session is kept for the next attempt.
                await adapter.persist_session(socket.session_record())
                adapter.release(socket.id)
            return
        if not accepted:
            if recovered is not None:
                adapter.release(socket.id)
            del self.sockets[name]
            await socket.closed("server namespace disconnect")
            self.server.notify("connect_refused", self, name, payload)
            await self.send(Packet(PacketType.CONNECT_ERROR, name, payload))
            return
        self._cancel_connect_timer()
        await socket.connected_now(recovered)

    async def _restore(self, socket: Socket, auth: dict[str, Any]) -> RecoveredSession | None:
        """The session the client asks to recover (``pid`` and ``offset`` in its auth), if it
        can be; any failure gives a fresh socket, never an error."""
        pid, offset = auth.get("pid"), auth.get("offset")
        if not isinstance(pid, str) or not pid:
            return None
        try:
            return await socket.nsp.adapter.restore_session(
                pid, offset if isinstance(offset, str) else None, socket.user_id
            )
        except Exception:
            logger.exception("could not restore session %s on %s", pid, socket.nsp.name)
            return None

    # -- closing --------------------------------------------------------------------------

    def forget(self, socket: Socket) -> None:
        if self.sockets.get(socket.nsp.name) is socket:
            del self.sockets[socket.nsp.name]

    async def close_by_server(self) -> None:
        """``socket.disconnect(close=True)``: every socket goes, then the connection."""
        await self.flushed()  # what was emitted before goes first
        for socket in list(self.sockets.values()):
            # A DISCONNECT per namespace first, as socket.io does: the client then reports
            # "io server disconnect" and stays away, where a bare transport close would make
            # it reconnect at once.
            if socket.connected:
                await self.send(Packet(PacketType.DISCONNECT, socket.nsp.name))
            await socket.closed("forced server close")
        await self.session.close(CloseReason.FORCED_CLOSE)

    async def engine_closed(self, reason: CloseReason) -> None:
        """The Engine.IO session closed: each socket disconnects with that reason."""
        self._cancel_connect_timer()
        for socket in list(self.sockets.values()):
            await socket.closed(str(reason))

    def _connect_timed_out(self) -> None:
        self._connect_timer = None
        if not any(socket.connected for socket in self.sockets.values()):
            logger.info("session %s: no namespace joined within connect_timeout", self.session.sid)
            self.server.spawn(self.session.close(CloseReason.FORCED_CLOSE))

    def _cancel_connect_timer(self) -> None:
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
