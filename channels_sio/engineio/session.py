"""One Engine.IO session: its state machine, heartbeat, upgrade and idempotent close.

The session is transport-agnostic: it writes packets to whichever :class:`Transport` is current
(polling or WebSocket) and receives decoded packets from it. Nothing here does network I/O.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..tasks import OwnedTasks
from .errors import CloseReason
from .packet import Packet, PacketType

if TYPE_CHECKING:
    from .server import EngineIOServer

__all__ = [
    "Handover",
    "InvalidTransition",
    "Session",
    "SessionState",
    "Transport",
    "UpgradeState",
]

logger = logging.getLogger("channels_sio.engineio")


class SessionState(Enum):
    """Life cycle of a session. Only the transitions in ``_TRANSITIONS`` are possible."""

    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class UpgradeState(Enum):
    """Progress of the polling → WebSocket upgrade, a state machine of its own."""

    NONE = "none"
    PROBING = "probing"  # a WebSocket for this sid connected; waiting for "2probe"
    UPGRADING = "upgrading"  # "3probe" sent; polling GETs are released with noop
    #: Another process holds a WebSocket for this session and will take the session over
    #: when the client completes the upgrade there (see ``begin_handover``).
    HANDING_OVER = "handing over"
    UPGRADED = "upgraded"


_TRANSITIONS: dict[Enum, frozenset[Enum]] = {
    SessionState.OPENING: frozenset({SessionState.OPEN, SessionState.CLOSING}),
    SessionState.OPEN: frozenset({SessionState.CLOSING}),
    SessionState.CLOSING: frozenset({SessionState.CLOSED}),
    SessionState.CLOSED: frozenset(),
    UpgradeState.NONE: frozenset({UpgradeState.PROBING, UpgradeState.HANDING_OVER}),
    UpgradeState.PROBING: frozenset({UpgradeState.UPGRADING, UpgradeState.NONE}),
    UpgradeState.UPGRADING: frozenset({UpgradeState.UPGRADED, UpgradeState.NONE}),
    UpgradeState.HANDING_OVER: frozenset({UpgradeState.UPGRADED, UpgradeState.NONE}),
    UpgradeState.UPGRADED: frozenset(),
}

# Read on every packet: module-level names, because Python 3.11 looks an enum member up
# on its class through a descriptor call.
_OPEN_STATES = (SessionState.OPENING, SessionState.OPEN)


class _Done:
    """An awaitable with nothing to wait for."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield  # a generator, that stops at once


#: What the per-message send path returns when there is nothing to wait for (a socket that is
#: closed, or busy writing): that path is plain functions returning the one awaitable at its
#: end, so that a message costs no coroutine per layer.
DONE: Awaitable[None] = _Done()


async def _go_on(coro: Generator[Any, None, None], waiting: Any) -> None:
    """Run an awaitable's steps that were started by hand, and stopped on ``waiting`` (what
    they yielded: a future, or None for a bare turn of the loop), to their end in this
    task."""
    while True:
        try:
            if waiting is None:
                await asyncio.sleep(0)
            else:
                await waiting
        except asyncio.CancelledError as exc:
            # This task was cancelled: so is the coroutine, where it waits.
            try:
                waiting = coro.throw(exc)
            except StopIteration:
                return
            continue
        except Exception:
            pass  # the coroutine gets the future's error as it resumes
        try:
            waiting = coro.send(None)
        except StopIteration:
            return


class InvalidTransition(RuntimeError):
    """A state machine was asked for a transition it does not have: a bug, never input."""


@dataclass(frozen=True)
class Handover:
    """What a held session takes to the process that completed its upgrade: the messages
    the client sent meanwhile, the packets not polled yet, and when it connected."""

    messages: list[str | bytes]
    leftovers: list[Packet]
    connected_at: float


