"""Questions to every other node, with replies: fetch_sockets, broadcast acknowledgements and
server-side events with acknowledgements."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from channels.exceptions import ChannelFull

from .protocol import REPLY, REQUEST

if TYPE_CHECKING:
    from .node import Node

__all__ = ["Answerer", "Requests"]

logger = logging.getLogger("channels_sio.cluster")

#: Answers one kind of request: the message in, the result to reply with out.
Answerer = Callable[[dict[str, Any]], Awaitable[Any]]


class _Waiting:
    """One request's replies, and the known nodes that have yet to answer."""

    def __init__(self, expected: set[str]) -> None:
        self.expected = expected
        self.results: list[Any] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not expected:
            self.done.set_result(None)

    def add(self, node: str, result: Any) -> None:
        if self.done.done():
            return
        self.results.append(result)
        self.expected.discard(node)
        if not self.expected:
            self.done.set_result(None)


class Requests:
    """Asks every other node through the nodes' group and gathers their replies.

    The question reaches every node; the answer is complete once every node this one knows of
    has replied (a node not heard of yet may add its reply before that).
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self._answerers: dict[str, Answerer] = {}
        self._waiting: dict[str, _Waiting] = {}
        node.handle(REQUEST, self._on_request, slow=True)
        node.handle(REPLY, self._on_reply)
        node.membership.on_lost.append(self._lost)

    def answer(self, kind: str, answerer: Answerer) -> None:
        """Answer requests of ``kind`` with ``answerer``."""
        self._answerers[kind] = answerer

    async def ask(
        self, kind: str, fields: dict[str, Any], timeout: float
    ) -> tuple[list[Any], bool]:
        """Ask every other node; their results, and whether every known node answered within
        ``timeout`` seconds."""
        node = self.node
        if node.channel is None:
            return [], True
        rid = secrets.token_hex(8)
        waiting = _Waiting(set(node.peers))
        if waiting.done.done():
            return [], True  # alone in the cluster
        self._waiting[rid] = waiting
        try:
            await node.publish(REQUEST, kind=kind, rid=rid, reply_to=node.channel, **fields)
            await asyncio.wait_for(asyncio.shield(waiting.done), timeout)
        except TimeoutError:
            logger.info(
                "node %s: %d node(s) did not answer %s in time",
                node.id,
                len(waiting.expected),
                kind,
            )
            return list(waiting.results), False
        finally:
            self._waiting.pop(rid, None)
        return waiting.results, True

    async def tell(self, kind: str, fields: dict[str, Any]) -> None:
        """Send a request that wants no reply to every other node."""
        await self.node.publish(REQUEST, kind=kind, rid=None, reply_to=None, **fields)

    def _lost(self, peer: str) -> None:
        # A node that left will never answer: stop waiting for it.
        for waiting in self._waiting.values():
            if peer in waiting.expected:
                waiting.expected.discard(peer)
                if not waiting.expected and not waiting.done.done():
                    waiting.done.set_result(None)

    async def _on_request(self, message: dict[str, Any]) -> None:
        answerer = self._answerers.get(message.get("kind", ""))
        if answerer is None:
            logger.warning("node %s: unknown request %r", self.node.id, message.get("kind"))
            return
        try:
            result = await answerer(message)
        except Exception:
            logger.exception("node %s: failed to answer %s", self.node.id, message["kind"])
            return
        reply_to = message.get("reply_to")
        if reply_to:
            try:
                await self.node.send(
                    reply_to, {"type": REPLY, "rid": message["rid"], "result": result}
                )
            except ChannelFull:
                logger.warning("node %s: the asking node's channel is full", self.node.id)

    async def _on_reply(self, message: dict[str, Any]) -> None:
        waiting = self._waiting.get(message.get("rid", ""))
        if waiting is not None:  # else too late: the request timed out
            waiting.add(message.get("node", ""), message.get("result"))
