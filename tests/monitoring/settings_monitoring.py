"""The end-to-end monitoring scenarios' configuration: the protocol reference configuration
with heartbeats a loaded CI machine keeps, a small send queue bound, and monitoring every
200 ms with graces of a second or two, so that each leak shows within seconds.

``EXAMPLE_DB`` (a SQLite file, migrated first) or ``DATABASE_URL`` (PostgreSQL) is the
database; with ``REDIS_URL`` (and ``CSIO_LAYER_PREFIX``, one per cluster), several processes
form one server.
"""

import os

from example_project.settings_protocol import *  # noqa: F403
from example_project.settings_protocol import CHANNELS_SIO, LOGGING

if os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": os.environ["REDIS_URL"],
                        "socket_timeout": 10,
                        "max_connections": 1000,
                    }
                ],
                "prefix": os.environ.get("CSIO_LAYER_PREFIX", "asgi"),
            },
        }
    }

CHANNELS_SIO = {
    **CHANNELS_SIO,
    "ping_interval": 1000,
    "ping_timeout": 800,
    "connect_timeout": 1000,
    "upgrade_timeout": 1000,
    # A client that stops reading is closed once 20 packets wait for it.
    "max_queued_packets": 20,
    # A killed node is lost to its peers within 1.5 s.
    "node_heartbeat": 500,
    "node_timeout": 1500,
    "request_timeout": 1000,
    "handlers": [*CHANNELS_SIO["handlers"], "tests.monitoring.monitoring_receivers"],
    "monitoring": {
        "flush_interval": 200,
        "rules_interval": 200,
        "trusted_proxy_header": "X-Forwarded-For",
        # zombie after 1000 + 800 + 1000 ms of silence
        "zombie_grace": 1000,
        "duplicate_grace": 1000,
        "storm_window": 5000,
        "storm_threshold": 10,
        # stuck: connect_timeout / upgrade_timeout + 1.5 s; orphans that last 1.5 s
        "stuck_grace": 1500,
        "slow_consumer_window": 5000,
        "retention": 3000,
    },
}

LOGGING = {
    **LOGGING,
    "loggers": {
        **LOGGING["loggers"],
        "tests.monitoring": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
