"""Building the ASGI application: routes for Engine.IO endpoints, and the lifespan handler."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import Mapping
from functools import cache
from typing import Any

from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import URLPattern, re_path

from . import conf
from .auth import SessionAuthMiddleware
from .cluster import get_node
from .engineio import EngineIOServer
from .socketio import SocketIOServer
from .transports import EngineSource, PollingConsumer, WebSocketConsumer, consumer_tasks

__all__ = [
    "get_application",
    "http_route",
    "lifespan",
    "shutdown",
    "socketio_engine",
    "websocket_route",
]

logger = logging.getLogger("channels_sio")

# How long a shutdown under daphne waits for the consumers to finish before cancelling them.
_DRAIN_TIMEOUT = 1.0


def _pattern(path: str) -> str:
    # Channels' URLRouter strips the leading "/"; clients send the path with a trailing "/".
    return rf"^{re.escape(path.strip('/'))}/?$"


# An Engine.IO request that names its session: every poll and POST after the handshake, and
# the WebSocket that upgrades a polling session.
_NAMES_SESSION = re.compile(rb"(?:^|&)sid=")


def _handshake_only(app: Any, middleware: Any) -> Any:
    """``app`` behind ``middleware`` for the request that opens a session, bare for the rest.

    Handlers only ever see the scope of the request that opened the session
    (``Session.context``), so running the middleware again for each poll would only repeat
    its work: with ``AuthMiddlewareStack``, two thread-pool round trips per request.
    """
    if middleware is None:
        return app
    wrapped = middleware(app)

    async def route(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if _NAMES_SESSION.search(scope.get("query_string", b"")):
            await app(scope, receive, send)
        else:
            await wrapped(scope, receive, send)

    return route


def http_route(path: str, engine: EngineSource, middleware: Any = None) -> URLPattern:
    """A URLRouter entry serving Engine.IO long-polling at ``path``.

    ``middleware`` wraps the handshake request only; see ``get_application``.
    """
    app = _handshake_only(PollingConsumer.as_asgi(engine=engine), middleware)
    route: URLPattern = re_path(_pattern(path), app)
    return route


def websocket_route(path: str, engine: EngineSource, middleware: Any = None) -> URLPattern:
    """A URLRouter entry serving Engine.IO WebSockets at ``path``.

    ``middleware`` wraps the handshake only, not the WebSocket that upgrades a polling session.
    """
    app = _handshake_only(WebSocketConsumer.as_asgi(engine=engine), middleware)
    route: URLPattern = re_path(_pattern(path), app)
    return route


async def shutdown() -> None:
    """Close every session of this process with ``server shutting down``; stop the node."""
    for server in SocketIOServer.running():
        await server.shutdown()
    for engine in EngineIOServer.running():
        await engine.shutdown()
    # The node goes last: broadcasts from disconnect handlers still reach the other processes,
    # and polls that other nodes forwarded here get their answer (the close packet) rather
    # than waiting out the forwarding limit.
    await get_node().stop()


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI lifespan: on shutdown, close every session with ``server shutting down``."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _shutdown_and_drain() -> None:
    await shutdown()
    # Let the consumers finish while the reactor still runs, so close frames and the answers
    # to pending polls go out; then cancel the rest, as daphne's own trigger would have.
    tasks = set(consumer_tasks)
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=_DRAIN_TIMEOUT)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


@cache
def _shutdown_with_reactor() -> None:
    """Under daphne, which runs no ASGI lifespan, call ``shutdown`` when its reactor stops.

    daphne's own shutdown only cancels the consumers, which reaches no polling session between
    two requests, and it fails outright (KeyError in ``Server.kill_all_applications``, daphne
    4.2) while any connection has no application instance, as every connection has for about
    a second after its request or its WebSocket handshake: the consumers are then left
    suspended, and CPython 3.11 can crash finalizing them at exit. A Twisted trigger of our
    own does not depend on it, and runs before it (daphne adds its trigger when it starts).
    """
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None:
        return  # Twisted was never imported: not under daphne.
    from twisted.internet.defer import Deferred

    def close_sessions() -> Deferred[None]:
        return Deferred.fromFuture(asyncio.ensure_future(_shutdown_and_drain()))

    reactor.addSystemEventTrigger("before", "shutdown", close_sessions)


def socketio_engine() -> EngineIOServer:
    """The Engine.IO server of ``channels_sio.server.sio``; starts this process's node."""
    node = get_node()
    node.ensure_started()
    return node.server.engine


def get_application(
    django_app: Any,
    *,
    engines: Mapping[str, EngineSource] | None = None,
    middleware: Any = SessionAuthMiddleware,
    server: SocketIOServer | None = None,
) -> ProtocolTypeRouter:
    """The project's ASGI application: Socket.IO and Engine.IO endpoints in front of Django.

    The project's Socket.IO server (``channels_sio.sio``) is served at ``CHANNELS_SIO["path"]``.
    ``engines`` adds raw Engine.IO servers: URL path -> server, or a zero-argument callable
    returning the same server each time (so settings are read on first use). ``server``
    replaces the project's Socket.IO server (tests use that for isolated servers). Plain
    HTTP requests to other paths go to ``django_app``. The request that opens an Engine.IO
    session, on either transport, passes through ``middleware``
    (:class:`~channels_sio.auth.SessionAuthMiddleware` by default, so handlers see the Django
    user and session, as with Channels' ``AuthMiddlewareStack``, which works too); ``None``
    for none. Later requests of the session (polls, posts, the upgrade) skip it: handlers see
    the opening request's scope.
    """
    _shutdown_with_reactor()
    sio_engine: EngineSource = socketio_engine if server is None else (lambda: server.engine)
    routes: dict[str, EngineSource] = {conf.get("path"): sio_engine, **(engines or {})}
    http = [http_route(path, engine, middleware) for path, engine in routes.items()]
    websocket = [websocket_route(path, engine, middleware) for path, engine in routes.items()]
    return ProtocolTypeRouter(
        {
            "http": URLRouter([*http, re_path(r"", django_app)]),
            "websocket": URLRouter(websocket),
            "lifespan": lifespan,
        }
    )
