"""A namespace at run time: its handlers, its local sockets and room index, and delivery."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..engineio.packet import Packet as EnginePacket
from ..engineio.packet import PacketType as EnginePacketType
from .adapter import RoomIndex
from .broadcast import BroadcastFlags, BroadcastOperator
from .handlers import Handler, Handlers
from .packet import Packet, encode

if TYPE_CHECKING:
    from .bus import RemoteSocket
    from .server import SocketIOServer
    from .socket import Socket

__all__ = ["Namespace", "engine_packets"]

logger = logging.getLogger("channels_sio.socketio")


def engine_packets(parts: list[str | bytes]) -> list[EnginePacket]:
    """An encoded Socket.IO packet (:func:`encode`) as the Engine.IO messages that carry it."""
    return [EnginePacket(EnginePacketType.MESSAGE, part) for part in parts]


class Namespace:
    """One namespace (``/``, ``/chat``, or a child of a dynamic namespace).

    ``sio.of("/chat")`` returns it: register handlers with :meth:`on` and :meth:`use`, and
    broadcast with :meth:`emit`, :meth:`to`, :meth:`except_` and the other operator methods.
    A dynamic (parent) namespace has no sockets of its own; its operations cover its children.
    """

    def __init__(
        self,
        server: SocketIOServer,
        name: str,
        handlers: Handlers | None = None,
        *,
        parent: Namespace | None = None,
    ) -> None:
        self.server = server
        self.name = name
        self.handlers = handlers or Handlers()
        self.parent = parent
        self.children: dict[str, Namespace] = {}
        self.sockets: dict[str, Socket] = {}
        self.rooms = RoomIndex()
        self._next_ack_id = 0

    def __repr__(self) -> str:
        return f"<Namespace {self.name}>"

    # -- handlers -------------------------------------------------------------------------

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Register a handler for ``event`` ("connect", "disconnect", "*" or an event name).

        Use as ``@nsp.on("chat")`` or ``nsp.on("chat", handler)``.
        """
        if handler is not None:
            self.handlers.register(event, handler)
            return handler

        def decorator(func: Handler) -> Handler:
            self.handlers.register(event, func)
            return func

        return decorator

    def use(self, middleware: Handler) -> Handler:
        """Add a middleware ``(socket, auth)``: raise ConnectionRefusedError to refuse."""
        self.handlers.use(middleware)
        return middleware

    # -- sockets --------------------------------------------------------------------------

    def next_ack_id(self) -> int:
        ack_id = self._next_ack_id
        self._next_ack_id += 1
        return ack_id

    def add(self, socket: Socket) -> None:
        self.sockets[socket.id] = socket
        self.rooms.add(socket.id, (socket.id,))

    def remove(self, socket: Socket) -> None:
        self.sockets.pop(socket.id, None)
        self.rooms.remove(socket.id)

    def _family(self) -> Iterable[Namespace]:
        return self.children.values() if self.children else (self,)

    def select_sockets(self, flags: BroadcastFlags) -> list[Socket]:
        """Local connected sockets matching the flags' rooms."""
        found = []
        for nsp in self._family():
            for sid in nsp.rooms.select(flags.rooms, flags.except_rooms):
                socket = nsp.sockets.get(sid)
                if socket is not None and socket.connected and sid != flags.exclude_sid:
                    found.append(socket)
        return found

    # -- delivery -------------------------------------------------------------------------

    async def broadcast(self, packet: Packet, flags: BroadcastFlags) -> int:
        """Deliver to the matching local sockets; the packet is encoded once per namespace."""
        delivered = 0
        for nsp in self._family():
            packet.namespace = nsp.name
            encoded = engine_packets(encode(packet))
            for sid in nsp.rooms.select(flags.rooms, flags.except_rooms):
                socket = nsp.sockets.get(sid)
                if socket is None or not socket.connected or sid == flags.exclude_sid:
                    continue
                session = socket.client.session
                if flags.volatile and not session.transport.writable:
                    continue
                await session.send_packets(encoded)
                delivered += 1
        return delivered

    async def broadcast_with_ack(
        self, packet: Packet, flags: BroadcastFlags
    ) -> tuple[list[Any], bool]:
        """Deliver to the matching local sockets and gather their acknowledgements.

        Returns the responses and whether every socket answered within ``flags.timeout``.
        """
        assert flags.timeout is not None
        loop = asyncio.get_running_loop()
        responses: list[Any] = []
        done: asyncio.Future[None] = loop.create_future()
        targets = self.select_sockets(flags)
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

    # -- operator shortcuts ---------------------------------------------------------------

    @property
    def operator(self) -> BroadcastOperator:
        """A broadcast operator targeting every socket of this namespace."""
        return BroadcastOperator(self)

    def to(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        return self.operator.to(*rooms)

    in_ = to

    def except_(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        return self.operator.except_(*rooms)

    @property
    def volatile(self) -> BroadcastOperator:
        return self.operator.volatile

    @property
    def local(self) -> BroadcastOperator:
        return self.operator.local

    def timeout(self, ms: int) -> BroadcastOperator:
        return self.operator.timeout(ms)

    def compress(self, compress: bool = True) -> BroadcastOperator:
        return self.operator.compress(compress)

    async def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to every socket of the namespace."""
        await self.operator.emit(event, *args)

    async def emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        return await self.operator.emit_with_ack(event, *args)

    async def fetch_sockets(self) -> list[Socket | RemoteSocket]:
        return await self.operator.fetch_sockets()

    async def sockets_join(self, *rooms: str | Iterable[str]) -> None:
        await self.operator.sockets_join(*rooms)

    async def sockets_leave(self, *rooms: str | Iterable[str]) -> None:
        await self.operator.sockets_leave(*rooms)

    async def disconnect_sockets(self, close: bool = False) -> None:
        await self.operator.disconnect_sockets(close)
