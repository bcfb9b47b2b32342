"""Receivers of ``socket_connected`` / ``socket_disconnected`` (sync, async, raising) and the
``/signals`` namespace they watch; what they saw is put in the feature handlers' ``RECORDS``
(``report`` on ``/signals`` reads it).

``connected:<socket id>`` lists, per connection of that socket, what each receiver saw;
``order:<socket id>`` lists the disconnect handler and the disconnect receivers in the order
they ran; ``other:<socket id>`` would be written by a receiver bound to another namespace.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.dispatch import receiver

from channels_sio import Socket, sio
from channels_sio.signals import socket_connected, socket_disconnected
from channels_sio.socketio import Namespace
from tests.socketio.feature_sockets import RECORDS, on_loop, record, report

NSP = "/signals"
signals_nsp = sio.of(NSP)


def _append(key: str, value: Any) -> None:
    record(key, [*RECORDS.get(key, []), value])


async def _append_on_loop(key: str, value: Any) -> None:
    _append(key, value)


# Plain def receivers run in a thread: what they record goes through the event loop.
_append_from_thread = async_to_sync(_append_on_loop)


@sio.on("disconnect", namespace=NSP)
async def disconnect(socket: Socket, reason: str) -> None:
    _append(f"order:{socket.id}", "handler")


@sio.on("disconnect-me", namespace=NSP)
async def disconnect_me(socket: Socket) -> str:
    # After the acknowledgement, so that the client gets it.
    sio.spawn(socket.disconnect())
    return "bye"


sio.on("report", report, namespace=NSP)


@receiver(socket_connected)
def connected_sync(sender: Namespace, socket: Socket, recovered: bool, **kwargs: Any) -> None:
    if sender is signals_nsp:
        _append_from_thread(
            f"connected:{socket.id}",
            {"receiver": "sync", "recovered": recovered, "on_loop": on_loop()},
        )


@receiver(socket_connected, sender=signals_nsp)
async def connected_async(
    sender: Namespace, socket: Socket, recovered: bool, **kwargs: Any
) -> None:
    _append(
        f"connected:{socket.id}",
        {"receiver": "async", "recovered": recovered, "connected": socket.connected},
    )
    await socket.emit("signal-hello", recovered)


@receiver(socket_connected, sender=signals_nsp)
def connected_raising_sync(**kwargs: Any) -> None:
    raise RuntimeError("a sync socket_connected receiver broke")


@receiver(socket_connected, sender=signals_nsp)
async def connected_raising_async(**kwargs: Any) -> None:
    raise RuntimeError("an async socket_connected receiver broke")


@receiver(socket_connected, sender=sio.of("/signals-other"))
async def connected_elsewhere(sender: Namespace, socket: Socket, **kwargs: Any) -> None:
    record(f"other:{socket.id}", True)


@receiver(socket_disconnected, sender=signals_nsp)
def disconnected_sync(sender: Namespace, socket: Socket, reason: str, **kwargs: Any) -> None:
    _append_from_thread(
        f"order:{socket.id}", {"receiver": "sync", "reason": reason, "on_loop": on_loop()}
    )


@receiver(socket_disconnected, sender=signals_nsp)
async def disconnected_async(sender: Namespace, socket: Socket, reason: str, **kwargs: Any) -> None:
    _append(f"order:{socket.id}", {"receiver": "async", "reason": reason, "on_loop": on_loop()})


@receiver(socket_disconnected, sender=signals_nsp)
async def disconnected_raising(**kwargs: Any) -> None:
    raise RuntimeError("a socket_disconnected receiver broke")
