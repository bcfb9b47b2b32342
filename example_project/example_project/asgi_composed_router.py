"""ASGI entry point of settings_composed with the router built by hand: the Socket.IO routes
mounted in the project's ``ProtocolTypeRouter`` beside its own consumers."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings_composed")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import re_path  # noqa: E402

from channels_sio.asgi import http_route, lifespan, socketio_engine, websocket_route  # noqa: E402

from .composed import http_urlpatterns, websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": URLRouter(
            [
                http_route("socket.io/", socketio_engine),
                *http_urlpatterns,
                re_path(r"", django_asgi_app),
            ]
        ),
        "websocket": URLRouter(
            [
                # Outside the origin validator: the endpoint checks Origin itself.
                websocket_route("socket.io/", socketio_engine),
                re_path(
                    r"",
                    AllowedHostsOriginValidator(
                        AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
                    ),
                ),
            ]
        ),
        "lifespan": lifespan,
    }
)
