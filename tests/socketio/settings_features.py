"""The protocol reference configuration plus the Socket.IO feature handlers of this suite.

``example_project.protocol_sockets`` stays: ``/`` and ``/custom`` keep their reference
behaviour, and :mod:`tests.socketio.feature_sockets` adds its own namespaces and events.
"""

from example_project.settings_protocol import *  # noqa: F403
from example_project.settings_protocol import CHANNELS_SIO

CHANNELS_SIO = {
    **CHANNELS_SIO,
    "handlers": ["example_project.protocol_sockets", "tests.socketio.feature_sockets"],
}

# The example project's URLs plus the emit views of tests/socketio/feature_urls.py.
ROOT_URLCONF = "tests.socketio.feature_urls"
