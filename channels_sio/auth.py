"""The default connection middleware: Django's cookies, session and user on the handshake scope."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from channels.auth import get_user
from django.conf import settings
from django.http.cookie import parse_cookie

__all__ = ["SessionAuthMiddleware"]


class SessionAuthMiddleware:
    """Put ``cookies``, ``session`` and ``user`` on the scope, as Channels'
    ``AuthMiddlewareStack`` does, at less cost per connection.

    - A request without a session cookie gets an empty session and ``AnonymousUser`` on the
      event loop: there is nothing to look up. One with a cookie loads the session and the user
      in one thread-pool call (``channels.auth.get_user``).
    - ``send`` is passed through unwrapped. Channels' session middleware wraps it to save a
      modified session with an HTTP response; a Socket.IO handler's session changes are saved
      by the handler (``socket.session.save()``), as over a Channels WebSocket.
    - The scope is copied once, not once per middleware layer, and the copy lives as long as
      the connection.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Imported here: the auth models need the app registry, which may not be ready when
        # the routing module imports this one.
        from django.contrib.auth.models import AnonymousUser

        cookies: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            if name == b"cookie":
                cookies = parse_cookie(value.decode("latin-1"))
                break
        session_key = cookies.get(settings.SESSION_COOKIE_NAME)
        store = import_module(settings.SESSION_ENGINE).SessionStore
        scope = {**scope, "cookies": cookies, "session": store(session_key)}
        scope["user"] = await get_user(scope) if session_key else AnonymousUser()
        await self.inner(scope, receive, send)
