"""WebSocket upgrades that land on a process other than the session's owner.

Behind a balancer that is not sticky, a client's upgrade is a new connection that reaches any
process. A new long-polling session is held for a moment (``Session.hold``) before the layers
above hear of it; when its upgrade reaches another process, that process answers the probe
itself, asks the owner to keep holding the session (``Session.begin_handover``), and takes it
over when the client completes the upgrade (``Session.hand_over``): the session goes on there,
on its WebSocket, as if it had been opened there. How the owner is reached (the cluster's
channel layer) is a :class:`RemoteOwner`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

from .errors import CloseReason
from .http import HttpRequest
from .packet import Packet, PacketType, ParseError, decode_packet
from .session import Handover, InvalidTransition, UpgradeState

if TYPE_CHECKING:
    from .server import EngineIOServer
    from .websocket import WebSocketTransport

__all__ = ["RemoteOwner", "RemoteProbe"]

logger = logging.getLogger("channels_sio.engineio")

_TRANSITIONS = {
    UpgradeState.PROBING: frozenset({UpgradeState.UPGRADING, UpgradeState.NONE}),
    UpgradeState.UPGRADING: frozenset({UpgradeState.UPGRADED, UpgradeState.NONE}),
    UpgradeState.UPGRADED: frozenset(),
    UpgradeState.NONE: frozenset(),
}


class RemoteOwner(Protocol):
    """The processes that own the sessions this one does not hold."""

    def owns(self, sid: str) -> bool:
        """Whether a process this one can reach issued ``sid``."""

    async def probe(self, sid: str) -> bool:
        """The client probed a WebSocket here: ask the owner to hold the session for it
        (``Session.begin_handover``). False when it cannot be handed over."""

    async def take(self, sid: str) -> Handover | None:
        """The client completed the upgrade here: the owner hands the session over
        (``Session.hand_over``). None when it no longer can."""

    def abandon(self, sid: str) -> None:
        """The upgrade failed here: the owner carries on (``Session.abandon_handover``)."""


class RemoteProbe:
    """The upgrade, in this process, of a session another process owns: answers the
    client's probe, and takes the session over when the client sends its upgrade packet.
    Any failure closes this WebSocket only; the client goes on polling its owner."""

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
        self.state = UpgradeState.PROBING
        self._asked = False  # the owner began a handover for us: it must hear of a failure
        self._closing: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            server.config.upgrade_timeout / 1000, self._timed_out
        )

    def _set_state(self, new: UpgradeState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise InvalidTransition(
                f"remote upgrade of {self.sid}: {self.state.value} -> {new.value}"
            )
        self.state = new

    async def receive(self, frame: str | bytes) -> None:
        """One frame from the client, before the session is taken over."""
        try:
            packet = decode_packet(frame)
        except ParseError as exc:
            logger.info("session %s: malformed frame during a remote upgrade: %s", self.sid, exc)
            await self.fail(close=True)
            return
        if packet.type is PacketType.PING and packet.data == "probe":
            if self.state is UpgradeState.PROBING:
                await self._probe()
                return
        elif packet.type is PacketType.UPGRADE:
            if self.state is UpgradeState.UPGRADING:
                await self._take()
                return
        elif packet.type is PacketType.NOOP:
            return
        logger.info("session %s: invalid packet during a remote upgrade", self.sid)
        await self.fail(close=True)

    async def _probe(self) -> None:
        self._asked = True
        if not await self.owner.probe(self.sid):
            self._asked = False
            await self.fail(close=True)
            return
        if self.state is not UpgradeState.PROBING:
            return  # failed meanwhile (timed out, or the socket went away)
        self._set_state(UpgradeState.UPGRADING)
        await self.transport.write([Packet(PacketType.PONG, "probe")])

    async def _take(self) -> None:
        handover = await self.owner.take(self.sid)
        self._asked = False
        if handover is None or self.state is not UpgradeState.UPGRADING:
            # The client already stopped polling: closing makes it reconnect.
            await self.fail(close=True)
            return
        self._set_state(UpgradeState.UPGRADED)
        self._cancel_timer()
        self.transport.remote = None
        logger.debug("session %s: taken over on its upgrade", self.sid)
        await self.server.adopt(self.sid, self.transport, self.request, handover)

    async def fail(self, *, close: bool) -> None:
        """End the attempt (idempotent): tell the owner, and close the socket if asked."""
        if self.state in (UpgradeState.NONE, UpgradeState.UPGRADED):
            return
        self._set_state(UpgradeState.NONE)
        self._cancel_timer()
        if self._asked:
            self._asked = False
            self.owner.abandon(self.sid)
        if close:
            await self.transport.close(CloseReason.TRANSPORT_ERROR)

    def _timed_out(self) -> None:
        self._timer = None
        logger.info("session %s: remote upgrade timed out", self.sid)
        self._closing = asyncio.get_running_loop().create_task(self.fail(close=True))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
