"""This process's Node: one channel-layer channel, membership in the nodes' group, and the
handlers for what other processes (or synchronous code) send to every node."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from channels.layers import BaseChannelLayer, get_channel_layer

from ..socketio import SocketIOServer
from ..socketio.broadcast import BroadcastFlags
from ..socketio.packet import Packet, PacketType

__all__ = ["NODES_GROUP", "Node", "get_node"]

logger = logging.getLogger("channels_sio.cluster")

NODES_GROUP = "channels_sio.nodes"
EMIT = "channels_sio.emit"


class Node:
    """Started lazily inside the running loop by the first connection; stopped on shutdown."""

    def __init__(self, server: SocketIOServer) -> None:
        self.server = server
        self.id = secrets.token_hex(8)
        self.layer: BaseChannelLayer | None = None
        self.channel: str | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self._task is not None

    def ensure_started(self) -> None:
        """Start listening (once) on the running loop; a no-op without a channel layer."""
        if self._task is not None:
            return
        self.layer = get_channel_layer()
        if self.layer is None:
            return
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        layer = self.layer
        assert layer is not None
        self.channel = await layer.new_channel("channels_sio.node.")
        await layer.group_add(NODES_GROUP, self.channel)
        try:
            while True:
                message = await layer.receive(self.channel)
                try:
                    await self.handle(message)
                except Exception:
                    logger.exception("node %s: failed to handle %s", self.id, message.get("type"))
        finally:
            await asyncio.shield(layer.group_discard(NODES_GROUP, self.channel))

    async def handle(self, message: dict[str, Any]) -> None:
        if message.get("type") == EMIT:
            flags = BroadcastFlags(
                rooms=frozenset(message.get("rooms", ())),
                except_rooms=frozenset(message.get("except_rooms", ())),
                volatile=bool(message.get("volatile", False)),
            )
            nsp = self.server.of(message["namespace"])
            await nsp.broadcast(
                Packet(PacketType.EVENT, data=[message["event"], *message.get("args", [])]), flags
            )

    async def stop(self) -> None:
        """Stop listening and leave the group. Safe to call more than once."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # wait() does not re-raise the task's CancelledError, yet lets ours through.
            await asyncio.wait([task])


_node: Node | None = None


def get_node() -> Node:
    """This process's node, serving the project's server ``channels_sio.server.sio``."""
    global _node
    if _node is None:
        from ..server import sio

        _node = Node(sio)
    return _node
