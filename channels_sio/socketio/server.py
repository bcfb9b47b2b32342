"""The Socket.IO server: namespaces, handlers, and the hooks into its Engine.IO server."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import sys
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, overload

from asgiref.sync import sync_to_async

from ..engineio import CloseReason, EngineIOConfig, EngineIOServer, Session
from ..tasks import OwnedTasks
from .adapter import Adapter, LocalAdapter
from .broadcast import BroadcastOperator
from .bus import Bus, RemoteSocket
from .client import Client
from .eager import EagerStarter
from .handlers import Handler, HandlerT, NamespaceHandler, SyncRunner, is_async
from .namespace import Namespace
from .packet import validate_event_name
from .socket import Socket

__all__ = [
    "AdapterFactory",
    "NamespaceMatcher",
    "Recovery",
    "ServerConfig",
    "SocketHooks",
    "SocketIOServer",
    "SocketObserver",
]

logger = logging.getLogger("channels_sio.socketio")

#: What decides a dynamic namespace: a compiled regex, or ``(name, auth) -> bool`` (sync or
#: async).
NamespaceMatcher = re.Pattern[str] | Callable[[str, dict[str, Any]], Any]

#: Makes the adapter of a namespace: :class:`LocalAdapter`, or the cluster's.
AdapterFactory = Callable[[Namespace], Adapter]

_NamespaceHandlerT = TypeVar("_NamespaceHandlerT", bound=NamespaceHandler)


class Recovery(Protocol):
    """Connection state recovery as the server sees it (``channels_sio.recovery``)."""

    @property
    def skip_middlewares(self) -> bool:
        """Whether a recovered socket skips the middlewares (its connect handler still runs)."""

    def wrap(self, adapter: Adapter) -> Adapter:
        """The adapter that records packets and keeps sessions around ``adapter``."""

    async def close(self) -> None:
        """Write what is pending and release the store (the server is shutting down)."""


class SocketObserver:
    """Watches a Socket.IO server's sockets without taking part (monitoring).

    Subclass it and override what you need; register with ``server.observers.append``. The
    methods run inline, on the event loop: keep them quick, and never raise.
    """

    def socket_connected(self, socket: Socket) -> None:
        """``socket`` joined its namespace (after its CONNECT reply)."""

    def socket_disconnected(self, socket: Socket, reason: str) -> None:
        """``socket`` left its namespace for ``reason`` (after its disconnect handler)."""

    def connect_refused(self, client: Client, namespace: str, payload: dict[str, Any]) -> None:
        """A CONNECT to ``namespace`` was answered with CONNECT_ERROR ``payload``."""


class SocketHooks(Protocol):
    """What a server awaits as its sockets come and go, where observers are only told (the
    Django app sends its ``socket_connected`` / ``socket_disconnected`` signals from here).

    Each method returns what to await, or None when there is nothing to do, so that a server
    with nobody listening builds no coroutine per socket.
    """

    def connected(self, socket: Socket) -> Awaitable[None] | None:
        """``socket`` joined its namespace: awaited in its connect task, after the CONNECT
        reply (and what the connect handler emitted) went out."""

    def disconnected(self, socket: Socket, reason: str) -> Awaitable[None] | None:
        """``socket`` left its namespace for ``reason``: awaited after its disconnect handler
        and the observers."""


@dataclass(frozen=True)
class ServerConfig:
    """Options of a Socket.IO server. ``connect_timeout`` is in milliseconds; ``recovery`` is
    None when connection state recovery is off (the default, as in socket.io)."""

    engine: EngineIOConfig = field(default_factory=EngineIOConfig)
    connect_timeout: int = 45_000
    max_attachments: int = 10
    recovery: Recovery | None = None


def _default_runner(func: Callable[..., Any]) -> Callable[..., Any]:
    return sync_to_async(func, thread_sensitive=True)


class SocketIOServer:
    """A Socket.IO v5 server on top of its own :class:`EngineIOServer`.

    Handlers are registered at import time; the configuration is read when the first
    connection arrives (``config`` may be a zero-argument callable for that reason)::

        sio = SocketIOServer()

        @sio.on("chat", namespace="/chat")
        async def chat(socket, text):
            await socket.to("lobby").emit("chat", text)
            return "ok"  # the acknowledgement

    Plain ``def`` handlers run off the event loop through ``sync_runner`` (asgiref's
    ``sync_to_async`` by default; the Django app passes Channels' ``database_sync_to_async``).
    ``hooks`` are awaited as sockets connect and disconnect (:class:`SocketHooks`).
    """

    _running: weakref.WeakSet[SocketIOServer] = weakref.WeakSet()

    def __init__(
        self,
        config: ServerConfig | Callable[[], ServerConfig] | None = None,
        *,
        sync_runner: SyncRunner | None = None,
        hooks: SocketHooks | None = None,
    ) -> None:
        self._config_source = config or ServerConfig()
        self._config: ServerConfig | None = None
        self._engine: EngineIOServer | None = None
        self.sync_runner: SyncRunner = sync_runner or _default_runner
        self.clients: dict[str, Client] = {}
        self.namespaces: dict[str, Namespace] = {"/": Namespace(self, "/")}
        self._dynamic: list[tuple[NamespaceMatcher, Namespace]] = []
        self._tasks = OwnedTasks(logger, "Socket.IO task failed")
        self._eager = EagerStarter(self._tasks)
        #: Reaches the other server processes (set by this process's cluster node).
        self.bus: Bus | None = None
        self._adapter_factory: AdapterFactory = LocalAdapter
        #: Told of every socket connected and disconnected, and of refused CONNECTs.
        self.observers: list[SocketObserver] = []
        #: Awaited as sockets connect and disconnect (None: nothing is).
        self.hooks = hooks
        self.server_handlers: dict[str, Handler] = {}
        SocketIOServer._running.add(self)

    @classmethod
    def running(cls) -> list[SocketIOServer]:
        return list(cls._running)

    # -- configuration and engine ---------------------------------------------------------

    @property
    def config(self) -> ServerConfig:
        if self._config is None:
            source = self._config_source
            self._config = source if isinstance(source, ServerConfig) else source()
        return self._config

    @property
    def engine(self) -> EngineIOServer:
        """The Engine.IO server carrying this server's connections (created on first use)."""
        if self._engine is None:
            engine = EngineIOServer(self.config.engine)
            engine.on_connect(self._engine_connect)
            engine.on_disconnect(self._engine_disconnect)
            self._engine = engine
        return self._engine

    async def _engine_connect(self, session: Session) -> bool:
        client = Client(self, session)
        self.clients[session.sid] = client
        session.receiver = client.receive
        return True

    async def _engine_disconnect(self, session: Session, reason: CloseReason) -> None:
        client = self.clients.pop(session.sid, None)
        if client is not None:
            await client.engine_closed(reason)

    # -- owned tasks ----------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` as a task this server owns (cancelled by :meth:`shutdown`)."""
        self._tasks.spawn(coro)

    def start_handler(self, coro: Coroutine[Any, Any, Any], *, eager: bool = True) -> bool:
        """Run the handling of one packet (an event, a CONNECT, an acknowledgement callback)
        as socket.io runs its handlers: at once, up to its first wait, and the rest in a task
        this server owns; True when it has started before this returns. A handler that never
        waits has then finished, and sent its acknowledgement, without a trip through the
        event loop.

        On Python 3.12+ it is an eager task. Python 3.11 has none: :class:`.EagerStarter`
        does the same, unless ``eager`` is False (an earlier packet's task has not started
        yet) or it has no runner ready; the task then starts on the loop's next turn (its
        first step is the last callback in the loop's queue), and False is returned.
        """
        if sys.version_info >= (3, 12):
            task = asyncio.Task(coro, loop=asyncio.get_running_loop(), eager_start=True)
            if task.done():
                self._tasks.ended(task)
            else:
                self._tasks.own(task)
            return True
        if eager and self._eager.start(coro):
            return True
        self.spawn(coro)
        return False

    def call_handler(self, handler: Handler, *args: Any) -> Awaitable[Any]:
        """Call an application handler, ``async def`` or plain ``def`` (run off the loop).

        Returns what to await for its result: an ``async def`` handler's own coroutine, so
        that events pay for no coroutine of ours around it.
        """
        if is_async(handler):
            result: Awaitable[Any] = handler(*args)
            return result
        return self._call_sync(handler, args)

    async def _call_sync(self, handler: Handler, args: tuple[Any, ...]) -> Any:
        result = await self.sync_runner(handler)(*args)
        if inspect.isawaitable(result):
            return await result
        return result

    async def shutdown(self) -> None:
        """Close every connection (``server shutting down``), cancel owned tasks, and let
        connection state recovery write what it holds."""
        if self._engine is not None:
            await self._engine.shutdown()
        recovery = self._config.recovery if self._config is not None else None
        if recovery is not None:
            await recovery.close()
        await asyncio.gather(*self._tasks.cancel(), return_exceptions=True)

    # -- observers ------------------------------------------------------------------------

    def notify(self, event: str, *args: Any) -> None:
        """Call ``event`` (a :class:`SocketObserver` method name) on every observer."""
        for observer in self.observers:
            try:
                getattr(observer, event)(*args)
            except Exception:
                logger.exception("Socket.IO observer %r failed", observer)

    # -- adapters -------------------------------------------------------------------------

    def new_adapter(self, nsp: Namespace) -> Adapter:
        """The adapter of a namespace, wrapped for connection state recovery when it is on."""
        adapter = self._adapter_factory(nsp)
        recovery = self.config.recovery
        return adapter if recovery is None else recovery.wrap(adapter)

    @property
    def skips_middlewares(self) -> bool:
        recovery = self.config.recovery
        return recovery is not None and recovery.skip_middlewares

    def use_adapter(self, factory: AdapterFactory) -> None:
        """Make namespaces' adapters with ``factory`` from now on (the cluster node does, when
        it starts); the namespaces' current adapters, which must have no socket, are dropped."""
        self._adapter_factory = factory
        for nsp in self._all_namespaces():
            old = nsp.reset_adapter()
            if old is not None and old.sockets:
                raise RuntimeError(f"{nsp} has connected sockets: its adapter cannot change")

    def _all_namespaces(self) -> list[Namespace]:
        found = list(self.namespaces.values())
        for _, parent in self._dynamic:
            found.append(parent)
            found.extend(parent.children.values())
        return found

    # -- namespaces -----------------------------------------------------------------------

    def of(self, namespace: str | NamespaceMatcher) -> Namespace:
        """The namespace of that name, or the parent of a dynamic family (regex or callable)."""
        if isinstance(namespace, str):
            if not namespace.startswith("/"):
                raise ValueError(f"namespace names start with '/', not {namespace!r}")
            found = self.lookup(namespace)
            if found is not None:
                return found
            # As in socket.io, a name that a regex family matches becomes that family's child.
            for matcher, parent in self._dynamic:
                if isinstance(matcher, re.Pattern) and matcher.fullmatch(namespace):
                    return self._add_child(parent, namespace)
            nsp = self.namespaces[namespace] = Namespace(self, namespace)
            return nsp
        for matcher, parent in self._dynamic:
            if matcher is namespace:
                return parent
        parent = Namespace(self, repr(namespace))
        self._dynamic.append((namespace, parent))
        return parent

    def lookup(self, name: str) -> Namespace | None:
        """The existing namespace of that name (static, or a dynamic family's child), if any."""
        nsp = self.namespaces.get(name)
        if nsp is not None:
            return nsp
        for _, parent in self._dynamic:
            child = parent.children.get(name)
            if child is not None:
                return child
        return None

    def namespace_key(self, nsp: Namespace) -> str:
        """How other processes name ``nsp``: its name, or ``#<n>`` for the n-th dynamic family
        (families are registered at import time, in the same order in every process)."""
        for index, (_, parent) in enumerate(self._dynamic):
            if parent is nsp:
                return f"#{index}"
        return nsp.name

    def namespace_from_key(self, key: str) -> Namespace | None:
        """The namespace of a :meth:`namespace_key`, if this process has it."""
        if key.startswith("#"):
            index = int(key[1:])
            return self._dynamic[index][1] if index < len(self._dynamic) else None
        return self.lookup(key)

    def _add_child(self, parent: Namespace, name: str) -> Namespace:
        child = Namespace(self, name, parent.handlers, parent=parent)
        parent.children[name] = child
        return child

    async def resolve_namespace(self, name: str, auth: dict[str, Any]) -> Namespace | None:
        """The namespace a CONNECT names: existing, or a new child of a dynamic family."""
        found = self.lookup(name)
        if found is not None:
            return found
        for matcher, parent in self._dynamic:
            if isinstance(matcher, re.Pattern):
                allowed = matcher.fullmatch(name) is not None
            else:
                allowed = bool(await self.call_handler(matcher, name, auth))
            if allowed:
                return self._add_child(parent, name)
        return None

    async def run_connect(
        self, socket: Socket, auth: dict[str, Any], *, middlewares: bool = True
    ) -> bool:
        """Middlewares (unless ``middlewares`` is False), then the connect handler; False (or
        ConnectionRefusedError) refuses."""
        handlers = socket.nsp.handlers
        for middleware in handlers.middlewares if middlewares else ():
            if (
                await self.call_handler(middleware, *handlers.trim(middleware, (socket, auth)))
                is False
            ):
                return False
        if handlers.connect is not None:
            args = handlers.trim(handlers.connect, (socket, auth))
            if await self.call_handler(handlers.connect, *args) is False:
                return False
        return True

    # -- registration ---------------------------------------------------------------------

    @overload
    def on(
        self, event: str, handler: HandlerT, *, namespace: str | NamespaceMatcher = "/"
    ) -> HandlerT: ...

    @overload
    def on(
        self, event: str, handler: None = None, *, namespace: str | NamespaceMatcher = "/"
    ) -> Callable[[HandlerT], HandlerT]: ...

    def on(
        self,
        event: str,
        handler: HandlerT | None = None,
        *,
        namespace: str | NamespaceMatcher = "/",
    ) -> HandlerT | Callable[[HandlerT], HandlerT]:
        """Register a handler: ``@sio.on("chat")``, ``@sio.on("connect", namespace="/x")``.

        "connect" handlers take ``(socket, auth)``, "disconnect" ``(socket, reason)``, "*"
        ``(socket, event, *args)``, others ``(socket, *args)`` and return the acknowledgement.
        The handler is returned as it was, so type checkers keep its signature.
        """
        return self.of(namespace).on(event, handler)

    def event(self, handler: HandlerT) -> HandlerT:
        """``@sio.event`` registers a handler under its function name on ``/``."""
        return self.on(handler.__name__, handler)

    def use(self, middleware: HandlerT, *, namespace: str | NamespaceMatcher = "/") -> HandlerT:
        """Add a connection middleware ``(socket, auth)`` to a namespace."""
        return self.of(namespace).use(middleware)

    def register(self, handler: _NamespaceHandlerT) -> _NamespaceHandlerT:
        """Register a class-based :class:`NamespaceHandler` instance."""
        nsp = self.of(handler.namespace)
        handler.nsp = nsp
        for event, method in handler.handlers().items():
            nsp.on(event, method)
        return handler

    # -- events between servers ----------------------------------------------------------

    @overload
    def on_server_event(self, event: str, handler: HandlerT) -> HandlerT: ...

    @overload
    def on_server_event(
        self, event: str, handler: None = None
    ) -> Callable[[HandlerT], HandlerT]: ...

    def on_server_event(
        self, event: str, handler: HandlerT | None = None
    ) -> HandlerT | Callable[[HandlerT], HandlerT]:
        """Register a handler for :meth:`server_side_emit` events from other processes.

        It is called with the event's arguments; its return value answers
        :meth:`server_side_emit_with_ack`. Like :meth:`on`, it returns the handler as it was.
        """
        if handler is not None:
            self.server_handlers[event] = handler
            return handler

        def decorator(func: HandlerT) -> HandlerT:
            self.server_handlers[event] = func
            return func

        return decorator

    async def server_side_emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to every OTHER server process (not to clients, not to this one)."""
        validate_event_name(event)
        if self.bus is not None:
            await self.bus.server_side_emit(event, list(args), None)

    async def server_side_emit_with_ack(
        self, event: str, *args: Any, timeout: float = 5.0
    ) -> list[Any]:
        """Like :meth:`server_side_emit`; returns each other process's handler result.

        Raises :class:`AckTimeoutError` (with the answers that came) when a process does not
        answer within ``timeout`` seconds.
        """
        validate_event_name(event)
        if self.bus is None:
            return []
        return await self.bus.server_side_emit(event, list(args), timeout)

    async def handle_server_event(self, event: str, args: list[Any]) -> Any:
        """Run this process's handler for a server-side event (None when there is none)."""
        handler = self.server_handlers.get(event)
        if handler is None:
            return None
        return await self.call_handler(handler, *args)

    # -- broadcasting on the main namespace -----------------------------------------------

    def to(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        return self.of("/").to(*rooms)

    in_ = to

    def except_(self, *rooms: str | Iterable[str]) -> BroadcastOperator:
        return self.of("/").except_(*rooms)

    @property
    def volatile(self) -> BroadcastOperator:
        return self.of("/").volatile

    @property
    def local(self) -> BroadcastOperator:
        return self.of("/").local

    def timeout(self, ms: int) -> BroadcastOperator:
        return self.of("/").timeout(ms)

    async def emit(self, event: str, *args: Any, namespace: str = "/") -> None:
        """Send ``event`` to every socket of ``namespace``."""
        await self.of(namespace).emit(event, *args)

    async def fetch_sockets(self) -> list[Socket | RemoteSocket]:
        return await self.of("/").fetch_sockets()

    async def sockets_join(self, *rooms: str | Iterable[str]) -> None:
        await self.of("/").sockets_join(*rooms)

    async def sockets_leave(self, *rooms: str | Iterable[str]) -> None:
        await self.of("/").sockets_leave(*rooms)

    async def disconnect_sockets(self, close: bool = False) -> None:
        await self.of("/").disconnect_sockets(close)
