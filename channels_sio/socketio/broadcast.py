"""Broadcasting as an immutable builder: each flag returns a new operator; ``emit`` ends it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .exceptions import AckTimeoutError
from .packet import Packet, PacketType, validate_event_name

if TYPE_CHECKING:
    from .bus import RemoteSocket
    from .namespace import Namespace
    from .socket import Socket

__all__ = ["BroadcastFlags", "BroadcastOperator"]


@dataclass(frozen=True, slots=True)
class BroadcastFlags:
    """Where a broadcast goes and how."""

    rooms: frozenset[str] = frozenset()
    except_rooms: frozenset[str] = frozenset()
    volatile: bool = False
    local: bool = False
    timeout: float | None = None  # seconds, for acknowledgements
    compress: bool = True
    exclude_sid: str | None = None  # the emitting socket, for socket.broadcast / socket.to()


def _room_set(rooms: tuple[str | Iterable[str], ...]) -> frozenset[str]:
    found: set[str] = set()
    for room in rooms:
        if isinstance(room, str):
            found.add(room)
        else:
            found.update(room)
    return frozenset(found)


class BroadcastOperator:
    """Targets a set of sockets of one namespace (and its children, for dynamic namespaces)."""

    __slots__ = ("flags", "nsp")

    def __init__(self, nsp: Namespace, flags: BroadcastFlags | None = None) -> None:
        self.nsp = nsp
        self.flags = flags or BroadcastFlags()

    def _with(self, **changes: Any) -> BroadcastOperator:
        return BroadcastOperator(self.nsp, replace(self.flags, **changes))

    def to(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        """Only sockets in any of these rooms (a socket id is a room too)."""
        return self._with(rooms=self.flags.rooms | _room_set(rooms))

    in_ = to

    def except_(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        """Leave out sockets in any of these rooms."""
        return self._with(except_rooms=self.flags.except_rooms | _room_set(rooms))

    @property
    def volatile(self) -> BroadcastOperator:
        """Drop the packet for sockets whose transport cannot take it right now."""
        return self._with(volatile=True)

    @property
    def local(self) -> BroadcastOperator:
        """Only sockets of this process, not those of other nodes."""
        return self._with(local=True)

    def timeout(self, ms: int) -> BroadcastOperator:
        """How long :meth:`emit_with_ack` waits for acknowledgements, in milliseconds."""
        return self._with(timeout=ms / 1000)

    def compress(self, compress: bool = True) -> BroadcastOperator:
        """Accepted for socket.io API parity; compression is up to the ASGI server."""
        return self._with(compress=compress)

    async def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` with ``args`` to every targeted socket, in every process."""
        validate_event_name(event)
        await self.nsp.adapter.broadcast(Packet(PacketType.EVENT, data=[event, *args]), self.flags)

    async def emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        """Send and collect one acknowledgement per targeted socket (needs :meth:`timeout`).

        Raises :class:`AckTimeoutError` carrying the responses that arrived in time.
        """
        validate_event_name(event)
        if self.flags.timeout is None:
            raise ValueError("broadcast acknowledgements need a timeout: use .timeout(ms)")
        responses, complete = await self.nsp.adapter.broadcast_with_ack(
            Packet(PacketType.EVENT, data=[event, *args]), self.flags
        )
        if not complete:
            raise AckTimeoutError(
                f"not every socket acknowledged {event!r} in time", list(responses)
            )
        return responses

    async def fetch_sockets(self) -> list[Socket | RemoteSocket]:
        """The targeted sockets: this process's, then the other processes'."""
        return await self.nsp.adapter.fetch_sockets(self.flags)

    async def sockets_join(self, *rooms: str | Iterable[str]) -> None:
        """Make the targeted sockets join rooms."""
        await self.nsp.adapter.add_sockets(self.flags, _room_set(rooms))

    async def sockets_leave(self, *rooms: str | Iterable[str]) -> None:
        """Make the targeted sockets leave rooms."""
        await self.nsp.adapter.del_sockets(self.flags, _room_set(rooms))

    async def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect the targeted sockets (``close`` closes their whole connection)."""
        await self.nsp.adapter.disconnect_sockets(self.flags, close)
