"""The protocol reference configuration with a handshake rate limit: 5 new sessions per
client address, refilled over 5 s (one a second)."""

from example_project.settings_protocol import *  # noqa: F403
from example_project.settings_protocol import CHANNELS_SIO

CHANNELS_SIO = {
    **CHANNELS_SIO,
    "ping_interval": 2_000,
    "ping_timeout": 1_500,
    "handshake_rate_limit": {"handshakes": 5, "window": 5_000},
}
