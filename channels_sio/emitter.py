"""Emitting from anywhere in Django (views, signals, commands, tasks) through the channel layer.

The event is sent once to the group of all nodes; every server process delivers it to its own
matching sockets. With the in-memory channel layer that reaches only this process's server;
with channels-redis it reaches every process, and works from other processes too. With
connection state recovery on, the emitting process records it first (once, whatever the number
of nodes), so that sockets that are away get it when they come back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured

from . import conf
from .cluster.protocol import EMIT, NODES_GROUP
from .recovery import PacketRecord
from .socketio.packet import validate_event_name

__all__ = ["async_emit", "emit"]


def _rooms(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


async def async_emit(
    event: str,
    *args: Any,
    to: str | Iterable[str] | None = None,
    except_: str | Iterable[str] | None = None,
    namespace: str = "/",
    volatile: bool = False,
) -> None:
    """Emit ``event`` to the sockets of ``namespace`` in rooms ``to`` (all when None).

    Raises ValueError for a reserved or non-string event name before anything is sent.
    Arguments must be serializable by the channel layer (JSON types and bytes).
    """
    validate_event_name(event)
    layer = get_channel_layer()
    if layer is None:
        raise ImproperlyConfigured("channels_sio.emit needs CHANNEL_LAYERS in settings")
    rooms, except_rooms = _rooms(to), _rooms(except_)
    offset = None
    recovery = conf.recovery()
    if recovery is not None and not volatile:
        entry = PacketRecord(namespace, [event, *args], frozenset(rooms), frozenset(except_rooms))
        try:
            # Not grouped with the server's writes: this may run on a loop of its own
            # (async_to_sync), which ends with the call.
            [offset] = await recovery.store.append_outside([entry])
        except Exception:
            recovery.failed("recording an emit from Django code")
        else:
            recovery.succeeded()
    await layer.group_send(
        NODES_GROUP,
        {
            "type": EMIT,
            "namespace": namespace,
            "event": event,
            "args": list(args),
            "rooms": rooms,
            "except_rooms": except_rooms,
            "volatile": volatile,
            "offset": offset,
        },
    )


def emit(
    event: str,
    *args: Any,
    to: str | Iterable[str] | None = None,
    except_: str | Iterable[str] | None = None,
    namespace: str = "/",
    volatile: bool = False,
) -> None:
    """Synchronous :func:`async_emit`, for views, signals, management commands and tasks."""
    async_to_sync(async_emit)(
        event, *args, to=to, except_=except_, namespace=namespace, volatile=volatile
    )
