"""Application handlers of a namespace: events, connect/disconnect, catch-all, middlewares."""

from __future__ import annotations

import contextvars
import dis
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .namespace import Namespace

__all__ = [
    "Handler",
    "HandlerT",
    "Handlers",
    "NamespaceHandler",
    "SyncRunner",
    "cannot_wait",
    "is_async",
    "run_at_once",
]

Handler = Callable[..., Any]
#: A handler's own type, which registering keeps: a decorated function is still itself to a
#: type checker.
HandlerT = TypeVar("HandlerT", bound=Handler)
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
        self._at_once: set[Handler] = set()

    def register(self, event: str, handler: Handler) -> None:
        if not callable(handler):
            raise TypeError(f"handler for {event!r} must be callable, not {handler!r}")
        self._arity[handler] = _positional_count(handler)
        if cannot_wait(handler):
            self._at_once.add(handler)
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

    def runs_at_once(self, handler: Handler) -> bool:
        """Whether ``handler`` (registered here) cannot wait, so :func:`run_at_once` may run it."""
        return handler in self._at_once

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


def cannot_wait(handler: Handler) -> bool:
    """Whether ``handler`` is an ``async def`` that can never suspend: no ``await``,
    ``async for`` or ``async with`` in its body (each of those compiles to a YIELD_VALUE)."""
    code = getattr(handler, "__code__", None)  # functions, and methods through their function
    if code is None or not code.co_flags & inspect.CO_COROUTINE:
        return False
    return all(instruction.opname != "YIELD_VALUE" for instruction in dis.get_instructions(code))


_copy_context = contextvars.copy_context


def run_at_once(handler: Handler, *args: Any) -> Any:
    """Run a handler that :func:`cannot_wait` to its end, here, and return its result.

    It runs in a copy of the current context, as a task would, so context variables it sets
    do not leak into the caller's. Its exceptions propagate.
    """
    coro = handler(*args)
    try:
        _copy_context().run(coro.send, None)
    except StopIteration as finished:
        return finished.value
    coro.close()
    raise RuntimeError(f"{handler!r} suspended, which cannot_wait() ruled out")
