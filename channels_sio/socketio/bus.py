"""What the Socket.IO layer needs from the bus to the other server processes.

The pure layer only calls this interface; the cluster node (``channels_sio.cluster``)
implements it over the Channels channel layer. Broadcasts and the other operations on many
sockets go through each namespace's adapter instead (``adapter.py``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from .packet import validate_event_name
from .socket import Handshake

__all__ = ["Bus", "RemoteSocket", "SocketSnapshot"]


@dataclass(frozen=True)
class SocketSnapshot:
    """A socket as another process describes it."""

    id: str
    namespace: str
    rooms: frozenset[str]
    data: dict[str, Any]
    handshake: Handshake
    node: str

    def to_message(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "namespace": self.namespace,
            "rooms": sorted(self.rooms),
            "data": self.data,
            "handshake": asdict(self.handshake),
            "node": self.node,
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> SocketSnapshot:
        return cls(
            id=message["id"],
            namespace=message["namespace"],
            rooms=frozenset(message["rooms"]),
            data=dict(message["data"]),
            handshake=Handshake(**message["handshake"]),
            node=message["node"],
        )


class Bus(Protocol):
    """What reaches the other processes outside a namespace's adapter: one remote socket (as
    ``fetch_sockets`` returned it), and the other servers' own handlers."""

    async def socket_command(
        self, snapshot: SocketSnapshot, command: str, argument: Any
    ) -> None: ...

    def spawn_socket_command(
        self, snapshot: SocketSnapshot, command: str, argument: Any
    ) -> None: ...

    async def server_side_emit(
        self, event: str, args: list[Any], timeout: float | None
    ) -> list[Any]: ...


@dataclass
class RemoteSocket:
    """A socket connected to another process, as ``fetch_sockets`` returns it.

    ``emit`` and ``disconnect`` reach it through the bus; ``join`` and ``leave`` are sent
    without waiting, as socket.io's ``RemoteSocket`` does.
    """

    snapshot: SocketSnapshot
    bus: Bus = field(repr=False)

    @property
    def id(self) -> str:
        return self.snapshot.id

    @property
    def rooms(self) -> frozenset[str]:
        return self.snapshot.rooms

    @property
    def data(self) -> dict[str, Any]:
        return self.snapshot.data

    @property
    def handshake(self) -> Handshake:
        return self.snapshot.handshake

    async def emit(self, event: str, *args: Any) -> None:
        validate_event_name(event)
        await self.bus.socket_command(self.snapshot, "emit", [event, *args])

    def join(self, *rooms: str) -> None:
        self.bus.spawn_socket_command(self.snapshot, "join", list(rooms))

    def leave(self, room: str) -> None:
        self.bus.spawn_socket_command(self.snapshot, "leave", [room])

    async def disconnect(self, close: bool = False) -> None:
        await self.bus.socket_command(self.snapshot, "disconnect", close)
