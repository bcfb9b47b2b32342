"""The reference test configuration of the Engine.IO / Socket.IO protocol documentation.

A raw Engine.IO echo server at /engine.io/ (every message sent back as is), short heartbeats,
and any origin allowed.
"""

from .settings import *  # noqa: F403
from .settings import LOGGING

# The chat demo's "/chat" namespace stays out: this configuration refuses every namespace but
# "/" and "/custom".
INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "chat"]  # noqa: F405

CHANNELS_SIO = {
    "path": "/socket.io/",
    "ping_interval": 300,
    "ping_timeout": 200,
    "max_payload": 1_000_000,
    "connect_timeout": 1000,
    "cors_allowed_origins": "*",
    "handlers": ["example_project.protocol_sockets"],
}

ENGINEIO_ENDPOINTS = {"/engine.io/": "example_project.protocol.engineio_echo"}

# Exposes /_protocol/state/ (live sessions, close reasons) for the protocol test suite.
PROTOCOL_STATE_VIEW = True

# "engineio closed <sid>: <reason>" lines, read by the shutdown tests once the process is gone.
LOGGING = {
    **LOGGING,
    "loggers": {
        **LOGGING["loggers"],
        "example_project.protocol": {
            "handlers": ["console"],
            "level": "INFO",
            "propagate": False,
        },
    },
}
