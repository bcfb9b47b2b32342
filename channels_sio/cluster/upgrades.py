"""WebSocket upgrades without sticky sessions: an upgrade that lands on this node for a
session another node owns takes the session over while its owner still holds it, or is
relayed to the owner frame by frame (``engineio.handover``), through this module's messages."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from channels.exceptions import ChannelFull

from .. import conf
from ..engineio import CloseReason
from ..engineio.handover import HANDOVER, RELAY, RemoteProbe
from ..engineio.packet import Packet, PacketType
from ..engineio.session import Handover
from ..engineio.websocket import CLOSE_NORMAL, WebSocketTransport
from .protocol import (
    NODE_ID_LENGTH,
    RELAY_CLOSE,
    RELAY_IN,
    RELAY_LOST,
    RELAY_OUT,
    UPGRADE_ABANDON,
    UPGRADE_PROBE,
    UPGRADE_REPLY,
    UPGRADE_TAKE,
)

if TYPE_CHECKING:
    from ..engineio import Session
    from .node import Node

__all__ = ["RemoteUpgrades"]

logger = logging.getLogger("channels_sio.cluster")

#: The close code a relayed socket gets when the node at the other end is lost.
_CLOSE_GOING_AWAY = 1001


class _RelaySink:
    """The owner's end of a relayed WebSocket: its frames go to the relaying node."""

    #: ``send_out`` raises a ConnectionError when the relaying node's channel is full.
    closed_errors: tuple[type[Exception], ...] = (OSError,)

    def __init__(self, upgrades: RemoteUpgrades, sid: str, channel: str) -> None:
        self.upgrades = upgrades
        self.sid = sid
        self.channel = channel

    async def accept(self) -> None:
        """The relaying node accepted the socket already."""

    def send_frame(self, data: str | bytes) -> Awaitable[None]:
        return self.upgrades.send_out(self.channel, self.sid, data)

    async def close_socket(self, code: int) -> None:
        self.upgrades.relays.pop(self.sid, None)
        await self.upgrades.tell(self.channel, {"type": RELAY_CLOSE, "sid": self.sid, "code": code})


