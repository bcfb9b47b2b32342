"""Building the ASGI application: Engine.IO endpoints in front of Django.

``shutdown`` and ``lifespan`` come from ``channels_sio.lifecycle`` and are re-exported here: the
routing uses ``lifespan``, and projects import both from this module.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from channels.routing import ProtocolTypeRouter
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern, re_path

from . import conf
from .auth import SessionAuthMiddleware
from .cluster import get_node
from .engineio import EngineIOServer
from .lifecycle import follow_reactor, lifespan, shutdown
from .routing import EndpointRouter
from .socketio import SocketIOServer
from .transports import EngineSource, PollingConsumer, WebSocketConsumer

__all__ = [
    "get_application",
    "http_app",
    "http_route",
    "lifespan",
    "shutdown",
    "socketio_engine",
    "websocket_app",
    "websocket_route",
]


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


def http_app(engine: EngineSource, middleware: Any = SessionAuthMiddleware) -> Any:
    """The ASGI application of an Engine.IO long-polling endpoint.

    ``middleware`` wraps the handshake request only; see ``get_application``. Building one
    also installs the shutdown hooks of daphne (``lifecycle.follow_reactor``), as
    ``get_application`` does.
    """
    follow_reactor()
    return _handshake_only(PollingConsumer.as_asgi(engine=engine), middleware)


def websocket_app(engine: EngineSource, middleware: Any = SessionAuthMiddleware) -> Any:
    """The ASGI application of an Engine.IO WebSocket endpoint.

    ``middleware`` wraps the handshake only, not the WebSocket that upgrades a polling session.
    Building one installs daphne's shutdown hooks, as ``http_app`` does.
    """
    follow_reactor()
    return _handshake_only(WebSocketConsumer.as_asgi(engine=engine), middleware)


def http_route(
    path: str, engine: EngineSource, middleware: Any = SessionAuthMiddleware
) -> URLPattern:
    """A Channels ``URLRouter`` entry serving Engine.IO long-polling at ``path``.

    ``middleware`` (``SessionAuthMiddleware`` by default, ``None`` for none) wraps the
    handshake; it steps aside when an outer ``AuthMiddlewareStack`` already set the user.
    """
    route: URLPattern = re_path(_pattern(path), http_app(engine, middleware))
    return route


def websocket_route(
    path: str, engine: EngineSource, middleware: Any = SessionAuthMiddleware
) -> URLPattern:
    """A Channels ``URLRouter`` entry serving Engine.IO WebSockets at ``path``.

    The endpoint checks the ``Origin`` header itself, as for polling: keep it outside Channels'
    ``AllowedHostsOriginValidator``, which refuses every client that sends no ``Origin``.
    """
    route: URLPattern = re_path(_pattern(path), websocket_app(engine, middleware))
    return route


def socketio_engine() -> EngineIOServer:
    """The Engine.IO server of ``channels_sio.server.sio``; starts this process's node.

    An engine source: pass the function itself to ``http_route`` and the others, which call
    it for each connection.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        # Called at import time, in asgi.py: the node cannot start without the server's loop.
        raise ImproperlyConfigured(
            "channels_sio.asgi.socketio_engine was called outside the ASGI server: pass the "
            "function, not its result, e.g. http_route('socket.io/', socketio_engine)."
        ) from None
    node = get_node()
    node.ensure_started()
    return node.server.engine


def get_application(
    django_app: Any,
    *,
    websocket: Any = None,
    engines: Mapping[str, EngineSource] | None = None,
    middleware: Any = SessionAuthMiddleware,
    server: SocketIOServer | None = None,
) -> EndpointRouter:
    """The project's ASGI application: Socket.IO and Engine.IO endpoints in front of Django.

    The project's Socket.IO server (``channels_sio.sio``) is served at ``CHANNELS_SIO["path"]``.
    ``engines`` adds raw Engine.IO servers: URL path -> server, or a zero-argument callable
    returning the same server each time (so settings are read on first use). ``server``
    replaces the project's Socket.IO server (tests use that for isolated servers). Plain
    HTTP requests to other paths go to ``django_app``: Django's ASGI application, or the
    project's own Channels router. WebSockets to other paths go to ``websocket``, the project's
    own WebSocket application (say ``AuthMiddlewareStack(URLRouter(...))``); without it, to
    the ``"websocket"`` application of ``django_app`` when that is a ``ProtocolTypeRouter``,
    and are refused otherwise. The request that opens an Engine.IO
    session, on either transport, passes through ``middleware``
    (:class:`~channels_sio.auth.SessionAuthMiddleware` by default, so handlers see the Django
    user and session, as with Channels' ``AuthMiddlewareStack``, which works too); ``None``
    for none. Later requests of the session (polls, posts, the upgrade) skip it: handlers see
    the opening request's scope.
    """
    follow_reactor()
    if websocket is None and isinstance(django_app, ProtocolTypeRouter):
        websocket = django_app.application_mapping.get("websocket")
    sio_engine: EngineSource = socketio_engine if server is None else (lambda: server.engine)
    routes: dict[str, EngineSource] = {conf.get("path"): sio_engine, **(engines or {})}
    return EndpointRouter(
        http={path: http_app(engine, middleware) for path, engine in routes.items()},
        websocket={path: websocket_app(engine, middleware) for path, engine in routes.items()},
        django=django_app,
        lifespan=lifespan,
        websocket_fallback=websocket,
    )
