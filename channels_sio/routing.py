"""Routing each connection to its Engine.IO endpoint, or to the Django application."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["EndpointRouter"]

ASGIApp = Any


def endpoint_key(path: str) -> str:
    """The routing key of a URL path: no leading slashes, at most one trailing slash dropped.

    ``/socket.io/`` and ``/socket.io`` are one endpoint, as with Channels' ``URLRouter`` and
    the pattern ``^socket\\.io/?$``; ``/socket.io//`` is another path.
    """
    key = path.lstrip("/")
    return key[:-1] if key.endswith("/") else key


class EndpointRouter:
    """The project's ASGI application, as ``get_application`` builds it.

    Engine.IO endpoints are found with one dictionary lookup on the path, not by trying
    regular expressions in turn as Channels' ``ProtocolTypeRouter`` and ``URLRouter`` do (a
    polling session makes two HTTP requests per message, and those routers cost about a fifth
    of each). Like ``URLRouter``, the path is taken relative to the scope's ``root_path``.
    Other HTTP requests go to ``django``, other WebSockets to ``websocket_fallback`` (the
    project's own WebSocket application), or are refused as ``URLRouter`` refuses them, with
    ``ValueError``, when there is none; ``lifespan`` events go to ``lifespan``.
    """

    def __init__(
        self,
        *,
        http: Mapping[str, ASGIApp],
        websocket: Mapping[str, ASGIApp],
        django: ASGIApp,
        lifespan: ASGIApp,
        websocket_fallback: ASGIApp | None = None,
    ) -> None:
        self.http = {endpoint_key(path): app for path, app in http.items()}
        self.websocket = {endpoint_key(path): app for path, app in websocket.items()}
        self.django = django
        self.lifespan = lifespan
        self.websocket_fallback = websocket_fallback

    def _endpoint(self, scope: dict[str, Any], endpoints: dict[str, ASGIApp]) -> ASGIApp | None:
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path:
            if not path.startswith(root_path):
                return None
            path = path[len(root_path) :]
        return endpoints.get(endpoint_key(path))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            app = self._endpoint(scope, self.http) or self.django
        elif kind == "websocket":
            app = self._endpoint(scope, self.websocket) or self.websocket_fallback
            if app is None:
                raise ValueError(f"No route found for path {scope['path']!r}.")
        elif kind == "lifespan":
            app = self.lifespan
        else:
            raise ValueError(f"No application configured for scope type {kind!r}")
        await app(scope, receive, send)
