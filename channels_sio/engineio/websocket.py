"""The WebSocket transport: one socket, used directly or as the target of an upgrade."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol

from .errors import CloseReason
from .packet import Packet, PacketType, ParseError, decode_packet, encode_packet
from .session import DONE, Session, Transport, UpgradeState

if TYPE_CHECKING:
    from .handover import RemoteProbe

__all__ = ["WebSocketSink", "WebSocketTransport"]

logger = logging.getLogger("channels_sio.engineio")

CLOSE_NORMAL = 1000
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
# Sent by uvicorn to every open socket when the worker shuts down.
CLOSE_SERVICE_RESTART = 1012
#: Close codes of a socket that broke the WebSocket protocol (a reserved bit or opcode, text that
#: is not UTF-8, a frame over the ASGI server's limit) or failed inside the ASGI server: the
#: session closes with ``transport error``, as engine.io's does when its ws library reports one.
CLOSE_CODES_OF_ERRORS = frozenset({1002, 1003, 1007, 1009, 1011})

_MESSAGE = str(int(PacketType.MESSAGE))


class WebSocketSink(Protocol):
    """What the transport needs of the consumer that owns the socket."""

    #: What ``send_frame`` and ``close_socket`` raise once the socket is closed: the socket
    #: is lost, not the worker.
    @property
    def closed_errors(self) -> tuple[type[Exception], ...]: ...

    async def accept(self) -> None: ...

    def send_frame(self, data: str | bytes) -> Awaitable[None]: ...

    async def close_socket(self, code: int) -> None: ...


class WebSocketTransport(Transport):
    """Engine.IO over one WebSocket. Frames out are written in order and contiguously."""

    name = "websocket"

    def __init__(self, sink: WebSocketSink, max_payload: int, max_queued: int = 10_000) -> None:
        self.sink = sink
        self.session: Session | None = None
        self._max_payload = max_payload
        self._max_queued = max_queued
        # Frames up to this many characters are within max_payload whatever their encoding
        # (UTF-8 takes at most 4 bytes per character), so only longer ones are measured.
        self._surely_fits = max_payload // 4
        # A list, swapped out whole by the writer: an idle socket's queue is empty, and an
        # empty deque costs ten times an empty list.
        self._queue: list[Packet] = []
        # Until the socket is accepted, writes only queue (see ``start_writing``).
        self._writing = True
        self._closed = False
        #: The upgrade of a session another process owns, until it is taken over here.
        self.remote: RemoteProbe | None = None

    async def start_writing(self) -> None:
        """The socket is accepted: send what was queued meanwhile."""
        self._writing = False
        await self.write([])

    @property
    def writable(self) -> bool:
        return not self._closed

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def write(self, packets: list[Packet]) -> None:
        if self._closed:
            return
        # One writer drains the queue; a concurrent caller leaves its packets to it, which
        # keeps multi-frame packets contiguous without a lock or a task per write.
        if self._writing:
            self._queue.extend(packets)
            if len(self._queue) > self._max_queued:
                self.overflow()
            return
        await self._drain(None, packets)

    def write_message(self, data: str | bytes) -> Awaitable[None]:
        # The common case, one message on an idle socket, goes out without a Packet.
        if self._closed:
            return DONE
        if self._writing:
            self._queue.append(Packet(PacketType.MESSAGE, data))
            if len(self._queue) > self._max_queued:
                self.overflow()
            return DONE
        return self._drain(_MESSAGE + data if isinstance(data, str) else data, [])

    async def _drain(self, frame: str | bytes | None, batch: list[Packet]) -> None:
        """As the one writer: send ``frame``, then ``batch``, then what others queued meanwhile."""
        self._writing = True
        try:
            if frame is not None:
                await self.sink.send_frame(frame)
            while True:
                for packet in batch:
                    if self._closed:
                        return
                    await self.sink.send_frame(encode_packet(packet))
                if not self._queue:
                    break
                batch, self._queue = self._queue, []
        except self.sink.closed_errors:
            self._lost()
        finally:
            self._writing = False

    def _lost(self) -> None:
        """The socket failed under a write: stop writing; the session closes in the background."""
        self._closed = True
        self._queue.clear()
        session = self.session
        if session is not None and session.transport is self:
            session._tasks.spawn(session.close(CloseReason.TRANSPORT_ERROR))

    def _too_large(self, frame: str | bytes) -> bool:
        size = len(frame.encode()) if isinstance(frame, str) else len(frame)
        return size > self._max_payload

    def receive(self, frame: str | bytes) -> Awaitable[None]:
        """One frame from the client, handled when the result is awaited."""
        session = self.session
        if session is None or self._closed:
            remote = self.remote
            if remote is not None and not self._closed:
                return remote.receive(frame)
            return DONE
        if len(frame) > self._surely_fits and self._too_large(frame):
            return self._refuse_too_large(session)
        if session.transport is self and isinstance(frame, str) and frame[:1] == _MESSAGE:
            # Most frames are messages on an upgraded socket: no Packet, and no coroutine of
            # this layer, for them.
            return session.receive_message(frame[1:])
        return self._receive_packet(session, frame)

    async def _refuse_too_large(self, session: Session) -> None:
        logger.info("session %s: frame over max_payload", session.sid)
        await self._fail(session, CLOSE_MESSAGE_TOO_BIG, CloseReason.TRANSPORT_ERROR)

    async def _receive_packet(self, session: Session, frame: str | bytes) -> None:
        try:
            packet = decode_packet(frame)
        except ParseError as exc:
            logger.info("session %s: malformed frame: %s", session.sid, exc)
            await self._fail(session, CLOSE_NORMAL, CloseReason.PARSE_ERROR)
            return
        if session.transport is self:
            await session.receive_packet(packet)
        elif session.is_probe(self):
            await self._receive_probe(session, packet)

    async def _receive_probe(self, session: Session, packet: Packet) -> None:
        if (
            packet.type is PacketType.PING
            and packet.data == "probe"
            and session.upgrade_state is UpgradeState.PROBING
        ):
            await session.probe_received()
        elif packet.type is PacketType.UPGRADE and session.upgrade_state is UpgradeState.UPGRADING:
            await session.complete_upgrade()
        elif packet.type is not PacketType.NOOP:
            logger.info("session %s: invalid packet during upgrade", session.sid)
            await session.abandon_upgrade()

    async def _fail(self, session: Session, code: int, reason: CloseReason) -> None:
        await self.close_socket(code)
        if session.is_probe(self):
            await session.abandon_upgrade()
        else:
            await session.close(reason)

    async def disconnected(self, code: int, reason: CloseReason | None = None) -> None:
        """The socket closed under us, with ``code``; for ``reason``, when the process that
        relays it closed it for one (its client does not read)."""
        self._closed = True
        self._queue.clear()
        session = self.session
        if session is None:
            if self.remote is not None:
                await self.remote.lost(code)
            return
        if session.is_probe(self):
            await session.abandon_upgrade()
        elif session.transport is self:
            if reason is not None:
                await session.close(reason)
            elif code == CLOSE_SERVICE_RESTART:
                await session.close(CloseReason.SERVER_SHUTTING_DOWN)
            elif code in CLOSE_CODES_OF_ERRORS:
                logger.info("session %s: WebSocket closed with error code %s", session.sid, code)
                await session.close(CloseReason.TRANSPORT_ERROR)
            else:
                await session.close(CloseReason.TRANSPORT_CLOSE)

    async def server_stopping(self) -> None:
        """The ASGI server is stopping this socket's application."""
        session = self.session
        if session is None and self.remote is not None:
            await self.remote.lost(CLOSE_SERVICE_RESTART)
        elif session is not None and session.transport is self:
            await session.close(CloseReason.SERVER_SHUTTING_DOWN)

    async def close(self, reason: CloseReason) -> None:
        await self.close_socket(CLOSE_NORMAL)

    async def close_socket(self, code: int) -> None:
        """Close the socket with ``code``, once; a socket already gone is fine."""
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        try:
            await self.sink.close_socket(code)
        except self.sink.closed_errors:
            logger.debug("socket already gone while closing it")
