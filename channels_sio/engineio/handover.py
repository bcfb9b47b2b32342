"""WebSocket upgrades that land on a process other than the session's owner.

Behind a balancer that is not sticky, a client's upgrade is a new connection that reaches any
process. A new long-polling session is held for a moment (``Session.hold``) before the layers
above hear of it; when its upgrade reaches another process, that process answers the probe
itself, asks the owner to keep holding the session (``Session.begin_handover``), and takes it
over when the client completes the upgrade (``Session.hand_over``): the session goes on there,
on its WebSocket, as if it had been opened there. A session whose connect handler already ran
stays with its owner: this process then relays the WebSocket's frames both ways, and the
owner upgrades the session onto the relayed socket as onto one of its own. How the owner is
reached (the cluster's channel layer) is a :class:`RemoteOwner`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from .errors import CloseReason
from .http import HttpRequest
from .packet import Packet, PacketType, ParseError, decode_packet
from .session import DONE, Handover, InvalidTransition
from .websocket import CLOSE_NORMAL

if TYPE_CHECKING:
    from .server import EngineIOServer
    from .websocket import WebSocketTransport

__all__ = ["HANDOVER", "RELAY", "RemoteOwner", "RemoteProbe", "RemoteState"]

logger = logging.getLogger("channels_sio.engineio")

#: The owner's answers to a probe (``RemoteOwner.probe``).
HANDOVER = "handover"
RELAY = "relay"


class RemoteState(Enum):
    """Life cycle of a WebSocket for a session another process owns."""

    PROBING = "probing"  # waiting for "2probe"
    UPGRADING = "upgrading"  # "3probe" sent; the owner holds the session for a handover
    RELAYING = "relaying"  # frames are relayed to and from the owner
    TAKEN_OVER = "taken over"  # the session is this process's now
    ENDED = "ended"


_TRANSITIONS = {
    RemoteState.PROBING: frozenset(
        {RemoteState.UPGRADING, RemoteState.RELAYING, RemoteState.ENDED}
    ),
    RemoteState.UPGRADING: frozenset({RemoteState.TAKEN_OVER, RemoteState.ENDED}),
    RemoteState.RELAYING: frozenset({RemoteState.ENDED}),
    RemoteState.TAKEN_OVER: frozenset(),
    RemoteState.ENDED: frozenset(),
}


class RemoteOwner(Protocol):
    """The processes that own the sessions this one does not hold."""

    def owns(self, sid: str) -> bool:
        """Whether a process this one can reach issued ``sid``."""

    async def probe(self, sid: str, relay: RemoteProbe) -> str | None:
        """The client probed a WebSocket here: the owner holds the session for a handover
        (``Session.begin_handover``: :data:`HANDOVER`), or takes ``relay`` as its probe
        (:data:`RELAY`; frames then go both ways through :meth:`relay` and
        ``RemoteProbe.send``), or neither (None)."""

    def relay(self, sid: str, frame: str | bytes) -> Awaitable[None]:
        """A frame from the client of a relayed socket, for its owner, in order."""

    def relay_lost(self, sid: str, code: int, reason: CloseReason | None = None) -> None:
        """The relayed socket closed under this process, with ``code``; ``reason`` when this
        process closed it for one of its own (a client that does not read)."""

    async def take(self, sid: str) -> Handover | None:
        """The client completed the upgrade here: the owner hands the session over
        (``Session.hand_over``). None when it no longer can."""

    def abandon(self, sid: str) -> None:
        """The upgrade failed here: the owner carries on (``Session.abandon_handover``)."""


class RemoteProbe:
    """A WebSocket, in this process, for a session another process owns: answers the
    client's probe and takes the session over when the client sends its upgrade packet, or
    relays its frames to and from the owner. A failure before either closes this WebSocket
    only; the client goes on polling its owner."""

    def __init__(
        self,
        server: EngineIOServer,
        owner: RemoteOwner,
        sid: str,
        transport: WebSocketTransport,
        request: HttpRequest,
    ) -> None:
        self.server = server
        self.owner = owner
        self.sid = sid
        self.transport = transport
        self.request = request
        self.state = RemoteState.PROBING
        self._asked = False  # the owner began a handover for us: it must hear of a failure
        # Relayed frames for the client not written yet, and whether a task of the server's
        # is writing them (see send).
        self._outbox: list[str | bytes] = []
        self._writing = False
        # The code to close the socket with once that task is done: the owner closed it, or
        # too many frames queued.
        self._close_after: int | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            server.config.upgrade_timeout / 1000, self._timed_out
        )

    def _set_state(self, new: RemoteState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise InvalidTransition(
                f"remote upgrade of {self.sid}: {self.state.value} -> {new.value}"
            )
        self.state = new

    def receive(self, frame: str | bytes) -> Awaitable[None]:
        """One frame from the client, handled when the result is awaited."""
        if self.state is RemoteState.RELAYING:
            return self.owner.relay(self.sid, frame)
        if self.state is RemoteState.ENDED:
            return DONE
        return self._receive(frame)

    async def _receive(self, frame: str | bytes) -> None:
        try:
            packet = decode_packet(frame)
        except ParseError as exc:
            logger.info("session %s: malformed frame during a remote upgrade: %s", self.sid, exc)
            await self.fail(close=True)
            return
        if packet.type is PacketType.PING and packet.data == "probe":
            if self.state is RemoteState.PROBING:
                await self._probe(frame)
                return
        elif packet.type is PacketType.UPGRADE:
            if self.state is RemoteState.UPGRADING:
                await self._take()
                return
        elif packet.type is PacketType.NOOP:
            return
        logger.info("session %s: invalid packet during a remote upgrade", self.sid)
        await self.fail(close=True)

    async def _probe(self, frame: str | bytes) -> None:
        self._asked = True
        answer = await self.owner.probe(self.sid, self)
        if answer is None:
            self._asked = False
            await self.fail(close=True)
            return
        if self.state is not RemoteState.PROBING:
            return  # failed meanwhile (timed out, or the socket went away)
        if answer == RELAY:
            # The owner's own probe handling takes it from here, starting with this frame.
            self._set_state(RemoteState.RELAYING)
            self._asked = False
            self._cancel_timer()
            logger.debug("session %s: relaying its WebSocket to the owner", self.sid)
            await self.owner.relay(self.sid, frame)
            return
        self._set_state(RemoteState.UPGRADING)
        await self.transport.write([Packet(PacketType.PONG, "probe")])

    async def _take(self) -> None:
        handover = await self.owner.take(self.sid)
        self._asked = False
        if handover is None or self.state is not RemoteState.UPGRADING:
            # The client already stopped polling: closing makes it reconnect.
            await self.fail(close=True)
            return
        self._set_state(RemoteState.TAKEN_OVER)
        self._cancel_timer()
        self.transport.remote = None
        logger.debug("session %s: taken over on its upgrade", self.sid)
        await self.server.adopt(self.sid, self.transport, self.request, handover)

    # -- relayed ------------------------------------------------------------------------

    def send(self, frame: str | bytes) -> None:
        """A frame from the owner of a relayed socket, for the client. Never waits for the
        client: the caller serves every relayed socket of this process (and the rest of the
        cluster's messages), and a client that does not read would hold them all. The frames
        are written, in order, by a task of the server's; past ``max_queued_packets`` waiting,
        the socket closes, as a local session closes when its client does not read."""
        if self.state is not RemoteState.RELAYING or self._close_after is not None:
            return
        outbox = self._outbox
        outbox.append(frame)
        if len(outbox) > self.server.config.max_queued_packets:
            logger.info("session %s: more than %d relayed frames queued", self.sid, len(outbox) - 1)
            outbox.clear()
            self._set_state(RemoteState.ENDED)
            self.owner.relay_lost(self.sid, CLOSE_NORMAL, CloseReason.SEND_QUEUE_FULL)
            self._close_after = CLOSE_NORMAL
        if not self._writing:
            self._writing = True
            self.server.spawn(self._write_out())

    async def _write_out(self) -> None:
        transport = self.transport
        sink = transport.sink
        try:
            while self._outbox:
                frames, self._outbox = self._outbox, []
                for frame in frames:
                    await sink.send_frame(frame)
        except sink.closed_errors:
            # The socket is gone: its disconnect tells the owner (lost).
            self._outbox.clear()
        finally:
            self._writing = False
        code = self._close_after
        if code is not None:
            if self.state is RemoteState.RELAYING:
                self._set_state(RemoteState.ENDED)
            await transport.close_socket(code)

    async def close(self, code: int) -> None:
        """The owner closed the relayed socket: after the frames it sent before."""
        if self.state is not RemoteState.RELAYING or self._close_after is not None:
            return
        if self._writing:
            self._close_after = code
            return
        self._set_state(RemoteState.ENDED)
        await self.transport.close_socket(code)

    async def lost(self, code: int) -> None:
        """The socket closed under this process (or the ASGI server is stopping it)."""
        if self.state is RemoteState.RELAYING:
            self._set_state(RemoteState.ENDED)
            self.owner.relay_lost(self.sid, code)
        else:
            await self.fail(close=False)

    async def fail(self, *, close: bool) -> None:
        """End an attempt (idempotent): tell the owner, and close the socket if asked."""
        if self.state not in (RemoteState.PROBING, RemoteState.UPGRADING):
            return
        self._set_state(RemoteState.ENDED)
        self._cancel_timer()
        if self._asked:
            self._asked = False
            self.owner.abandon(self.sid)
        if close:
            await self.transport.close(CloseReason.TRANSPORT_ERROR)

    def _timed_out(self) -> None:
        self._timer = None
        logger.info("session %s: remote upgrade timed out", self.sid)
        self.server.spawn(self.fail(close=True))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
