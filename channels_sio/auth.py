"""Django users for connections: the default connection middleware (cookies, session and user on
the handshake scope), and the user of a session key sent as a token."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from channels.auth import get_user
from django.conf import settings
from django.http.cookie import parse_cookie

__all__ = ["SessionAuthMiddleware", "session_user"]


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
    - A scope that already has a ``user`` (an outer ``AuthMiddlewareStack``, in a router built
      by hand) is passed on as it is: the user is not looked up twice.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Imported here: the auth models need the app registry, which may not be ready when
        # the routing module imports this one.
        from django.contrib.auth.models import AnonymousUser

        if "user" in scope:
            await self.inner(scope, receive, send)
            return
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


async def session_user(session_key: Any) -> Any:
    """The Django user logged in to the session ``session_key``, for a client that sends the
    key as a token (in its auth payload) rather than as a cookie: a script, a test, a mobile app.

    ``AnonymousUser`` when ``session_key`` is not a string, or names no session, an expired one,
    or one whose user changed password since (the checks of the session cookie).
    """
    from django.contrib.auth.models import AnonymousUser

    if not isinstance(session_key, str) or not session_key:
        return AnonymousUser()
    store = import_module(settings.SESSION_ENGINE).SessionStore
    return await get_user({"session": store(session_key)})