class Transport(ABC):
    """Where a session's packets go: a polling endpoint or one WebSocket."""

    name: str
    session: Session | None

    @property
    @abstractmethod
    def writable(self) -> bool:
        """Whether a packet written now goes out at once (volatile packets need that)."""

    @abstractmethod
    async def write(self, packets: list[Packet]) -> None:
        """Deliver packets in order (polling buffers them until the next GET)."""

    def write_message(self, data: str | bytes) -> Awaitable[None]:
        """Deliver one MESSAGE packet (transports may do this without building the packet)."""
        return self.write([Packet(PacketType.MESSAGE, data)])

    @abstractmethod
    async def close(self, reason: CloseReason) -> None:
        """Release the underlying connection. Idempotent."""

    @property
    @abstractmethod
    def queued(self) -> int:
        """Packets written and not sent yet (monitoring, and the ``max_queued_packets`` bound)."""

    def overflow(self) -> None:
        """More than ``max_queued_packets`` wait: the client does not read what it is sent.
        Its session closes (``send queue full``) in the background."""
        session = self.session
        if session is not None and session.is_open and session.transport is self:
            logger.info("session %s: more than %d packets queued", session.sid, self.queued - 1)
            session._tasks.spawn(session.close(CloseReason.SEND_QUEUE_FULL))


