"""At most 8 packets waiting per session, and 8 frames per relayed WebSocket in the process
that relays it: a client that stops reading is closed after a few large events."""

from .settings_cluster import *  # noqa: F403
from .settings_cluster import CHANNELS_SIO

CHANNELS_SIO = {**CHANNELS_SIO, "max_queued_packets": 8}
