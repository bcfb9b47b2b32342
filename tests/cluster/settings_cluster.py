"""The cluster suite's base settings: the protocol reference configuration on channels-redis.

Every server process of one test cluster shares ``REDIS_URL`` and ``CSIO_LAYER_PREFIX`` (set by
tests/cluster/conftest.py): processes with the same prefix form one Socket.IO server, and
clusters of different tests never see each other.
"""

import os

from example_project.settings_protocol import *  # noqa: F403
from example_project.settings_protocol import CHANNELS_SIO

REDIS_URL = os.environ["REDIS_URL"]

LAYER_CONFIG = {
    # redis-py 8: a socket timeout above channels-redis's 5 s blocking receive, and room for
    # more than 100 connections (checks channels_sio.W001 / W002).
    "hosts": [{"address": REDIS_URL, "socket_timeout": 10, "max_connections": 1000}],
    "prefix": os.environ.get("CSIO_LAYER_PREFIX", "asgi"),
}

CHANNEL_LAYERS = {
    "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": LAYER_CONFIG}
}

CHANNELS_SIO = {
    **CHANNELS_SIO,
    # Heartbeats slow enough for a thousand clients on two cores.
    "ping_interval": 10_000,
    "ping_timeout": 5_000,
    "connect_timeout": 5_000,
    "handlers": ["tests.cluster.cluster_sockets"],
}

ROOT_URLCONF = "tests.cluster.cluster_urls"
