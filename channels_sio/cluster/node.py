"""This process's node on the channel layer: its channel, the receive loop, and its life cycle.

Each server process has one node, started with the ASGI server (lifespan, or daphne's reactor
start). It joins the nodes' group and reads its own channel; the jobs it carries are modules
of their own, each registering the message types it handles: membership (who else is up),
requests (questions to every node, with replies), polling forwarding, WebSocket upgrades of
other nodes' sessions, and the cluster adapter (the cross-node half of every namespace's
adapter).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer

from .. import conf
from ..socketio import SocketIOServer
from ..tasks import OwnedTasks
from .adapter import ClusterAdapter, CrossNode
from .forwarding import PollingForwarder
from .membership import Membership
from .protocol import NODE_ID_LENGTH, NODES_GROUP
from .requests import Requests
from .upgrades import RemoteUpgrades

if TYPE_CHECKING:
    from ..monitoring.service import Monitor

__all__ = ["Node", "get_node"]

logger = logging.getLogger("channels_sio.cluster")

MessageHandler = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]

#: How long a stopping node waits for its cancelled tasks to end (seconds).
STOP_WAIT = 1.0

#: The longest wait between two receives while the channel layer fails (seconds): once it
#: answers again, the node hears the others within this.
RECEIVE_BACKOFF_MAX = 1.0


class Node:
    """This process's member of the cluster, serving one Socket.IO server.

    ``start`` joins the cluster (once; the ASGI server's start-up calls it), ``stop`` leaves.
    """

    def __init__(self, server: SocketIOServer) -> None:
        self.server = server
        self.id = secrets.token_hex(NODE_ID_LENGTH // 2)
        self.layer: BaseChannelLayer | None = None
        self.channel: str | None = None
        #: Channel-layer messages this node sent (a group send counts once).
        self.messages_sent = 0
        self._handlers: dict[str, MessageHandler] = {}
        self._slow: set[str] = set()
        self._tasks = OwnedTasks(logger, "node %s: task failed", self.id)
        self._starting: asyncio.Future[None] | None = None
        self.membership = Membership(self)
        self.requests = Requests(self)
        self.forwarding = PollingForwarder(self)
        self.upgrades = RemoteUpgrades(self)
        self.cross_node = CrossNode(self)
        from ..monitoring.actions import AdminActions  # it imports this package's protocol

        self.admin_actions = AdminActions(self)
        #: The registry writer and leak rules of this process (``CHANNELS_SIO["monitoring"]``).
        self.monitor: Monitor | None = None
        #: Since when the channel layer fails (``time.monotonic()``); None while it answers.
        self.outage_since: float | None = None
        #: Broadcasts and commands that reached this node's clients only during the outage.
        self._unsent = 0

    def __repr__(self) -> str:
        return f"<Node {self.id}>"

    @property
    def peers(self) -> dict[str, Any]:
        """The other nodes this one has heard of, by id."""
        return self.membership.peers

    def handle(self, kind: str, handler: MessageHandler, *, slow: bool = False) -> None:
        """Run ``handler`` for messages of type ``kind``; a ``slow`` one (it waits for
        clients, handlers or polls) runs in a task of its own, off the receive loop."""
        self._handlers[kind] = handler
        if slow:
            self._slow.add(kind)

    # -- life cycle -----------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._starting is not None

    async def start(self) -> None:
        """Join the cluster: a channel of its own, the nodes' group, the receive loop.

        Idempotent, and a no-op without a channel layer. Once it returns, a broadcast from any
        node reaches this one, whether or not that node has heard of it yet.
        """
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_future()
            try:
                await self._join()
                if conf.monitoring_settings() is not None:
                    from ..monitoring.service import Monitor  # Django models: imported late

                    self.monitor = Monitor(self)
                    self.monitor.start()
            except BaseException as exc:
                self._starting.set_exception(exc)
                self._starting = None
                raise
            self._starting.set_result(None)
        await asyncio.shield(self._starting)

    def ensure_started(self) -> None:
        """Start in the background if nothing started the node yet: the first request does
        this when the ASGI server ran no start-up (uvicorn ``--lifespan off``)."""
        if self._starting is None:
            self.spawn(self.start())

    async def _join(self) -> None:
        self.layer = layer = get_channel_layer()
        if layer is None:
            return
        engine = self.server.engine
        engine.sid_prefix = self.id
        if conf.get("forward_polling"):
            engine.forward = self.forwarding.forward_http
        if not isinstance(layer, InMemoryChannelLayer):
            # The in-memory layer reaches no other process: adapters stay local, and the node
            # only receives what channels_sio.emit sends from this process.
            self.server.use_adapter(lambda nsp: ClusterAdapter(nsp, self))
            engine.remote_owner = self.upgrades
            window = conf.get("upgrade_window") / 1000
            if window > 0:
                # Alone, no upgrade can land elsewhere: sessions are not held.
                engine.upgrade_window = lambda: window if self.membership.peers else 0.0
        self.server.bus = self.cross_node
        self.channel = await layer.new_channel("channels_sio.node.")
        await layer.group_add(NODES_GROUP, self.channel)
        self.spawn(self._receive())
        self.membership.start()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task the node owns (cancelled by :meth:`stop`)."""
        return self._tasks.spawn(coro)

    async def _receive(self) -> None:
        layer, channel = self.layer, self.channel
        assert layer is not None
        assert channel is not None
        backoff = 0.1
        while True:
            if self.outage_since is not None:
                # A receive that waits proves nothing: a Redis that restarted empty sends
                # nothing to a node it has forgotten. Joining the group again does.
                try:
                    await layer.group_add(NODES_GROUP, channel)
                except Exception as exc:
                    self.layer_failed(exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, RECEIVE_BACKOFF_MAX)
                    continue
                self.layer_answered()
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A layer hiccup (Redis restarting, a socket timeout) must not end the node.
                self.layer_failed(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RECEIVE_BACKOFF_MAX)
                continue
            backoff = 0.1
            self.layer_answered()
            await self._dispatch(message)

    # -- channel layer outages ------------------------------------------------------------

    def layer_failed(self, exc: BaseException, *, unsent: bool = False) -> None:
        """A channel layer call failed (``unsent``: a broadcast or command went to this
        node's clients only). Logged once per outage, not once per call: every call fails
        while Redis is down."""
        if unsent:
            self._unsent += 1
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            logger.warning(
                "node %s: the channel layer failed (%s: %s); other nodes are not reached "
                "until it answers again",
                self.id,
                type(exc).__name__,
                exc,
            )

    def layer_answered(self) -> None:
        """A channel layer call succeeded: the end of an outage is logged, with what it
        cost, and the node joins the nodes' group again at once (a Redis that restarted
        empty has forgotten it) rather than at its next heartbeat."""
        since = self.outage_since
        if since is None:
            return
        self.outage_since = None
        unsent, self._unsent = self._unsent, 0
        logger.warning(
            "node %s: the channel layer answers again after %.1f s; %d broadcast(s) and "
            "command(s) meanwhile reached this node's clients only",
            self.id,
            time.monotonic() - since,
            unsent,
        )
        self.spawn(self.membership.rejoin())

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type", "")
        if message.get("node") == self.id:
            return  # this node's own group message
        handler = self._handlers.get(kind)
        if handler is None:
            logger.warning("node %s: unknown message type %r", self.id, kind)
            return
        if kind in self._slow:
            self.spawn(handler(message))
            return
        try:
            await handler(message)
        except Exception:
            logger.exception("node %s: failed to handle %s", self.id, kind)

    async def stop(self) -> None:
        """Leave the cluster and stop every task. Safe to call more than once.

        Call it once the sessions are closed: the polls other nodes forwarded here then have
        their answer (the close packet), and get a moment to send it before tasks are cancelled.
        """
        if self._starting is None:
            return
        monitor, self.monitor = self.monitor, None
        if monitor is not None:
            await monitor.stop()
        await self.forwarding.drain()
        if self.server.bus is self.cross_node:
            self.server.bus = None
        engine = self.server.engine
        if engine.remote_owner is self.upgrades:
            engine.remote_owner = None
            engine.upgrade_window = None
        tasks = self._tasks.cancel()
        if tasks:
            # wait() does not re-raise the tasks' CancelledError, yet lets ours through.
            _, stuck = await asyncio.wait(tasks, timeout=STOP_WAIT)
            if stuck:
                # A channels-redis receive cancelled inside redis-py's blocking read does not
                # always end (seen with redis-py 8.1 and channels-redis 4.3: the read goes
                # on). It is cancelled; stopping does not wait for it to agree.
                logger.debug("node %s: %d task(s) still stopping", self.id, len(stuck))
        await self.membership.leave()
        self._starting = None

    # -- sending --------------------------------------------------------------------------

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Send to one node's channel."""
        assert self.layer is not None
        self.messages_sent += 1
        await self.layer.send(channel, {**message, "node": self.id})

    async def publish(self, kind: str, /, **fields: Any) -> None:
        """Send to every node, once: the group delivers it to each, this one included (which
        ignores its own)."""
        assert self.layer is not None
        self.messages_sent += 1
        await self.layer.group_send(
            NODES_GROUP, {"type": kind, "node": self.id, "channel": self.channel, **fields}
        )


_node: Node | None = None


def get_node() -> Node:
    """This process's node, serving the project's server ``channels_sio.server.sio``."""
    global _node
    if _node is None:
        from ..server import sio

        _node = Node(sio)
    return _node
