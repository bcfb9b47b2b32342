"""Polling forwarded between nodes (the default), with fast Engine.IO heartbeats: a few
seconds of chat through the round-robin proxy cross several of them."""

from .settings_cluster import *  # noqa: F403
from .settings_cluster import CHANNELS_SIO

CHANNELS_SIO = {**CHANNELS_SIO, "ping_interval": 300, "ping_timeout": 200, "forward_polling": True}