class RemoteUpgrades:
    """The engine's ``RemoteOwner`` on the cluster: asks owners to hold, hand over or relay
    their sessions, and answers those questions for the sessions this node holds."""

    def __init__(self, node: Node) -> None:
        self.node = node
        # Questions waiting for their owner's reply: rid -> (owner node id, reply).
        self._waiting: dict[str, tuple[str, asyncio.Future[dict[str, Any] | None]]] = {}
        #: This node's sessions on a WebSocket another node relays: sid -> (transport, node).
        self.relays: dict[str, tuple[WebSocketTransport, str]] = {}
        #: The WebSockets this node relays to their owners: sid -> probe.
        self.pipes: dict[str, RemoteProbe] = {}
        node.handle(UPGRADE_PROBE, self._on_probe)
        node.handle(UPGRADE_TAKE, self._on_take)
        # Carrying on may run the connect handler and the held messages: off the receive loop.
        node.handle(UPGRADE_ABANDON, self._on_abandon, slow=True)
        node.handle(UPGRADE_REPLY, self._on_reply)
        # Frames are handled in the order they came, on the receive loop.
        node.handle(RELAY_IN, self._on_relay_in)
        node.handle(RELAY_OUT, self._on_relay_out)
        node.handle(RELAY_CLOSE, self._on_relay_close)
        # Closing the session runs the disconnect handlers: off the receive loop.
        node.handle(RELAY_LOST, self._on_relay_lost, slow=True)
        node.membership.on_lost.append(self._node_lost)

    # -- this node has the WebSocket ------------------------------------------------------

    def owns(self, sid: str) -> bool:
        return sid[:NODE_ID_LENGTH] in self.node.peers

    async def probe(self, sid: str, relay: RemoteProbe) -> str | None:
        reply = await self._ask(sid, UPGRADE_PROBE)
        answer = reply.get("answer") if reply else None
        if answer == RELAY:
            self.pipes[sid] = relay
        return answer if answer in (HANDOVER, RELAY) else None

    async def take(self, sid: str) -> Handover | None:
        reply = await self._ask(sid, UPGRADE_TAKE)
        if not reply or not reply["ok"]:
            return None
        return Handover(
            messages=list(reply["messages"]),
            leftovers=[Packet(PacketType(kind), data) for kind, data in reply["leftovers"]],
            connected_at=reply["connected_at"],
        )

    def abandon(self, sid: str) -> None:
        peer = self.node.peers.get(sid[:NODE_ID_LENGTH])
        if peer is not None:
            self.node.spawn(self.tell(peer.channel, {"type": UPGRADE_ABANDON, "sid": sid}))

    async def relay(self, sid: str, frame: str | bytes) -> None:
        peer = self.node.peers.get(sid[:NODE_ID_LENGTH])
        pipe = self.pipes.get(sid)
        if peer is None or pipe is None:
            return
        try:
            await self.node.send(
                peer.channel,
                {"type": RELAY_IN, "sid": sid, "frame": frame},
            )
        except ChannelFull:
            logger.warning(
                "node %s: channel of node %s is full: relay of %s ends", self.node.id, peer.id, sid
            )
            self.pipes.pop(sid, None)
            await pipe.close(CLOSE_NORMAL)

    def relay_lost(self, sid: str, code: int, reason: CloseReason | None = None) -> None:
        self.pipes.pop(sid, None)
        peer = self.node.peers.get(sid[:NODE_ID_LENGTH])
        if peer is not None:
            message: dict[str, Any] = {"type": RELAY_LOST, "sid": sid, "code": code}
            if reason is not None:
                message["reason"] = reason.value
            self.node.spawn(self.tell(peer.channel, message))

    async def _ask(self, sid: str, kind: str) -> dict[str, Any] | None:
        node = self.node
        peer = node.peers.get(sid[:NODE_ID_LENGTH])
        if peer is None or node.channel is None:
            return None
        rid = secrets.token_hex(8)
        reply: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = (peer.id, reply)
        try:
            await node.send(
                peer.channel, {"type": kind, "sid": sid, "rid": rid, "reply_to": node.channel}
            )
            return await asyncio.wait_for(reply, conf.get("request_timeout") / 1000)
        except (TimeoutError, ChannelFull):
            logger.warning("node %s: node %s did not answer for sid %s", node.id, peer.id, sid)
            return None
        finally:
            self._waiting.pop(rid, None)

    async def tell(self, channel: str, message: dict[str, Any]) -> None:
        """Send ``message`` to one node's channel; a full channel is logged, not raised."""
        try:
            await self.node.send(channel, message)
        except ChannelFull:
            logger.warning("node %s: channel %s is full", self.node.id, channel)

    async def _on_reply(self, message: dict[str, Any]) -> None:
        waiting = self._waiting.get(message["rid"])
        if waiting is not None and not waiting[1].done():
            waiting[1].set_result(message)

    async def _on_relay_out(self, message: dict[str, Any]) -> None:
        pipe = self.pipes.get(message["sid"])
        if pipe is not None:
            pipe.send(message["frame"])

    async def _on_relay_close(self, message: dict[str, Any]) -> None:
        pipe = self.pipes.pop(message["sid"], None)
        if pipe is not None:
            await pipe.close(message["code"])

    def _node_lost(self, peer: str) -> None:
        for owner, reply in self._waiting.values():
            if owner == peer and not reply.done():
                reply.set_result(None)
        # Sockets relayed to the lost node close: their clients reconnect.
        for sid in [sid for sid in self.pipes if sid[:NODE_ID_LENGTH] == peer]:
            self.node.spawn(self.pipes.pop(sid).close(_CLOSE_GOING_AWAY))
        # Sessions on a socket the lost node relayed lost their transport.
        for sid, (transport, via) in list(self.relays.items()):
            if via == peer:
                del self.relays[sid]
                self.node.spawn(transport.disconnected(_CLOSE_GOING_AWAY))

    # -- this node holds the session ------------------------------------------------------

    def _session(self, message: dict[str, Any]) -> Session | None:
        return self.node.server.engine.sessions.get(message["sid"])

    async def _on_probe(self, message: dict[str, Any]) -> None:
        session = self._session(message)
        answer = None
        if session is not None:
            if session.begin_handover():
                answer = HANDOVER
            elif session.can_upgrade:
                # Upgraded onto the relayed socket as onto one of this node's own.
                sid = session.sid
                config = session.server.config
                sink = _RelaySink(self, sid, message["reply_to"])
                transport = WebSocketTransport(sink, config.max_payload, config.max_queued_packets)
                transport.session = session
                session.begin_probe(transport)
                self.relays[sid] = (transport, message["node"])
                await transport.start_writing()
                answer = RELAY
        await self._reply(message, {"answer": answer})

    async def _on_take(self, message: dict[str, Any]) -> None:
        session = self._session(message)
        handover = session.hand_over() if session is not None else None
        if handover is None:
            await self._reply(message, {"ok": False})
            return
        await self._reply(
            message,
            {
                "ok": True,
                "messages": handover.messages,
                "leftovers": [[int(p.type), p.data] for p in handover.leftovers],
                "connected_at": handover.connected_at,
            },
        )

    async def _on_abandon(self, message: dict[str, Any]) -> None:
        session = self._session(message)
        if session is not None:
            await session.abandon_handover()

    async def _on_relay_in(self, message: dict[str, Any]) -> None:
        relay = self.relays.get(message["sid"])
        if relay is not None:
            await relay[0].receive(message["frame"])

    async def _on_relay_lost(self, message: dict[str, Any]) -> None:
        relay = self.relays.pop(message["sid"], None)
        if relay is not None:
            try:
                reason = CloseReason(message.get("reason", ""))
            except ValueError:
                reason = None  # none given (the socket closed under the relay), or unknown here
            await relay[0].disconnected(message["code"], reason)

    async def send_out(self, channel: str, sid: str, frame: str | bytes) -> None:
        """Send a frame of a relayed socket to the node that relays it."""
        try:
            await self.node.send(channel, {"type": RELAY_OUT, "sid": sid, "frame": frame})
        except ChannelFull as exc:
            # As a socket that failed under a write: the transport closes the session.
            raise ConnectionError(f"channel {channel} is full") from exc

    async def _reply(self, message: dict[str, Any], fields: dict[str, Any]) -> None:
        await self.tell(
            message["reply_to"], {"type": UPGRADE_REPLY, "rid": message["rid"], **fields}
        )
