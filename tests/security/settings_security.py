"""The protocol reference configuration with the package's default origin rule (same origin,
by ``ALLOWED_HOSTS``), connection state recovery in memory, and the handlers of
security_sockets.

``CSIO_ALLOWED_ORIGIN``, when set, is the one origin ``cors_allowed_origins`` allows (the
browser test's second site).
"""

import os

from example_project.settings_protocol import *  # noqa: F403
from example_project.settings_protocol import CHANNELS_SIO

_allowed = os.environ.get("CSIO_ALLOWED_ORIGIN")

CHANNELS_SIO = {
    **CHANNELS_SIO,
    # Heartbeats slow enough for a browser page and a test that waits on purpose.
    "ping_interval": 2_000,
    "ping_timeout": 1_500,
    "cors_allowed_origins": [_allowed] if _allowed else None,
    "connection_state_recovery": {"store": "memory"},
    "handlers": ["example_project.protocol_sockets", "tests.security.security_sockets"],
}
