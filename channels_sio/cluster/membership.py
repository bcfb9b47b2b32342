"""Which other nodes are up: hello, welcome, heartbeats and bye, and lost nodes.

Broadcasts do not need this (they go to the nodes' group); requests need it to know how many
answers to wait for, and polling forwarding to find the owner of a sid.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import conf
from .protocol import BYE, HEARTBEAT, HELLO, NODES_GROUP, WELCOME

if TYPE_CHECKING:
    from .node import Node

__all__ = ["Membership", "Peer"]

logger = logging.getLogger("channels_sio.cluster")


@dataclass
class Peer:
    """Another node, as last heard of."""

    id: str
    channel: str
    last_seen: float


class Membership:
    """The peers of one node, kept current by the nodes' group messages."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.peers: dict[str, Peer] = {}
        #: Called with a node's id when it left or was lost.
        self.on_lost: list[Callable[[str], None]] = []
        node.handle(HELLO, self._on_hello)
        node.handle(WELCOME, self._on_peer)
        node.handle(HEARTBEAT, self._on_peer)
        node.handle(BYE, self._on_bye)

    def start(self) -> None:
        """Say hello (peers answer), then heartbeat until the node stops."""
        self.node.spawn(self._heartbeat())

    async def leave(self) -> None:
        """Say bye and leave the group (the node's tasks are stopped already)."""
        node = self.node
        if node.layer is not None and node.channel is not None:
            try:
                await node.publish(BYE)
                await node.layer.group_discard(NODES_GROUP, node.channel)
            except Exception:
                logger.warning("node %s: could not leave the group", node.id, exc_info=True)
        self.peers.clear()

    async def _heartbeat(self) -> None:
        node = self.node
        layer, channel = node.layer, node.channel
        assert layer is not None
        assert channel is not None
        await node.publish(HELLO)
        while True:
            await asyncio.sleep(conf.get("node_heartbeat") / 1000)
            try:
                # Re-joining keeps the membership fresh long before the layer's group_expiry.
                await layer.group_add(NODES_GROUP, channel)
                await node.publish(HEARTBEAT)
            except Exception as exc:
                node.layer_failed(exc)
            else:
                node.layer_answered()
            horizon = time.monotonic() - conf.get("node_timeout") / 1000
            for peer in [p for p in self.peers.values() if p.last_seen < horizon]:
                logger.warning("node %s: lost node %s", node.id, peer.id)
                self._drop(peer.id)
                try:
                    # A node killed without BYE would stay in the group until group_expiry
                    # (a day by default), and every group send would still pay for it. If it
                    # was only cut off, its next heartbeat puts it back.
                    await layer.group_discard(NODES_GROUP, peer.channel)
                except Exception:
                    logger.warning("node %s: could not discard node %s", node.id, peer.id)

    async def rejoin(self) -> None:
        """Join the nodes' group again and say hello (the channel layer answers again after
        an outage: a Redis that restarted empty holds no group, and peers may have dropped
        this node meanwhile)."""
        node = self.node
        if node.layer is None or node.channel is None:
            return
        try:
            await node.layer.group_add(NODES_GROUP, node.channel)
            await node.publish(HELLO)
        except Exception as exc:
            node.layer_failed(exc)

    def _seen(self, message: dict[str, Any]) -> None:
        peer, channel = message.get("node"), message.get("channel")
        if isinstance(peer, str) and isinstance(channel, str) and peer != self.node.id:
            if peer not in self.peers:
                logger.info("node %s: joined by node %s", self.node.id, peer)
            self.peers[peer] = Peer(peer, channel, time.monotonic())

    async def _on_hello(self, message: dict[str, Any]) -> None:
        self._seen(message)
        channel = message.get("channel")
        if isinstance(channel, str):
            await self.node.send(channel, {"type": WELCOME, "channel": self.node.channel})

    async def _on_peer(self, message: dict[str, Any]) -> None:
        self._seen(message)

    async def _on_bye(self, message: dict[str, Any]) -> None:
        self._drop(message.get("node", ""))

    def _drop(self, peer: str) -> None:
        if self.peers.pop(peer, None) is not None:
            for callback in self.on_lost:
                callback(peer)
