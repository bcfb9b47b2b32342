"""The admin's actions on live sessions, carried to the node that owns each session.

The admin runs in any process (a worker of the ASGI server, or a WSGI process of its own). It
finds the owner's channel in the registry (``LiveSession.node.channel``) and sends that node one
``channels_sio.admin`` message per session; the node finds the session among its own and acts.
Nothing waits for an answer: the registry shows the outcome at the node's next flush. With the
in-memory channel layer (one process: ``runserver``) the node of this very process receives it.

Message fields: ``action`` (``disconnect``, ``join``, ``leave`` or ``emit``), ``sid`` (the
Engine.IO session), and optionally ``socket`` (one socket id) or ``namespace`` (the session's
socket in that namespace) to act on less than every socket of the session, ``room`` (join and
leave), ``event`` and ``args`` (emit), ``by`` (who asked, for the node's log).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured

from ..cluster.protocol import ADMIN
from ..engineio import CloseReason
from ..socketio.packet import validate_event_name

if TYPE_CHECKING:
    from ..cluster.node import Node
    from ..models import LiveSession
    from ..socketio.socket import Socket

__all__ = ["Action", "AdminAction", "AdminActions", "Delivery", "send_action"]

logger = logging.getLogger("channels_sio.monitoring")

#: The message type, sent to one node's channel.


class Action(StrEnum):
    """What the admin can do to a live session."""

    #: The whole connection (a DISCONNECT per namespace, then the Engine.IO close: the official
    #: client reports ``io server disconnect`` and does not reconnect); with ``namespace`` or
    #: ``socket``, only those sockets leave their namespace.
    DISCONNECT = "disconnect"
    JOIN = "join"
    LEAVE = "leave"
    EMIT = "emit"


@dataclass(frozen=True)
class AdminAction:
    """One action, for any number of sessions. Raises ValueError when it is incomplete: a room
    for ``join`` / ``leave``, a valid event name for ``emit``."""

    action: Action
    #: Only the session's socket in this namespace ("" for every socket of the session).
    namespace: str = ""
    #: Only this socket ("" for every socket of the session).
    socket: str = ""
    room: str = ""
    event: str = ""
    args: tuple[Any, ...] = field(default=())
    #: Who asked: the node logs it.
    by: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", Action(self.action))
        if self.action in (Action.JOIN, Action.LEAVE) and not self.room:
            raise ValueError(f"{self.action} needs a room")
        if self.action is Action.EMIT:
            validate_event_name(self.event)

    def message(self, sid: str) -> dict[str, Any]:
        """The channel-layer message for session ``sid``."""
        return {
            "type": ADMIN,
            "action": self.action.value,
            "sid": sid,
            "socket": self.socket,
            "namespace": self.namespace,
            "room": self.room,
            "event": self.event,
            "args": list(self.args),
            "by": self.by,
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> tuple[str, AdminAction]:
        """The session id and the action of a message (ValueError / TypeError if malformed)."""
        sid = message.get("sid")
        args = message.get("args") or []
        if not isinstance(sid, str) or not sid or not isinstance(args, list):
            raise ValueError("no sid, or args that are not a list")
        texts = {}
        for name in ("socket", "namespace", "room", "event", "by"):
            value = message.get(name) or ""
            if not isinstance(value, str):
                raise TypeError(f"{name} is not a string")
            texts[name] = value
        return sid, cls(action=Action(str(message.get("action"))), args=tuple(args), **texts)

    def selects(self, socket: Socket) -> bool:
        """Whether ``socket`` is one this action is for."""
        if self.socket and socket.id != self.socket:
            return False
        return not self.namespace or socket.nsp.name == self.namespace


@dataclass
class Delivery:
    """Where the messages of :func:`send_action` went, by session id."""

    sent: list[str] = field(default_factory=list)
    #: Not sent: the session or its node is gone (or never wrote its channel).
    gone: list[str] = field(default_factory=list)
    #: Not sent: the node's channel is full (the node is not reading).
    full: list[str] = field(default_factory=list)


def send_action(sessions: Iterable[LiveSession], action: AdminAction) -> Delivery:
    """Send ``action`` to the node of each of ``sessions`` (registry rows, with their node).

    Synchronous, for admin views in any process. Raises ImproperlyConfigured when the project
    has no channel layer; the channel layer's own errors (Redis unreachable) propagate.
    """
    delivery = Delivery()
    targets: list[tuple[str, dict[str, Any]]] = []
    for session in sessions:
        node = session.node
        if session.state != "live" or node.gone_at is not None or not node.channel:
            delivery.gone.append(session.sid)
        else:
            targets.append((node.channel, action.message(session.sid)))
    if targets:
        full = async_to_sync(_send)(targets)
        for _, message in targets:
            sid = message["sid"]
            (delivery.full if sid in full else delivery.sent).append(sid)
    return delivery


async def _send(targets: list[tuple[str, dict[str, Any]]]) -> set[str]:
    """Send each message; the session ids whose node's channel was full."""
    layer = get_channel_layer()
    if layer is None:
        raise ImproperlyConfigured("the admin's actions need CHANNEL_LAYERS in settings")
    full = set()
    for channel, message in targets:
        try:
            await layer.send(channel, message)
        except ChannelFull:
            full.add(message["sid"])
    return full


class AdminActions:
    """What a node does when the admin (in any process) asks it to act on one of its
    sessions: disconnect it, make its sockets join or leave a room, emit a test event."""

    def __init__(self, node: Node) -> None:
        self.node = node
        node.handle(ADMIN, self._on_message)

    async def _on_message(self, message: dict[str, Any]) -> None:
        try:
            sid, action = AdminAction.from_message(message)
        except (TypeError, ValueError) as exc:
            logger.warning("node %s: malformed admin message (%s): %r", self.node.id, exc, message)
            return
        await self.perform(sid, action)

    async def perform(self, sid: str, action: AdminAction) -> bool:
        """Do ``action`` to this process's session ``sid``; False when it is not here (it
        closed since the registry's last flush)."""
        node, server = self.node, self.node.server
        session = server.engine.sessions.get(sid)
        if session is None or not session.is_open:
            logger.info("node %s: admin %s: session %s is not here", node.id, action.action, sid)
            return False
        logger.info(
            "node %s: admin %s (%s) on session %s", node.id, action.action, action.by or "?", sid
        )
        client = server.clients.get(sid)
        found = list(client.sockets.values()) if client is not None else []
        sockets = [socket for socket in found if socket.connected and action.selects(socket)]
        if action.action is Action.DISCONNECT:
            if action.namespace or action.socket:
                for socket in sockets:
                    await socket.disconnect()
            elif found:
                # As socket.disconnect(close=True) in a handler: every namespace, then the
                # connection.
                await found[0].disconnect(close=True)
            else:
                await session.close(CloseReason.FORCED_CLOSE)  # it joined no namespace
        elif action.action is Action.JOIN:
            for socket in sockets:
                socket.join(action.room)
        elif action.action is Action.LEAVE:
            for socket in sockets:
                socket.leave(action.room)
        else:
            for socket in sockets:
                await socket.emit(action.event, *action.args)
        return True