class Session:
    """An Engine.IO session, owned by one :class:`EngineIOServer` in this process.

    ``context`` is whatever the transport layer passes in (the ASGI scope under Channels);
    ``data`` is free for the application.
    """

    def __init__(
        self,
        server: EngineIOServer,
        sid: str,
        transport: Transport,
        context: Any,
        *,
        upgraded: bool = False,
    ) -> None:
        self.server = server
        self.sid = sid
        self.transport = transport
        self.context = context
        self.data: dict[str, Any] = {}
        self.state = SessionState.OPENING
        # ``upgraded``: a session taken over from another process, whose upgrade ended here.
        self.upgrade_state = UpgradeState.UPGRADED if upgraded else UpgradeState.NONE
        self.close_reason: CloseReason | None = None
        self.connected_at = time.time()
        self.last_pong = time.monotonic()
        #: When the last ping went out (monotonic), and how long its pong took, in seconds.
        self.last_ping: float | None = None
        self.rtt: float | None = None
        #: Engine.IO messages and their sizes (characters of text, bytes of binary), each way.
        self.packets_in = 0
        self.packets_out = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self._probe: Transport | None = None
        self._heartbeat: asyncio.TimerHandle | None = None
        self._upgrade_timer: asyncio.TimerHandle | None = None
        self._tasks = OwnedTasks(logger, "session %s: background task failed", sid)
        #: Where this session's messages go, when a layer above takes them directly (the
        #: Socket.IO bridge does); None sends them to the server's ``on_message`` handler.
        self.receiver: Callable[[str | bytes], Awaitable[None]] | None = None
        # While held (see ``hold``): the messages that arrived, in order; None otherwise.
        self._held: list[str | bytes] | None = None
        self._hold_timer: asyncio.TimerHandle | None = None
        # False while held: the connect handler has not run, so no disconnect is dispatched.
        self._attached = True

    def __repr__(self) -> str:
        return f"<Session {self.sid} {self.state.value} {self.transport.name}>"

    # -- state machines -------------------------------------------------------------------

    def _set_state(self, new: SessionState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise InvalidTransition(f"session {self.sid}: {self.state.value} -> {new.value}")
        logger.debug("session %s: %s -> %s", self.sid, self.state.value, new.value)
        self.state = new

    def _set_upgrade_state(self, new: UpgradeState) -> None:
        if new not in _TRANSITIONS[self.upgrade_state]:
            raise InvalidTransition(
                f"session {self.sid} upgrade: {self.upgrade_state.value} -> {new.value}"
            )
        self.upgrade_state = new

    @property
    def is_open(self) -> bool:
        return self.state in _OPEN_STATES

    # -- sending --------------------------------------------------------------------------

    def send(self, data: str | bytes) -> Awaitable[None]:
        """Send one message (text or binary), awaited. Dropped once the session is closing."""
        if self.state in _OPEN_STATES:
            self.packets_out += 1
            self.bytes_out += len(data)
            return self.transport.write_message(data)
        return DONE

    async def send_packets(self, packets: list[Packet]) -> None:
        """Send packets in order, contiguously. Dropped once the session is closing."""
        if self.is_open:
            self.packets_out += len(packets)
            for packet in packets:
                data = packet.data
                if data is not None:
                    self.bytes_out += len(data)
            await self.transport.write(packets)

    def post(self, data: str | bytes) -> None:
        """:meth:`send` without waiting: what the transport does not take at once (a client
        that reads slowly) goes on in a task of this session's. For a sender that must not
        wait on one client: a recorded emit goes out from the recovery store's grouped write,
        which serves every client."""
        self._go(self.send(data).__await__())

    def post_packets(self, packets: list[Packet]) -> None:
        """:meth:`send_packets` without waiting, as :meth:`post`."""
        self._go(self.send_packets(packets).__await__())

    def _go(self, steps: Generator[Any, None, None]) -> None:
        try:
            waiting = next(steps)
        except StopIteration:
            return  # the common case: taken at once, no task
        self._tasks.spawn(_go_on(steps, waiting))

    # -- receiving ------------------------------------------------------------------------

    async def receive_message(self, data: str | bytes) -> None:
        """Handle one MESSAGE packet's data that arrived on the current transport."""
        self.packets_in += 1
        self.bytes_in += len(data)
        receiver = self.receiver
        if receiver is None:
            await self.server.dispatch_message(self, data)
            return
        try:
            await receiver(data)
        except Exception:
            logger.exception("session %s: message receiver failed", self.sid)

    async def receive_packet(self, packet: Packet) -> None:
        """Handle one packet that arrived on the current transport."""
        kind = packet.type
        if kind is PacketType.MESSAGE:
            await self.receive_message(packet.data)
        elif kind is PacketType.PONG:
            self._on_pong()
        elif kind is PacketType.CLOSE:
            await self.close(CloseReason.TRANSPORT_CLOSE)
        elif kind is PacketType.NOOP:
            pass
        else:
            # A v4 client never pings, opens or upgrades on the current transport.
            logger.info("session %s: unexpected %s packet from client", self.sid, kind.name)
            await self.close(CloseReason.TRANSPORT_ERROR)

    # -- heartbeat ------------------------------------------------------------------------

    def start(self) -> None:
        """Mark the session open (the connect handler accepted it) and start the heartbeat."""
        self._set_state(SessionState.OPEN)
        self._schedule_ping()

    def _schedule_ping(self) -> None:
        loop = asyncio.get_running_loop()
        self._heartbeat = loop.call_later(self.server.config.ping_interval / 1000, self._ping)

    def _ping(self) -> None:
        self.last_ping = time.monotonic()
        loop = asyncio.get_running_loop()
        self._heartbeat = loop.call_later(
            self.server.config.ping_timeout / 1000, self._ping_timed_out
        )
        self._tasks.spawn(self.send_packets([Packet(PacketType.PING)]))

    def _ping_timed_out(self) -> None:
        self._heartbeat = None
        self._tasks.spawn(self.close(CloseReason.PING_TIMEOUT))

    def _on_pong(self) -> None:
        self.last_pong = now = time.monotonic()
        if self.last_ping is not None:
            self.rtt = now - self.last_ping
        if self.state is SessionState.OPEN:
            self._cancel_heartbeat()
            self._schedule_ping()

    def _cancel_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None

    # -- upgrade --------------------------------------------------------------------------

    @property
    def can_upgrade(self) -> bool:
        return (
            self.state is SessionState.OPEN
            and self.upgrade_state is UpgradeState.NONE
            and self.transport.name == "polling"
            and self.server.config.upgrades != []
        )

    def begin_probe(self, probe: Transport) -> None:
        """A WebSocket for this session connected: wait for its probe, within upgrade_timeout."""
        self._set_upgrade_state(UpgradeState.PROBING)
        self._probe = probe
        loop = asyncio.get_running_loop()
        self._upgrade_timer = loop.call_later(
            self.server.config.upgrade_timeout / 1000, self._upgrade_timed_out
        )

    def is_probe(self, transport: Transport) -> bool:
        return self._probe is transport

    async def probe_received(self) -> None:
        """``2probe`` arrived on the probe: answer it, and release the pending GET with noop."""
        assert self._probe is not None
        self._set_upgrade_state(UpgradeState.UPGRADING)
        await self._probe.write([Packet(PacketType.PONG, "probe")])
        release = getattr(self.transport, "release_for_upgrade", None)
        if release is not None:
            release()

    # -- holding a new session for an upgrade elsewhere -----------------------------------

    @property
    def held(self) -> bool:
        """Whether the connect handler waits (see :meth:`hold`)."""
        return not self._attached

    def hold(self, seconds: float) -> None:
        """Delay the connect handler by up to ``seconds``, holding the messages that arrive.

        Behind a balancer that is not sticky, the client's WebSocket upgrade may reach another
        process. While the layers above know nothing of this session yet, that process can
        take it over whole (:meth:`hand_over`) and the client ends on a WebSocket there. The
        handler runs when the time is up, or at once when the upgrade completes here.
        """
        self._attached = False
        self._held = []
        self.receiver = self._hold_message
        loop = asyncio.get_running_loop()
        self._hold_timer = loop.call_later(seconds, self._hold_expired)

    async def _hold_message(self, data: str | bytes) -> None:
        assert self._held is not None
        self._held.append(data)
        if len(self._held) > self.server.config.max_queued_packets:
            await self.close(CloseReason.SEND_QUEUE_FULL)

    def _hold_expired(self) -> None:
        self._hold_timer = None
        # A handover under way decides for itself (taken over, or attached when it fails).
        if self.upgrade_state is not UpgradeState.HANDING_OVER:
            self._tasks.spawn(self.attach())

    def _cancel_hold_timer(self) -> None:
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None

    async def attach(self) -> None:
        """Run the connect handler of a held session, then give it the held messages, in
        order. Does nothing for a session that is not held, or closed."""
        if self._attached or not self.is_open:
            return
        self._cancel_hold_timer()
        self._attached = True
        holding = self.receiver
        accepted = await self.server.accepts(self)
        # The handler set the receiver, or left the holding one (the server's on_message is
        # then the target); messages that arrive until the held ones are replayed queue
        # behind them.
        target = None if self.receiver is holding else self.receiver
        self.receiver = holding
        held = self._held
        assert held is not None
        if not accepted:
            self._attached = False  # refused: no disconnect to dispatch
            await self.close(CloseReason.FORCED_CLOSE)
            return
        while held and self.is_open:
            await self._deliver(target, held.pop(0))
        self._held = None
        self.receiver = target

    async def replay(self, messages: list[str | bytes]) -> None:
        """Deliver messages that arrived before this session was handed to this process."""
        for data in messages:
            if not self.is_open:
                return
            await self._deliver(self.receiver, data)

    async def _deliver(
        self, target: Callable[[str | bytes], Awaitable[None]] | None, data: str | bytes
    ) -> None:
        if target is None:
            await self.server.dispatch_message(self, data)
            return
        try:
            await target(data)
        except Exception:
            logger.exception("session %s: message receiver failed", self.sid)

    def begin_handover(self) -> bool:
        """Another process holds a WebSocket for this session and received its probe: keep
        holding the session for it until the client completes the upgrade there
        (:meth:`hand_over`) or the attempt fails (:meth:`abandon_handover`), within
        ``upgrade_timeout``. False, and nothing changes, when the session cannot be handed
        over (not held, not on polling, or upgrading already)."""
        if self._attached or not self.can_upgrade:
            return False
        self._set_upgrade_state(UpgradeState.HANDING_OVER)
        loop = asyncio.get_running_loop()
        self._upgrade_timer = loop.call_later(
            self.server.config.upgrade_timeout / 1000, self._handover_timed_out
        )
        # The pending GET is answered (noop) so that the client can pause polling.
        release = getattr(self.transport, "release_for_upgrade", None)
        if release is not None:
            release()
        return True

    def hand_over(self) -> Handover | None:
        """The client completed its upgrade in the other process: this session leaves this
        process, quietly (no disconnect: the layers above never knew it), and what it held
        goes with it. None if it is no longer handing over (closed, timed out)."""
        if self.upgrade_state is not UpgradeState.HANDING_OVER or not self.is_open:
            return None
        self._set_upgrade_state(UpgradeState.UPGRADED)
        self._cancel_upgrade_timer()
        self._cancel_hold_timer()
        self._cancel_heartbeat()
        take = getattr(self.transport, "take_for_upgrade", None)
        leftovers: list[Packet] = take() if take is not None else []
        messages, self._held = self._held or [], None
        self._set_state(SessionState.CLOSING)
        self._set_state(SessionState.CLOSED)
        self.server.forget(self)
        self.server.notify_moved(self)
        self._tasks.cancel()
        logger.debug("session %s: handed over", self.sid)
        return Handover(messages, leftovers, self.connected_at)

    async def abandon_handover(self) -> None:
        """The upgrade in the other process failed: carry on here, on polling."""
        if self.upgrade_state is not UpgradeState.HANDING_OVER:
            return
        self._cancel_upgrade_timer()
        self._set_upgrade_state(UpgradeState.NONE)
        if self._hold_timer is None:
            await self.attach()  # the hold ran out meanwhile

    def _handover_timed_out(self) -> None:
        self._upgrade_timer = None
        self._tasks.spawn(self.abandon_handover())

    async def complete_upgrade(self) -> None:
        """``5`` arrived on the probe: it becomes the transport; leftovers move over, in order."""
        probe = self._probe
        assert probe is not None
        self._set_upgrade_state(UpgradeState.UPGRADED)
        self._cancel_upgrade_timer()
        self._probe = None
        old, self.transport = self.transport, probe
        take = getattr(old, "take_for_upgrade", None)
        leftovers: list[Packet] = take() if take is not None else []
        logger.debug("session %s: upgraded to %s", self.sid, probe.name)
        if leftovers:
            await probe.write(leftovers)
        await self.attach()  # a held session need not wait any longer

    async def abandon_upgrade(self) -> None:
        """The probe failed, timed out or went away: carry on with the current transport."""
        probe = self._probe
        if probe is None:
            return
        self._probe = None
        self._cancel_upgrade_timer()
        self._set_upgrade_state(UpgradeState.NONE)
        await probe.close(CloseReason.TRANSPORT_ERROR)

    def _upgrade_timed_out(self) -> None:
        self._upgrade_timer = None
        self._tasks.spawn(self.abandon_upgrade())

    def _cancel_upgrade_timer(self) -> None:
        if self._upgrade_timer is not None:
            self._upgrade_timer.cancel()
            self._upgrade_timer = None

    # -- closing --------------------------------------------------------------------------

    async def close(self, reason: CloseReason = CloseReason.FORCED_CLOSE) -> None:
        """Close the session once; later calls (from any path) return at once."""
        if not self.is_open:
            return
        # A held session's connect handler never ran: there is nothing to disconnect.
        was_open = self.state is SessionState.OPEN and self._attached
        self._set_state(SessionState.CLOSING)
        self.close_reason = reason
        self._cancel_heartbeat()
        self._cancel_upgrade_timer()
        self._cancel_hold_timer()
        self.server.forget(self)
        logger.debug("session %s: closing (%s)", self.sid, reason)
        try:
            try:
                if self._probe is not None:
                    probe, self._probe = self._probe, None
                    await probe.close(CloseReason.TRANSPORT_ERROR)
                await self.transport.close(reason)
            except Exception:
                # The connection is gone either way; the layers above must still hear of it,
                # or its sockets, rooms and acks would outlive it.
                logger.exception("session %s: closing the transport failed", self.sid)
            if was_open:
                await self.server.dispatch_disconnect(self, reason)
        finally:
            self._set_state(SessionState.CLOSED)
            self.server.notify_closed(self, reason)
            self._tasks.cancel()
