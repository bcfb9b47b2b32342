"""The long-polling transport: a buffer of outgoing packets and at most one waiting GET."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from .errors import CloseReason, ErrorCode
from .http import HttpResponse, error_response
from .packet import Packet, PacketType, ParseError, decode_payload, encode_payload
from .session import Session, Transport, UpgradeState

__all__ = ["PollingTransport"]

logger = logging.getLogger("channels_sio.engineio")

Receive = Callable[[], Coroutine[Any, Any, dict[str, Any]]]

_OK = b"ok"
_CLOSE = PacketType.CLOSE  # read per packet posted: a module name, not an enum lookup

#: Packets answered per GET; the rest wait for the next poll. python-engineio's client (under
#: python-socketio's) drops the connection on a payload of more than 16 packets
#: (``Payload.max_decode_packets``), so a burst of emits must not go out in one response.
MAX_PACKETS_PER_POLL = 16

#: Seconds a poll waits before the server starts watching for the client giving up on it.
WATCH_AFTER = 0.05


class PollingTransport(Transport):
    """Polling side of one session. GETs wait for packets; POSTs carry the client's packets."""

    name = "polling"

    def __init__(self, max_queued: int = 10_000) -> None:
        self.session: Session | None = None
        self._max_queued = max_queued
        self._buffer: list[Packet] = []
        self._waiter: asyncio.Future[None] | None = None
        self._posting = False
        self._closed = False
        self._close_after_drain = False
        self._client_closing = False

    @property
    def get_waiting(self) -> bool:
        """Whether a GET is waiting for packets (for monitoring and the protocol tests)."""
        return self._waiter is not None

    @property
    def writable(self) -> bool:
        return self._waiter is not None and not self._waiter.done()

    @property
    def queued(self) -> int:
        return len(self._buffer)

    async def write(self, packets: list[Packet]) -> None:
        self._buffer.extend(packets)
        if len(self._buffer) > self._max_queued and not self._closed:
            self.overflow()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def release_for_upgrade(self) -> None:
        """Answer the pending GET now (with noop if nothing is buffered) so the client can pause."""
        self._wake()

    def take_for_upgrade(self) -> list[Packet]:
        """Hand the packets not yet polled to the new transport."""
        packets, self._buffer = self._buffer, []
        self._wake()
        return packets

    async def close(self, reason: CloseReason) -> None:
        if self._closed:
            return
        self._closed = True
        session = self.session
        if self._client_closing:
            # The client posted a CLOSE: as engine.io does, a waiting GET is answered with a
            # noop, and nothing else is sent (the next GET finds the session gone).
            pass
        elif self._buffer and reason is CloseReason.FORCED_CLOSE and session is not None:
            # socket.io-client acts on a CLOSE at once but on the packets that came with it a
            # tick later, so it would miss them (a DISCONNECT, say) and reconnect. As engine.io
            # does, send the buffer first and the CLOSE with the next poll.
            self._close_after_drain = True
            session.server.drain(session.sid, self)
        else:
            self._buffer.append(Packet(PacketType.CLOSE))
        self._wake()

    async def handle_get(self, receive: Receive) -> HttpResponse | None:
        """Answer a poll: at once when packets wait, else when some are written.

        ``receive`` yields the ASGI ``http.disconnect`` of a client that gave up: that closes
        the session, and ``None`` is returned (nobody is left to answer).
        """
        session = self.session
        assert session is not None
        if self._waiter is not None:
            logger.info("session %s: overlapping GET", session.sid)
            await session.close(CloseReason.TRANSPORT_ERROR)
            return error_response(ErrorCode.BAD_REQUEST)
        if self._close_after_drain and not self._buffer:
            self._close_after_drain = False
            session.server.drained(session.sid)
            return HttpResponse(200, encode_payload([Packet(PacketType.CLOSE)]).encode())
        if not self._buffer and session.upgrade_state in (UpgradeState.NONE, UpgradeState.PROBING):
            try:
                client_stayed = await self._wait(receive)
            except asyncio.CancelledError:
                # The ASGI server cancels waiting requests when it stops (daphne does).
                await session.close(CloseReason.SERVER_SHUTTING_DOWN)
                raise
            if not client_stayed:
                logger.info("session %s: GET aborted by the client", session.sid)
                await session.close(CloseReason.TRANSPORT_ERROR)
                return None
        if self._closed:  # the final CLOSE goes out with everything before it
            packets, self._buffer = self._buffer, []
        else:
            packets = self._buffer[:MAX_PACKETS_PER_POLL]
            del self._buffer[:MAX_PACKETS_PER_POLL]
        return HttpResponse(200, encode_payload(packets or [Packet(PacketType.NOOP)]).encode())

    async def _wait(self, receive: Receive) -> bool:
        """Wait for packets; False when the client disconnected first."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        watcher: asyncio.Task[dict[str, Any]] | None = None

        def client_left(_: asyncio.Task[dict[str, Any]]) -> None:
            if not waiter.done():
                waiter.set_result(None)

        def watch() -> None:
            nonlocal watcher
            watcher = loop.create_task(receive())
            watcher.add_done_callback(client_left)

        # Most polls are answered within milliseconds (an acknowledgement, a broadcast), so the
        # task that notices a client giving up is only started for a poll that waits longer.
        start_watching = loop.call_later(WATCH_AFTER, watch)
        try:
            await waiter
        finally:
            self._waiter = None
            start_watching.cancel()
            client_gone = watcher is not None and watcher.done()
            if watcher is not None and not client_gone:
                watcher.remove_done_callback(client_left)
                watcher.cancel()
        return not client_gone

    async def handle_post(self, body: bytes) -> HttpResponse:
        """Feed the client's packets to the session, in order."""
        session = self.session
        assert session is not None
        if self._posting:
            logger.info("session %s: overlapping POST", session.sid)
            await session.close(CloseReason.TRANSPORT_ERROR)
            return error_response(ErrorCode.BAD_REQUEST)
        self._posting = True
        try:
            try:
                packets = decode_payload(body.decode("utf-8"))
            except (UnicodeDecodeError, ParseError) as exc:
                logger.info("session %s: malformed payload: %s", session.sid, exc)
                await session.close(CloseReason.PARSE_ERROR)
                return error_response(ErrorCode.BAD_REQUEST)
            for packet in packets:
                if not session.is_open:
                    break
                if packet.type is _CLOSE:
                    self._client_closing = True
                await session.receive_packet(packet)
        finally:
            self._posting = False
        return HttpResponse(200, _OK)
