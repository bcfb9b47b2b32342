"""A 2 s channels-redis group_expiry: only the node heartbeat (every 500 ms) re-joining the
nodes' group keeps a node in it. node_timeout is long, so a node that goes away is dropped at
once only because it said BYE."""

from .settings_cluster import *  # noqa: F403
from .settings_cluster import CHANNELS_SIO, LAYER_CONFIG

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {**LAYER_CONFIG, "group_expiry": 2},
    }
}

CHANNELS_SIO = {**CHANNELS_SIO, "node_heartbeat": 500, "node_timeout": 30_000}
