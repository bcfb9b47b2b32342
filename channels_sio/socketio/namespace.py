"""A namespace at run time: its handlers, its adapter (sockets, rooms, delivery) and the
broadcast shortcuts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, overload

from .broadcast import BroadcastOperator
from .handlers import Handlers, HandlerT

if TYPE_CHECKING:
    from .adapter import Adapter
    from .bus import RemoteSocket
    from .server import SocketIOServer
    from .socket import Socket

__all__ = ["Namespace"]


class Namespace:
    """One namespace (``/``, ``/chat``, or a child of a dynamic namespace).

    ``sio.of("/chat")`` returns it: register handlers with :meth:`on` and :meth:`use`, and
    broadcast with :meth:`emit`, :meth:`to`, :meth:`except_` and the other operator methods.
    A dynamic (parent) namespace has no sockets of its own; its operations cover its children.
    """

    def __init__(
        self,
        server: SocketIOServer,
        name: str,
        handlers: Handlers | None = None,
        *,
        parent: Namespace | None = None,
    ) -> None:
        self.server = server
        self.name = name
        self.handlers = handlers or Handlers()
        self.parent = parent
        self.children: dict[str, Namespace] = {}
        self._adapter: Adapter | None = None
        self._next_ack_id = 0

    def __repr__(self) -> str:
        return f"<Namespace {self.name}>"

    # -- handlers -------------------------------------------------------------------------

    @overload
    def on(self, event: str, handler: HandlerT) -> HandlerT: ...

    @overload
    def on(self, event: str, handler: None = None) -> Callable[[HandlerT], HandlerT]: ...

    def on(
        self, event: str, handler: HandlerT | None = None
    ) -> HandlerT | Callable[[HandlerT], HandlerT]:
        """Register a handler for ``event`` ("connect", "disconnect", "*" or an event name).

        Use as ``@nsp.on("chat")`` or ``nsp.on("chat", handler)``; either way the handler is
        returned as it was, so type checkers keep its signature.
        """
        if handler is not None:
            self.handlers.register(event, handler)
            return handler

        def decorator(func: HandlerT) -> HandlerT:
            self.handlers.register(event, func)
            return func

        return decorator

    def use(self, middleware: HandlerT) -> HandlerT:
        """Add a middleware ``(socket, auth)``: raise ConnectionRefusedError to refuse."""
        self.handlers.use(middleware)
        return middleware

    # -- sockets and delivery -------------------------------------------------------------

    @property
    def adapter(self) -> Adapter:
        """This namespace's adapter, made by the server on first use (settings are read then)."""
        adapter = self._adapter
        if adapter is None:
            adapter = self._adapter = self.server.new_adapter(self)
        return adapter

    def reset_adapter(self) -> Adapter | None:
        """Forget the adapter (the server's kind of adapter changed); the old one, if any."""
        old, self._adapter = self._adapter, None
        return old

    @property
    def sockets(self) -> dict[str, Socket]:
        """This process's connected sockets of the namespace, by id."""
        return self.adapter.sockets

    def next_ack_id(self) -> int:
        ack_id = self._next_ack_id
        self._next_ack_id += 1
        return ack_id

    # -- operator shortcuts ---------------------------------------------------------------

    @property
    def operator(self) -> BroadcastOperator:
        """A broadcast operator targeting every socket of this namespace."""
        return BroadcastOperator(self)

    def to(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        return self.operator.to(*rooms)

    in_ = to

    def except_(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        return self.operator.except_(*rooms)

    @property
    def volatile(self) -> BroadcastOperator:
        return self.operator.volatile

    @property
    def local(self) -> BroadcastOperator:
        return self.operator.local

    def timeout(self, ms: int) -> BroadcastOperator:
        return self.operator.timeout(ms)

    def compress(self, compress: bool = True) -> BroadcastOperator:
        return self.operator.compress(compress)

    async def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to every socket of the namespace."""
        await self.operator.emit(event, *args)

    async def emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        return await self.operator.emit_with_ack(event, *args)

    async def fetch_sockets(self) -> list[Socket | RemoteSocket]:
        return await self.operator.fetch_sockets()

    async def sockets_join(self, *rooms: str | Iterable[str]) -> None:
        await self.operator.sockets_join(*rooms)

    async def sockets_leave(self, *rooms: str | Iterable[str]) -> None:
        await self.operator.sockets_leave(*rooms)

    async def disconnect_sockets(self, close: bool = False) -> None:
        await self.operator.disconnect_sockets(close)
