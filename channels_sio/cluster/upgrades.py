"""WebSocket upgrades without sticky sessions: an upgrade that lands on this node for a
session another node holds takes the session over (``engineio.handover``), through this
module's messages to the owner."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING, Any

from channels.exceptions import ChannelFull

from .. import conf
from ..engineio.packet import Packet, PacketType
from ..engineio.session import Handover
from .protocol import (
    NODE_ID_LENGTH,
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


class RemoteUpgrades:
    """The engine's ``RemoteOwner`` on the cluster: asks owners to hold and hand over their
    sessions, and answers those questions for the sessions this node holds."""

    def __init__(self, node: Node) -> None:
        self.node = node
        # Questions waiting for their owner's reply: rid -> (owner node id, reply).
        self._waiting: dict[str, tuple[str, asyncio.Future[dict[str, Any] | None]]] = {}
        node.handle(UPGRADE_PROBE, self._on_probe)
        node.handle(UPGRADE_TAKE, self._on_take)
        # Carrying on may run the connect handler and the held messages: off the receive loop.
        node.handle(UPGRADE_ABANDON, self._on_abandon, slow=True)
        node.handle(UPGRADE_REPLY, self._on_reply)
        node.membership.on_lost.append(self._owner_lost)

    # -- this node has the WebSocket ------------------------------------------------------

    def owns(self, sid: str) -> bool:
        return sid[:NODE_ID_LENGTH] in self.node.peers

    async def probe(self, sid: str) -> bool:
        reply = await self._ask(sid, UPGRADE_PROBE)
        return bool(reply and reply["ok"])

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
            self.node.spawn(self._tell(peer.channel, {"type": UPGRADE_ABANDON, "sid": sid}))

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

    async def _tell(self, channel: str, message: dict[str, Any]) -> None:
        try:
            await self.node.send(channel, message)
        except ChannelFull:
            logger.warning("node %s: channel %s is full", self.node.id, channel)

    def _owner_lost(self, peer: str) -> None:
        for owner, reply in self._waiting.values():
            if owner == peer and not reply.done():
                reply.set_result(None)

    async def _on_reply(self, message: dict[str, Any]) -> None:
        waiting = self._waiting.get(message["rid"])
        if waiting is not None and not waiting[1].done():
            waiting[1].set_result(message)

    # -- this node holds the session ------------------------------------------------------

    def _session(self, message: dict[str, Any]) -> Session | None:
        return self.node.server.engine.sessions.get(message["sid"])

    async def _on_probe(self, message: dict[str, Any]) -> None:
        session = self._session(message)
        ok = session is not None and session.begin_handover()
        await self._reply(message, {"ok": ok})

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

    async def _reply(self, message: dict[str, Any], fields: dict[str, Any]) -> None:
        await self._tell(
            message["reply_to"], {"type": UPGRADE_REPLY, "rid": message["rid"], **fields}
        )
