"""This process's Node: the bus between server processes over the Channels channel layer.

Each process has one node with a channel of its own and a membership in the nodes' group. A
node announces itself and heartbeats through the group; everything else goes point to point,
once per other node: a broadcast costs (nodes - 1) channel-layer messages whatever the number
of sockets, and each node resolves it against its own room index (DESIGN.md, process model).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer, get_channel_layer

from .. import conf
from ..engineio import HttpRequest, HttpResponse
from ..engineio.errors import ErrorCode
from ..engineio.http import error_response
from ..engineio.polling import Receive
from ..socketio import SocketIOServer
from ..socketio.broadcast import BroadcastFlags
from ..socketio.bus import RemoteSocket, SocketSnapshot
from ..socketio.exceptions import AckTimeoutError
from ..socketio.namespace import Namespace
from ..socketio.packet import Packet, PacketType

__all__ = ["NODES_GROUP", "Node", "get_node"]

logger = logging.getLogger("channels_sio.cluster")

NODES_GROUP = "channels_sio.nodes"
NODE_ID_LENGTH = 8  # hex characters; also the prefix of every Engine.IO sid this node issues

# Message types on the channel layer.
EMIT = "channels_sio.emit"  # from channels_sio.emit(), to the group
HELLO = "channels_sio.hello"  # a node started (group); peers answer WELCOME directly
WELCOME = "channels_sio.welcome"
HEARTBEAT = "channels_sio.heartbeat"  # group, every node_heartbeat ms
BYE = "channels_sio.bye"  # group, on a clean stop
BROADCAST = "channels_sio.broadcast"
SOCKETS = "channels_sio.sockets"  # join / leave / disconnect the sockets a broadcast selects
SOCKET = "channels_sio.socket"  # emit / join / leave / disconnect one remote socket
REQUEST = "channels_sio.request"
REPLY = "channels_sio.reply"
HTTP = "channels_sio.http"  # a polling request forwarded to the node owning its sid
HTTP_ABORT = "channels_sio.http_abort"
HTTP_RESPONSE = "channels_sio.http_response"

#: How long a stopping node lets the polls forwarded to it finish answering (seconds).
STOP_DRAIN = 1.0
#: Answers a forwarded poll whose owner left the cluster before answering it.
_OWNER_LOST: dict[str, Any] = {}


def _flags_message(flags: BroadcastFlags) -> dict[str, Any]:
    return {
        "rooms": sorted(flags.rooms),
        "except_rooms": sorted(flags.except_rooms),
        "volatile": flags.volatile,
        "exclude_sid": flags.exclude_sid,
        "timeout": flags.timeout,
    }


def _flags_from(message: dict[str, Any]) -> BroadcastFlags:
    return BroadcastFlags(
        rooms=frozenset(message.get("rooms", ())),
        except_rooms=frozenset(message.get("except_rooms", ())),
        volatile=bool(message.get("volatile", False)),
        local=True,  # what another node asks for is delivered here only
        timeout=message.get("timeout"),
        exclude_sid=message.get("exclude_sid"),
    )


@dataclass
class Peer:
    """Another node, as last heard of."""

    id: str
    channel: str
    last_seen: float
    #: Messages not sent to it since it was last heard of, its channel being full.
    skipped: int = 0


class Node:
    """This process's member of the cluster; it is the Socket.IO server's bus.

    Started lazily inside the running loop by the first connection, stopped on shutdown.
    """

    def __init__(self, server: SocketIOServer) -> None:
        self.server = server
        self.id = secrets.token_hex(NODE_ID_LENGTH // 2)
        self.layer: BaseChannelLayer | None = None
        self.channel: str | None = None
        self.peers: dict[str, Peer] = {}
        #: Channel-layer messages this node sent (group sends count once).
        self.messages_sent = 0
        self._ready = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._replies: dict[str, tuple[list[Any], int, asyncio.Future[None]]] = {}
        # Forwarded polls waiting for their owner's answer: rid -> (owner node id, answer).
        self._http_waiting: dict[str, tuple[str, asyncio.Future[dict[str, Any] | None]]] = {}
        # Polls forwarded to this node being answered.
        self._http_tasks: set[asyncio.Task[Any]] = set()
        self._http_aborts: dict[str, asyncio.Future[None]] = {}
        self._handlers: dict[str, Callable[[dict[str, Any]], Coroutine[Any, Any, None]]] = {
            EMIT: self._on_emit,
            HELLO: self._on_hello,
            WELCOME: self._on_peer,
            HEARTBEAT: self._on_peer,
            BYE: self._on_bye,
            BROADCAST: self._on_broadcast,
            SOCKETS: self._on_sockets,
            SOCKET: self._on_socket,
            REPLY: self._on_reply,
            HTTP_ABORT: self._on_http_abort,
            HTTP_RESPONSE: self._on_http_response,
        }
        # Handled in their own task: they wait (for acks, handlers, long polls).
        self._slow_handlers: dict[str, Callable[[dict[str, Any]], Coroutine[Any, Any, None]]] = {
            REQUEST: self._on_request,
            HTTP: self._on_http,
        }

    # -- life cycle -----------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return bool(self._tasks)

    def ensure_started(self) -> None:
        """Join the cluster (once) from the running loop; a no-op without a channel layer."""
        if self._tasks:
            return
        self.layer = get_channel_layer()
        if self.layer is None:
            return
        engine = self.server.engine
        engine.sid_prefix = self.id
        if conf.get("forward_polling"):
            engine.forward = self.forward_http
        self.server.bus = self
        self._spawn(self._run())

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("node %s: task failed", self.id, exc_info=task.exception())

    async def _run(self) -> None:
        layer = self.layer
        assert layer is not None
        self.channel = await layer.new_channel("channels_sio.node.")
        await layer.group_add(NODES_GROUP, self.channel)
        self._ready.set()
        await self._group_send(HELLO)
        self._spawn(self._heartbeat())
        backoff = 0.1
        while True:
            try:
                message = await layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A layer hiccup (Redis restarting, a socket timeout) must not end the node.
                logger.warning("node %s: channel layer receive failed", self.id, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            await self._dispatch(message)

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type", "")
        slow = self._slow_handlers.get(kind)
        if slow is not None:
            task = self._spawn(slow(message))
            if kind == HTTP:
                self._http_tasks.add(task)
                task.add_done_callback(self._http_tasks.discard)
            return
        handler = self._handlers.get(kind)
        if handler is None:
            logger.warning("node %s: unknown message type %r", self.id, kind)
            return
        try:
            await handler(message)
        except Exception:
            logger.exception("node %s: failed to handle %s", self.id, kind)

    async def _heartbeat(self) -> None:
        layer = self.layer
        assert layer is not None
        assert self.channel is not None
        while True:
            await asyncio.sleep(conf.get("node_heartbeat") / 1000)
            try:
                # Re-joining keeps the membership fresh long before the layer's group_expiry.
                await layer.group_add(NODES_GROUP, self.channel)
                await self._group_send(HEARTBEAT)
            except Exception:
                logger.warning("node %s: heartbeat failed", self.id, exc_info=True)
            horizon = time.monotonic() - conf.get("node_timeout") / 1000
            for peer in [p for p in self.peers.values() if p.last_seen < horizon]:
                logger.warning(
                    "node %s: lost node %s (%d messages to it skipped, its channel full)",
                    self.id,
                    peer.id,
                    peer.skipped,
                )
                self._drop_peer(peer.id)
                try:
                    # A node killed without BYE would stay in the group until group_expiry
                    # (a day by default), and every group send would still pay for it. If it
                    # was only cut off, its next heartbeat puts it back.
                    await layer.group_discard(NODES_GROUP, peer.channel)
                except Exception:
                    logger.warning("node %s: could not discard node %s", self.id, peer.id)

    async def stop(self) -> None:
        """Leave the cluster and stop every task. Safe to call more than once.

        Call it once the sessions are closed: the polls other nodes forwarded here then have
        their answer (the close packet), and get a moment to send it before tasks are cancelled.
        """
        layer, channel = self.layer, self.channel
        answering = [task for task in self._http_tasks if not task.done()]
        if answering:
            await asyncio.wait(answering, timeout=STOP_DRAIN)
        if self.server.bus is self:
            self.server.bus = None
        tasks = list(self._tasks)
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            # wait() does not re-raise the tasks' CancelledError, yet lets ours through.
            await asyncio.wait(tasks)
        if layer is not None and channel is not None:
            try:
                await self._group_send(BYE)
                await layer.group_discard(NODES_GROUP, channel)
            except Exception:
                logger.warning("node %s: could not leave the group", self.id, exc_info=True)
        self.peers.clear()
        self._ready.clear()

    # -- sending --------------------------------------------------------------------------

    async def _send(self, channel: str, message: dict[str, Any]) -> None:
        assert self.layer is not None
        self.messages_sent += 1
        await self.layer.send(channel, message)

    async def _group_send(self, kind: str, **fields: Any) -> None:
        assert self.layer is not None
        self.messages_sent += 1
        await self.layer.group_send(
            NODES_GROUP, {"type": kind, "node": self.id, "channel": self.channel, **fields}
        )

    async def _to_peers(self, message: dict[str, Any]) -> int:
        """Send to every other node; returns how many were sent to.

        A peer whose channel is full is skipped: a node killed without a BYE stays a peer
        until node_timeout, and channels-redis refuses sends to its unread channel once it
        holds ``capacity`` messages (100 by default). That must neither cost the live nodes
        their copy nor fail the caller's broadcast.
        """
        message = {**message, "node": self.id}
        sent = 0
        for peer in list(self.peers.values()):
            try:
                await self._send(peer.channel, message)
            except ChannelFull:
                if not peer.skipped:  # once until it is heard of again, not per message
                    logger.warning("node %s: channel of node %s is full", self.id, peer.id)
                peer.skipped += 1
            else:
                sent += 1
        return sent

    async def _request(
        self, kind: str, fields: dict[str, Any], timeout: float
    ) -> tuple[list[Any], bool]:
        """Ask every other node; their results, and whether all answered within ``timeout``."""
        if not self.peers or self.channel is None:
            return [], True
        rid = secrets.token_hex(8)
        results: list[Any] = []
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        message = {"type": REQUEST, "kind": kind, "rid": rid, "reply_to": self.channel, **fields}
        asked = len(self.peers)
        self._replies[rid] = (results, asked, done)
        try:
            sent = await self._to_peers(message)
            if sent < asked:
                # Some peers could not be asked (full channel): wait only for the others,
                # and report the answer as incomplete.
                self._replies[rid] = (results, sent, done)
                if len(results) >= sent and not done.done():
                    done.set_result(None)
            await asyncio.wait_for(done, timeout)
        except TimeoutError:
            missing = self._replies[rid][1] - len(results)
            logger.info("node %s: %d node(s) did not answer %s in time", self.id, missing, kind)
            return list(results), False
        finally:
            self._replies.pop(rid, None)
        return results, sent == asked

    # -- the Bus interface (used by the Socket.IO layer) ---------------------------------

    async def broadcast(self, nsp: Namespace, data: list[Any], flags: BroadcastFlags) -> None:
        await self._to_peers(
            {
                "type": BROADCAST,
                "ns": self.server.namespace_key(nsp),
                "data": data,
                **_flags_message(flags),
            }
        )

    async def broadcast_with_ack(
        self, nsp: Namespace, data: list[Any], flags: BroadcastFlags
    ) -> tuple[list[Any], bool]:
        assert flags.timeout is not None
        fields = {"ns": self.server.namespace_key(nsp), "data": data, **_flags_message(flags)}
        # Each node waits flags.timeout for its clients; allow for the bus round trip too.
        answers, complete = await self._request("broadcast_ack", fields, flags.timeout + 1.0)
        responses: list[Any] = []
        for answer in answers:
            responses.extend(answer["responses"])
            complete = complete and answer["complete"]
        return responses, complete

    async def fetch_sockets(self, nsp: Namespace, flags: BroadcastFlags) -> list[RemoteSocket]:
        fields = {"ns": self.server.namespace_key(nsp), **_flags_message(flags)}
        answers, _ = await self._request("fetch_sockets", fields, self._request_timeout)
        return [
            RemoteSocket(SocketSnapshot.from_message(item), self)
            for answer in answers
            for item in answer
        ]

    async def sockets_command(
        self, nsp: Namespace, flags: BroadcastFlags, command: str, argument: Any
    ) -> None:
        await self._to_peers(
            {
                "type": SOCKETS,
                "ns": self.server.namespace_key(nsp),
                "command": command,
                "argument": argument,
                **_flags_message(flags),
            }
        )

    async def socket_command(self, snapshot: SocketSnapshot, command: str, argument: Any) -> None:
        peer = self.peers.get(snapshot.node)
        if peer is None:
            logger.info(
                "node %s: node %s of socket %s is gone", self.id, snapshot.node, snapshot.id
            )
            return
        await self._send(
            peer.channel,
            {
                "type": SOCKET,
                "node": self.id,
                "ns": snapshot.namespace,
                "sid": snapshot.id,
                "command": command,
                "argument": argument,
            },
        )

    def spawn_socket_command(self, snapshot: SocketSnapshot, command: str, argument: Any) -> None:
        self._spawn(self.socket_command(snapshot, command, argument))

    async def server_side_emit(
        self, event: str, args: list[Any], timeout: float | None
    ) -> list[Any]:
        if timeout is None:
            await self._to_peers(
                {
                    "type": REQUEST,
                    "kind": "server_event",
                    "event": event,
                    "args": args,
                    "rid": None,
                    "reply_to": None,
                }
            )
            return []
        answers, complete = await self._request(
            "server_event", {"event": event, "args": args}, timeout
        )
        if not complete:
            raise AckTimeoutError(f"not every server acknowledged {event!r} in time", answers)
        return answers

    @property
    def _request_timeout(self) -> float:
        return float(conf.get("request_timeout")) / 1000

    # -- handling what other nodes send ---------------------------------------------------

    def _peer_seen(self, message: dict[str, Any]) -> None:
        node, channel = message.get("node"), message.get("channel")
        if isinstance(node, str) and isinstance(channel, str) and node != self.id:
            if node not in self.peers:
                logger.info("node %s: joined by node %s", self.id, node)
            self.peers[node] = Peer(node, channel, time.monotonic())

    async def _on_hello(self, message: dict[str, Any]) -> None:
        self._peer_seen(message)
        if message.get("node") != self.id and isinstance(message.get("channel"), str):
            await self._send(
                message["channel"], {"type": WELCOME, "node": self.id, "channel": self.channel}
            )

    async def _on_peer(self, message: dict[str, Any]) -> None:
        self._peer_seen(message)

    async def _on_bye(self, message: dict[str, Any]) -> None:
        self._drop_peer(message.get("node", ""))

    def _drop_peer(self, node: str) -> None:
        """Forget a node that left (BYE) or was lost (no heartbeat within node_timeout)."""
        if self.peers.pop(node, None) is None:
            return
        # Polls forwarded to it will never be answered: say so now, rather than after the
        # forwarding limit (ping_interval + ping_timeout + 5 s). The client reconnects.
        for owner, answer in self._http_waiting.values():
            if owner == node and not answer.done():
                answer.set_result(_OWNER_LOST)

    async def _on_emit(self, message: dict[str, Any]) -> None:
        nsp = self.server.lookup(message["namespace"])
        if nsp is None:
            return  # no socket ever joined it in this process
        flags = _flags_from(message)
        await nsp.broadcast(
            Packet(PacketType.EVENT, data=[message["event"], *message.get("args", [])]), flags
        )

    async def _on_broadcast(self, message: dict[str, Any]) -> None:
        nsp = self.server.namespace_from_key(message["ns"])
        if nsp is not None:
            await nsp.broadcast(
                Packet(PacketType.EVENT, data=message["data"]), _flags_from(message)
            )

    async def _on_sockets(self, message: dict[str, Any]) -> None:
        nsp = self.server.namespace_from_key(message["ns"])
        if nsp is None:
            return
        command, argument = message["command"], message["argument"]
        for socket in nsp.select_sockets(_flags_from(message)):
            if command == "join":
                socket.join(argument)
            elif command == "leave":
                for room in argument:
                    socket.leave(room)
            elif command == "disconnect":
                await socket.disconnect(bool(argument))

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

    async def _on_request(self, message: dict[str, Any]) -> None:
        kind = message["kind"]
        result: Any = None
        if kind == "server_event":
            try:
                result = await self.server.handle_server_event(message["event"], message["args"])
            except Exception:
                logger.exception("server-side event handler for %r failed", message["event"])
                return
        else:
            nsp = self.server.namespace_from_key(message["ns"])
            flags = _flags_from(message)
            if kind == "fetch_sockets":
                sockets = nsp.select_sockets(flags) if nsp is not None else []
                result = [socket.snapshot(self.id).to_message() for socket in sockets]
            elif kind == "broadcast_ack":
                responses: list[Any] = []
                complete = True
                if nsp is not None:
                    packet = Packet(PacketType.EVENT, data=message["data"])
                    responses, complete = await nsp.broadcast_with_ack(packet, flags)
                result = {"responses": responses, "complete": complete}
        if message.get("reply_to"):
            await self._send(
                message["reply_to"],
                {"type": REPLY, "rid": message["rid"], "node": self.id, "result": result},
            )

    async def _on_reply(self, message: dict[str, Any]) -> None:
        waiting = self._replies.get(message["rid"])
        if waiting is None:
            return  # too late: the request timed out
        results, expected, done = waiting
        results.append(message["result"])
        if len(results) >= expected and not done.done():
            done.set_result(None)

    # -- polling without sticky sessions --------------------------------------------------

    async def forward_http(self, request: HttpRequest, receive: Receive) -> HttpResponse | None:
        """Answer a polling request for a sid this process does not hold, through its owner."""
        sid = request.query.get("sid", "")
        peer = self.peers.get(sid[:NODE_ID_LENGTH])
        if peer is None or self.channel is None:
            return error_response(ErrorCode.UNKNOWN_SID)
        loop = asyncio.get_running_loop()
        rid = secrets.token_hex(8)
        answer: asyncio.Future[dict[str, Any] | None] = loop.create_future()
        self._http_waiting[rid] = (peer.id, answer)
        watcher = loop.create_task(receive())

        def client_left(_: asyncio.Task[dict[str, Any]]) -> None:
            if not answer.done():
                answer.set_result(None)
                self._spawn(self._send(peer.channel, {"type": HTTP_ABORT, "rid": rid}))

        watcher.add_done_callback(client_left)
        engine_config = self.server.engine.config
        # A long poll is answered within ping_interval; give the bus a margin beyond that.
        limit = (engine_config.ping_interval + engine_config.ping_timeout) / 1000 + 5
        try:
            await self._send(
                peer.channel,
                {
                    "type": HTTP,
                    "rid": rid,
                    "reply_to": self.channel,
                    "method": request.method,
                    "query": request.query,
                    # This node checked the origin, and its engine adds the CORS headers to
                    # the answer: without the origin the owner adds none, so they come once.
                    "headers": {k: v for k, v in request.headers.items() if k != "origin"},
                    "scheme": request.scheme,
                    "body": request.body,
                    "body_too_large": request.body_too_large,
                },
            )
            reply = await asyncio.wait_for(answer, limit)
        except (TimeoutError, ChannelFull):
            # The owner is gone (or not reading): as good as an unknown sid.
            logger.warning("node %s: node %s did not answer for sid %s", self.id, peer.id, sid)
            return error_response(ErrorCode.UNKNOWN_SID)
        finally:
            self._http_waiting.pop(rid, None)
            if not watcher.done():
                watcher.remove_done_callback(client_left)
                watcher.cancel()
        if reply is None:
            return None
        if reply is _OWNER_LOST:
            return error_response(ErrorCode.UNKNOWN_SID)
        # The configured extra headers too are added here, as to any answer of this engine.
        extra = {name.lower().encode("latin-1") for name, _ in engine_config.extra_headers}
        return HttpResponse(
            reply["status"],
            reply["body"],
            reply["content_type"],
            [(bytes(k), bytes(v)) for k, v in reply["headers"] if bytes(k).lower() not in extra],
        )

    async def _on_http(self, message: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        aborted: asyncio.Future[None] = loop.create_future()
        self._http_aborts[message["rid"]] = aborted

        async def receive() -> dict[str, Any]:
            await aborted
            return {"type": "http.disconnect"}

        request = HttpRequest(
            method=message["method"],
            query=dict(message["query"]),
            headers=dict(message["headers"]),
            scheme=message["scheme"],
            body=message["body"],
            body_too_large=message["body_too_large"],
        )
        try:
            response = await self.server.engine.handle_http(request, receive)
        finally:
            self._http_aborts.pop(message["rid"], None)
        if response is None:
            return  # the client left; the forwarding node answered nobody
        await self._send(
            message["reply_to"],
            {
                "type": HTTP_RESPONSE,
                "rid": message["rid"],
                "status": response.status,
                "body": response.body,
                "content_type": response.content_type,
                "headers": [list(pair) for pair in response.headers],
            },
        )

    async def _on_http_abort(self, message: dict[str, Any]) -> None:
        aborted = self._http_aborts.get(message["rid"])
        if aborted is not None and not aborted.done():
            aborted.set_result(None)

    async def _on_http_response(self, message: dict[str, Any]) -> None:
        waiting = self._http_waiting.get(message["rid"])
        if waiting is not None and not waiting[1].done():
            waiting[1].set_result(message)


_node: Node | None = None


def get_node() -> Node:
    """This process's node, serving the project's server ``channels_sio.server.sio``."""
    global _node
    if _node is None:
        from ..server import sio

        _node = Node(sio)
    return _node
