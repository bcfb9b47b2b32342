"""The protocol reference configuration with same-origin CORS and a short upgrade timeout.

Served by the ``strict_server`` fixture, for what settings_protocol cannot show: Forbidden
(code 4) for a foreign origin, and an upgrade that times out. Heartbeats are slow enough that
a test waiting for the upgrade timeout has no ping to answer, and that a session cannot time
out while a test stops the server.
"""

from example_project.settings_protocol import *  # noqa: F403
from example_project.settings_protocol import CHANNELS_SIO

CHANNELS_SIO = {
    **CHANNELS_SIO,
    "ping_interval": 2_000,
    "ping_timeout": 1_500,
    "upgrade_timeout": 300,
    "cors_allowed_origins": None,
}
