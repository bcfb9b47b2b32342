"""Long-polling without sticky sessions: a poll for a sid another node owns is answered
through that node."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING, Any

from channels.exceptions import ChannelFull

from ..engineio import HttpRequest, HttpResponse
from ..engineio.errors import ErrorCode
from ..engineio.http import error_response
from ..engineio.polling import Receive
from .protocol import HTTP, HTTP_ABORT, HTTP_RESPONSE, NODE_ID_LENGTH

if TYPE_CHECKING:
    from .node import Node

__all__ = ["STOP_DRAIN", "PollingForwarder"]

logger = logging.getLogger("channels_sio.cluster")

#: How long a stopping node lets the polls forwarded to it finish answering (seconds).
STOP_DRAIN = 1.0
#: Answers a forwarded poll whose owner left the cluster before answering it.
_OWNER_LOST: dict[str, Any] = {}


class PollingForwarder:
    """Forwards polls for other nodes' sids, and answers those forwarded to this node."""

    def __init__(self, node: Node) -> None:
        self.node = node
        # Forwarded polls waiting for their owner's answer: rid -> (owner node id, answer).
        self._waiting: dict[str, tuple[str, asyncio.Future[dict[str, Any] | None]]] = {}
        # Polls forwarded to this node being answered.
        self._answering: set[asyncio.Task[Any]] = set()
        self._aborts: dict[str, asyncio.Future[None]] = {}
        node.handle(HTTP, self._on_http, slow=True)
        node.handle(HTTP_ABORT, self._on_abort)
        node.handle(HTTP_RESPONSE, self._on_response)
        node.membership.on_lost.append(self._owner_lost)

    async def drain(self) -> None:
        """Let the polls forwarded here finish answering, for at most ``STOP_DRAIN``."""
        answering = [task for task in self._answering if not task.done()]
        if answering:
            await asyncio.wait(answering, timeout=STOP_DRAIN)

    def _owner_lost(self, peer: str) -> None:
        # Polls forwarded to it will never be answered: say so now, rather than after the
        # forwarding limit (ping_interval + ping_timeout + 5 s). The client reconnects.
        for owner, answer in self._waiting.values():
            if owner == peer and not answer.done():
                answer.set_result(_OWNER_LOST)

    async def forward_http(self, request: HttpRequest, receive: Receive) -> HttpResponse | None:
        """Answer a polling request for a sid this process does not hold, through its owner."""
        node = self.node
        sid = request.query.get("sid", "")
        peer = node.peers.get(sid[:NODE_ID_LENGTH])
        if peer is None or node.channel is None:
            return error_response(ErrorCode.UNKNOWN_SID)
        loop = asyncio.get_running_loop()
        rid = secrets.token_hex(8)
        answer: asyncio.Future[dict[str, Any] | None] = loop.create_future()
        self._waiting[rid] = (peer.id, answer)
        watcher = loop.create_task(receive())

        def client_left(_: asyncio.Task[dict[str, Any]]) -> None:
            if not answer.done():
                answer.set_result(None)
                node.spawn(node.send(peer.channel, {"type": HTTP_ABORT, "rid": rid}))

        watcher.add_done_callback(client_left)
        engine_config = node.server.engine.config
        # A long poll is answered within ping_interval; give the bus a margin beyond that.
        limit = (engine_config.ping_interval + engine_config.ping_timeout) / 1000 + 5
        try:
            await node.send(
                peer.channel,
                {
                    "type": HTTP,
                    "rid": rid,
                    "reply_to": node.channel,
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
            logger.warning("node %s: node %s did not answer for sid %s", node.id, peer.id, sid)
            return error_response(ErrorCode.UNKNOWN_SID)
        finally:
            self._waiting.pop(rid, None)
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
        task = asyncio.current_task()
        assert task is not None
        self._answering.add(task)
        try:
            await self._answer(message)
        finally:
            self._answering.discard(task)

    async def _answer(self, message: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        aborted: asyncio.Future[None] = loop.create_future()
        self._aborts[message["rid"]] = aborted

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
            response = await self.node.server.engine.handle_http(request, receive)
        finally:
            self._aborts.pop(message["rid"], None)
        if response is None:
            return  # the client left; the forwarding node answered nobody
        try:
            await self.node.send(
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
        except ChannelFull:
            # The asking node answers its client "Session ID unknown" when its wait runs out.
            logger.warning("node %s: the asking node's channel is full", self.node.id)

    async def _on_abort(self, message: dict[str, Any]) -> None:
        aborted = self._aborts.get(message["rid"])
        if aborted is not None and not aborted.done():
            aborted.set_result(None)

    async def _on_response(self, message: dict[str, Any]) -> None:
        waiting = self._waiting.get(message["rid"])
        if waiting is not None and not waiting[1].done():
            waiting[1].set_result(message)
