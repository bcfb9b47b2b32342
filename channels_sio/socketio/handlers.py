"""Application handlers of a namespace: events, connect/disconnect, catch-all, middlewares."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .namespace import Namespace

__all__ = ["Handler", "Handlers", "NamespaceHandler", "SyncRunner"]

Handler = Callable[..., Any]
#: Turns a plain ``def`` into an awaitable call run off the event loop (``sync_to_async``).
SyncRunner = Callable[[Callable[..., Any]], Callable[..., Awaitable[Any]]]

CONNECT = "connect"
DISCONNECT = "disconnect"
CATCH_ALL = "*"


def _positional_count(handler: Handler) -> int:
    """How many positional arguments ``handler`` accepts (a large number for ``*args``)."""
    count = 0
    for param in inspect.signature(handler).parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            return 1 << 16
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


class Handlers:
    """What one namespace (or a family of dynamic namespaces) runs for its sockets."""

    def __init__(self) -> None:
        self.events: dict[str, Handler] = {}
        self.catch_all: Handler | None = None
        self.connect: Handler | None = None
        self.disconnect: Handler | None = None
        self.middlewares: list[Handler] = []
        self._arity: dict[Handler, int] = {}

    def register(self, event: str, handler: Handler) -> None:
        if not callable(handler):
            raise TypeError(f"handler for {event!r} must be callable, not {handler!r}")
        self._arity[handler] = _positional_count(handler)
        if event == CONNECT:
            self.connect = handler
        elif event == DISCONNECT:
            self.disconnect = handler
        elif event == CATCH_ALL:
            self.catch_all = handler
        else:
            self.events[event] = handler

    def use(self, middleware: Handler) -> None:
        self._arity[middleware] = _positional_count(middleware)
        self.middlewares.append(middleware)

    def trim(self, handler: Handler, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """Optional trailing arguments (auth, reason) go only to handlers that take them."""
        return args[: self._arity.get(handler, len(args))]


class NamespaceHandler:
    """Class-based handlers for one namespace, in the style of python-socketio's namespaces.

    Subclass it, set ``namespace``, and define ``on_connect(self, socket, auth)``,
    ``on_disconnect(self, socket, reason)`` and ``on_<event>(self, socket, *args)`` methods
    (``async def`` or plain ``def``). Register an instance with ``server.register(...)``.
    ``self.nsp`` is then the runtime :class:`Namespace`, for broadcasting.
    """

    namespace: str = "/"
    nsp: Namespace

    def handlers(self) -> dict[str, Handler]:
        """Event name -> bound method, from the ``on_*`` methods."""
        found: dict[str, Handler] = {}
        for name in dir(self):
            if name.startswith("on_") and callable(getattr(self, name)):
                found[name[3:]] = getattr(self, name)
        return found


def is_async(handler: Handler) -> bool:
    """Whether calling ``handler`` returns an awaitable (``async def`` function or method)."""
    code = getattr(handler, "__code__", None)
    if code is not None and code.co_flags & inspect.CO_COROUTINE:
        return True  # the common case, checked on every event without inspect's unwrapping
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004  (objects with an async __call__)
    )
