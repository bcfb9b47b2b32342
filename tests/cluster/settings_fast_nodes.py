"""Short node heartbeat and timeout, so a killed node is declared lost within 1.5 s."""

from .settings_cluster import *  # noqa: F403
from .settings_cluster import CHANNELS_SIO

CHANNELS_SIO = {
    **CHANNELS_SIO,
    "node_heartbeat": 500,
    "node_timeout": 1500,
    "request_timeout": 1000,
}
