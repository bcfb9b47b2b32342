"""The cross-node half of the adapter: what a namespace's operations send to the other nodes,
and what this node does with theirs.

A broadcast is sent once, to the nodes' group, whatever the number of nodes and sockets; every
node resolves it against its own room index (DESIGN.md, the process model). A node that has
just started therefore reaches every other node with its first broadcast.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from channels.exceptions import ChannelFull

from .. import conf
from ..socketio.adapter import LocalAdapter
from ..socketio.broadcast import BroadcastFlags
from ..socketio.bus import RemoteSocket, SocketSnapshot
from ..socketio.exceptions import AckTimeoutError
from ..socketio.packet import Packet, PacketType
from .protocol import BROADCAST, EMIT, SOCKET, SOCKETS, flags_from, flags_message

if TYPE_CHECKING:
    from ..socketio.namespace import Namespace
    from ..socketio.socket import Socket
    from .node import Node

__all__ = ["ClusterAdapter", "CrossNode"]

logger = logging.getLogger("channels_sio.cluster")


def _request_timeout() -> float:
    return float(conf.get("request_timeout")) / 1000


class ClusterAdapter(LocalAdapter):
    """A namespace's adapter when the process is a node: local delivery, plus the other
    nodes through the bus unless ``flags.local``."""

    def __init__(self, nsp: Namespace, node: Node) -> None:
        super().__init__(nsp)
        self.node = node
        # How the other nodes name this namespace: dynamic families have no common name.
        self.key = nsp.server.namespace_key(nsp)

    def _reaches_others(self, flags: BroadcastFlags) -> bool:
        return not flags.local and self.node.started

    async def broadcast(
        self, packet: Packet, flags: BroadcastFlags, offset: str | None = None
    ) -> None:
        await self.deliver(packet, flags, offset)
        if self._reaches_others(flags):
            node = self.node
            try:
                await node.publish(
                    BROADCAST, ns=self.key, data=packet.data, offset=offset, **flags_message(flags)
                )
            except Exception as exc:
                # As socket.io's adapters: delivered here, lost for the other nodes while the
                # layer is down (recorded packets stay in the store for recovery), logged once.
                node.layer_failed(exc, unsent=True)
            else:
                if node.outage_since is not None:
                    node.layer_answered()

    async def broadcast_with_ack(
        self, packet: Packet, flags: BroadcastFlags
    ) -> tuple[list[Any], bool]:
        local = super().broadcast_with_ack(packet, flags)
        if not self._reaches_others(flags):
            return await local
        assert flags.timeout is not None
        fields = {"ns": self.key, "data": packet.data, **flags_message(flags)}
        # Each node waits flags.timeout for its clients; allow for the bus round trip too.
        remote = self.node.requests.ask("broadcast_ack", fields, flags.timeout + 1.0)
        (mine, mine_complete), (answers, complete) = await asyncio.gather(local, remote)
        responses = list(mine)
        for answer in answers:
            responses.extend(answer["responses"])
            complete = complete and answer["complete"]
        return responses, complete and mine_complete

    async def fetch_sockets(self, flags: BroadcastFlags) -> list[Socket | RemoteSocket]:
        found = await super().fetch_sockets(flags)
        if self._reaches_others(flags):
            fields = {"ns": self.key, **flags_message(flags)}
            answers, _ = await self.node.requests.ask("fetch_sockets", fields, _request_timeout())
            cross_node = self.node.cross_node
            found.extend(
                RemoteSocket(SocketSnapshot.from_message(item), cross_node)
                for answer in answers
                for item in answer
            )
        return found

    async def _command(self, flags: BroadcastFlags, command: str, argument: Any) -> None:
        if self._reaches_others(flags):
            node = self.node
            try:
                await node.publish(
                    SOCKETS, ns=self.key, command=command, argument=argument, **flags_message(flags)
                )
            except Exception as exc:
                node.layer_failed(exc, unsent=True)
            else:
                if node.outage_since is not None:
                    node.layer_answered()

    async def add_sockets(self, flags: BroadcastFlags, rooms: frozenset[str]) -> None:
        await super().add_sockets(flags, rooms)
        await self._command(flags, "join", sorted(rooms))

    async def del_sockets(self, flags: BroadcastFlags, rooms: frozenset[str]) -> None:
        await super().del_sockets(flags, rooms)
        await self._command(flags, "leave", sorted(rooms))

    async def disconnect_sockets(self, flags: BroadcastFlags, close: bool) -> None:
        await super().disconnect_sockets(flags, close)
        await self._command(flags, "disconnect", close)

    async def took_over(self, pid: str) -> None:
        await self._command(BroadcastFlags(), "taken_over", pid)


class CrossNode:
    """The Socket.IO server's bus (``socketio.bus.Bus``): remote sockets and server-side
    events; and what this node does with the other nodes' broadcasts and commands."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.server = node.server
        node.handle(EMIT, self._on_emit)
        node.handle(BROADCAST, self._on_broadcast)
        node.handle(SOCKETS, self._on_sockets)
        node.handle(SOCKET, self._on_socket)
        requests = node.requests
        requests.answer("fetch_sockets", self._answer_fetch_sockets)
        requests.answer("broadcast_ack", self._answer_broadcast_ack)
        requests.answer("server_event", self._answer_server_event)

    # -- the Bus interface ----------------------------------------------------------------

    async def socket_command(self, snapshot: SocketSnapshot, command: str, argument: Any) -> None:
        node = self.node
        peer = node.peers.get(snapshot.node)
        if peer is None:
            logger.info(
                "node %s: node %s of socket %s is gone", node.id, snapshot.node, snapshot.id
            )
            return
        message = {
            "type": SOCKET,
            "ns": snapshot.namespace,
            "sid": snapshot.id,
            "command": command,
            "argument": argument,
        }
        try:
            await node.send(peer.channel, message)
        except ChannelFull:
            logger.warning("node %s: channel of node %s is full", node.id, peer.id)

    def spawn_socket_command(self, snapshot: SocketSnapshot, command: str, argument: Any) -> None:
        self.node.spawn(self.socket_command(snapshot, command, argument))

    async def server_side_emit(
        self, event: str, args: list[Any], timeout: float | None
    ) -> list[Any]:
        requests = self.node.requests
        if timeout is None:
            await requests.tell("server_event", {"event": event, "args": args})
            return []
        answers, complete = await requests.ask(
            "server_event", {"event": event, "args": args}, timeout
        )
        if not complete:
            raise AckTimeoutError(f"not every server acknowledged {event!r} in time", answers)
        return answers

    # -- from the other nodes -------------------------------------------------------------

    async def _on_emit(self, message: dict[str, Any]) -> None:
        nsp = self.server.lookup(message["namespace"])
        if nsp is None:
            return  # no socket ever joined it in this process
        data = [message["event"], *message.get("args", [])]
        offset = message.get("offset")
        if offset is not None:
            data.append(offset)
        await nsp.adapter.deliver(Packet(PacketType.EVENT, data=data), flags_from(message), offset)

    async def _on_broadcast(self, message: dict[str, Any]) -> None:
        nsp = self.server.namespace_from_key(message["ns"])
        if nsp is not None:
            await nsp.adapter.deliver(
                Packet(PacketType.EVENT, data=message["data"]),
                flags_from(message),
                message.get("offset"),
            )

    async def _on_sockets(self, message: dict[str, Any]) -> None:
        nsp = self.server.namespace_from_key(message["ns"])
        if nsp is None:
            return
        command, argument, flags = message["command"], message["argument"], flags_from(message)
        if command == "join":
            await nsp.adapter.add_sockets(flags, frozenset(argument))
        elif command == "leave":
            await nsp.adapter.del_sockets(flags, frozenset(argument))
        elif command == "disconnect":
            await nsp.adapter.disconnect_sockets(flags, bool(argument))
        elif command == "taken_over":
            await nsp.adapter.taken_over(str(argument))

    async def _on_socket(self, message: dict[str, Any]) -> None:
        nsp = self.server.lookup(message["ns"])
        socket = nsp.sockets.get(message["sid"]) if nsp is not None else None
        if socket is None:
            return
        command, argument = message["command"], message["argument"]
        if command == "emit":
            await socket.emit(*argument)
        elif command == "join":
            socket.join(argument)
        elif command == "leave":
            for room in argument:
                socket.leave(room)
        elif command == "disconnect":
            await socket.disconnect(bool(argument))

    async def _answer_fetch_sockets(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        nsp = self.server.namespace_from_key(message["ns"])
        sockets = nsp.adapter.local.select(flags_from(message)) if nsp is not None else []
        return [socket.snapshot(self.node.id).to_message() for socket in sockets]

    async def _answer_broadcast_ack(self, message: dict[str, Any]) -> dict[str, Any]:
        nsp = self.server.namespace_from_key(message["ns"])
        responses: list[Any] = []
        complete = True
        if nsp is not None:
            packet = Packet(PacketType.EVENT, data=message["data"])
            responses, complete = await nsp.adapter.broadcast_with_ack(packet, flags_from(message))
        return {"responses": responses, "complete": complete}

    async def _answer_server_event(self, message: dict[str, Any]) -> Any:
        return await self.server.handle_server_event(message["event"], message["args"])
