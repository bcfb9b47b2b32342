"""A project that had Channels consumers of its own before it added Socket.IO.

Two ASGI modules serve it, the two ways of composing: ``asgi_composed`` hands the project's
existing ``ProtocolTypeRouter`` to ``get_application``; ``asgi_composed_router`` mounts the
Socket.IO routes in that router by hand. The project's consumers are in ``composed``, the
Socket.IO handlers (the README's, with a token login) in ``composed_sockets``.
"""

from .settings import *  # noqa: F403
from .settings import LOGGING

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "chat"]  # noqa: F405

ASGI_APPLICATION = "example_project.asgi_composed.application"

CHANNELS_SIO: dict[str, object] = {
    "handlers": ["example_project.composed_sockets"],
    # uvicorn waits for a pending long-poll before its lifespan shutdown, and the next ping
    # answers it: a short interval keeps the shutdown tests short.
    "ping_interval": 2_000,
    "ping_timeout": 1_500,
}

# Exposes /_protocol/state/ (live sessions), which the tests use to see the server idle.
PROTOCOL_STATE_VIEW = True

LOGGING = {
    **LOGGING,
    "loggers": {
        **LOGGING["loggers"],
        "example_project.composed_sockets": {
            "handlers": ["console"],
            "level": "INFO",
            "propagate": False,
        },
    },
}
