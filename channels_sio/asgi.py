"""Building the ASGI application: routes for Engine.IO endpoints, and the lifespan handler."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import URLPattern, re_path

from .engineio import EngineIOServer
from .transports import EngineSource, PollingConsumer, WebSocketConsumer

__all__ = ["get_application", "http_route", "lifespan", "websocket_route"]

logger = logging.getLogger("channels_sio")


def _pattern(path: str) -> str:
    # Channels' URLRouter strips the leading "/"; clients send the path with a trailing "/".
    return rf"^{re.escape(path.strip('/'))}/?$"


def http_route(path: str, engine: EngineSource, middleware: Any = None) -> URLPattern:
    """A URLRouter entry serving Engine.IO long-polling at ``path``."""
    app = PollingConsumer.as_asgi(engine=engine)
    route: URLPattern = re_path(_pattern(path), middleware(app) if middleware else app)
    return route


def websocket_route(path: str, engine: EngineSource, middleware: Any = None) -> URLPattern:
    """A URLRouter entry serving Engine.IO WebSockets at ``path``."""
    app = WebSocketConsumer.as_asgi(engine=engine)
    route: URLPattern = re_path(_pattern(path), middleware(app) if middleware else app)
    return route


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI lifespan: on shutdown, close every session with ``server shutting down``."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for engine in EngineIOServer.running():
                await engine.shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


def get_application(
    django_app: Any,
    *,
    engines: Mapping[str, EngineSource],
    middleware: Any = AuthMiddlewareStack,
) -> ProtocolTypeRouter:
    """The project's ASGI application: Engine.IO endpoints in front of Django.

    ``engines`` maps URL paths to servers (or zero-argument callables returning them). Plain
    HTTP requests to other paths go to ``django_app``. Engine.IO requests of both transports
    pass through ``middleware`` (Channels' ``AuthMiddlewareStack`` by default, so handlers see
    the Django user and session); ``None`` for none.
    """
    http = [http_route(path, engine, middleware) for path, engine in engines.items()]
    websocket = [websocket_route(path, engine, middleware) for path, engine in engines.items()]
    return ProtocolTypeRouter(
        {
            "http": URLRouter([*http, re_path(r"", django_app)]),
            "websocket": URLRouter(websocket),
            "lifespan": lifespan,
        }
    )
