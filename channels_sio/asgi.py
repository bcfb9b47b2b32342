"""Building the ASGI application: routes for Engine.IO endpoints in front of Django.

``shutdown`` and ``lifespan`` come from ``channels_sio.shutdown`` and are re-exported here: the
routing uses ``lifespan``, and projects import both from this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import URLPattern, re_path

from . import conf
from .auth import SessionAuthMiddleware
from .cluster import get_node
from .engineio import EngineIOServer
from .shutdown import lifespan, shutdown, shutdown_with_reactor
from .socketio import SocketIOServer
from .transports import EngineSource, PollingConsumer, WebSocketConsumer

__all__ = [
    "get_application",
    "http_route",
    "lifespan",
    "shutdown",
    "socketio_engine",
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
    shutdown_with_reactor()
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
