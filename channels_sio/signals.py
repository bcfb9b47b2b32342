"""Signals of channels_sio: sockets connected and disconnected, so that apps react without a
handler in every namespace, and leak alarms raised and resolved, for mail, Sentry or Slack.

``socket_connected`` is sent with ``sender=<the socket's Namespace>``, ``socket=<the Socket>``
and ``recovered`` (whether connection state recovery gave the socket back), once its connect
handler accepted and its CONNECT reply went out. ``socket_disconnected`` is sent with the same
sender, ``socket`` and ``reason`` (socket.io's disconnect reason: ``"transport close"``,
``"client namespace disconnect"``, ``"server namespace disconnect"``, ``"ping timeout"``, ...)
once its disconnect handler ran, and never before the same socket's ``socket_connected``
receivers have returned. Both are sent for the project's server, ``channels_sio.sio``, on the
event loop with Django's ``asend_robust``: ``async def`` receivers run there, concurrently;
plain ``def`` receivers run together in one thread off the loop (``sync_to_async``), so they may
use the ORM. A receiver that raises is logged (logger ``django.dispatch``) and neither breaks the
connection nor keeps the others from running. With no receiver connected, nothing is built::

    from django.dispatch import receiver
    from channels_sio.signals import socket_connected, socket_disconnected

    @receiver(socket_connected)
    async def greet(sender, socket, recovered, **kwargs):
        if not recovered:
            await socket.emit("welcome", socket.id)

    @receiver(socket_disconnected, sender=sio.of("/chat"))
    def note_departure(sender, socket, reason, **kwargs):
        Departure.objects.create(socket_id=socket.id, reason=reason)

``leak_detected`` and ``leak_resolved`` are sent with ``sender=Alarm`` and ``alarm=<the Alarm
row>``, once per alarm, after the evaluation that raised or resolved it was committed. They are
sent from the monitoring thread of the node that holds the rules lease (a plain thread, never the
event loop), so receivers are ordinary synchronous functions that may use the ORM; a slow
receiver delays the next evaluation, never a client. A receiver that raises is logged
(``channels_sio.monitoring``) and does not keep the others from running::

    from django.dispatch import receiver
    from channels_sio.signals import leak_detected

    @receiver(leak_detected)
    def page_someone(sender, alarm, **kwargs):
        if alarm.severity == "critical":
            mail_admins(f"Socket.IO: {alarm}", repr(alarm.details))
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from django.dispatch import Signal

if TYPE_CHECKING:
    from .socketio import Socket

__all__ = [
    "SocketSignals",
    "leak_detected",
    "leak_resolved",
    "socket_connected",
    "socket_disconnected",
]

#: A socket joined its namespace: ``socket`` (its CONNECT reply sent) and ``recovered``.
socket_connected = Signal()

#: A socket left its namespace: ``socket`` and the disconnect ``reason``.
socket_disconnected = Signal()

#: A leak rule found something new: ``alarm`` is the open Alarm row just created.
leak_detected = Signal()

#: The condition of an open alarm cleared: ``alarm`` is the row, ``resolved_at`` now set.
leak_resolved = Signal()


def _listened(signal: Signal, sender: object) -> bool:
    # The list check first: with no receiver at all it is one attribute read, where
    # has_listeners() takes the signal's lock.
    return bool(signal.receivers) and signal.has_listeners(sender)


class SocketSignals:
    """The :class:`~channels_sio.socketio.SocketHooks` of the project's server: sends
    ``socket_connected`` and ``socket_disconnected``."""

    def __init__(self) -> None:
        # Sockets whose socket_connected receivers are running, done when they have returned:
        # a socket_disconnected for the same socket waits for them.
        self._connecting: dict[Socket, asyncio.Future[None]] = {}

    def connected(self, socket: Socket) -> Coroutine[Any, Any, None] | None:
        if not _listened(socket_connected, socket.nsp):
            return None
        return self._send_connected(socket)

    async def _send_connected(self, socket: Socket) -> None:
        done = asyncio.get_running_loop().create_future()
        self._connecting[socket] = done
        try:
            await socket_connected.asend_robust(
                sender=socket.nsp, socket=socket, recovered=socket.recovered
            )
        finally:
            del self._connecting[socket]
            done.set_result(None)

    def disconnected(self, socket: Socket, reason: str) -> Coroutine[Any, Any, None] | None:
        connecting = self._connecting.get(socket)
        if connecting is None and not _listened(socket_disconnected, socket.nsp):
            return None
        return self._send_disconnected(socket, reason, connecting)

    async def _send_disconnected(
        self, socket: Socket, reason: str, connecting: asyncio.Future[None] | None
    ) -> None:
        if connecting is not None:
            # asyncio.wait, not await: cancelling this wait must not cancel that future.
            await asyncio.wait({connecting})
        await socket_disconnected.asend_robust(sender=socket.nsp, socket=socket, reason=reason)
