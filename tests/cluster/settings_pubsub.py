"""The cluster on channels-redis's RedisPubSubChannelLayer instead of RedisChannelLayer."""

from .settings_cluster import *  # noqa: F403
from .settings_cluster import LAYER_CONFIG

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": LAYER_CONFIG,
    }
}
