"""The cluster settings with 2 s heartbeats: a stopping uvicorn (gunicorn's workers included)
answers a waiting long poll with its next ping before its lifespan shutdown closes the
session, so SIGTERM is clean within a few seconds."""

from tests.cluster.settings_cluster import *  # noqa: F403
from tests.cluster.settings_cluster import CHANNELS_SIO

CHANNELS_SIO = {**CHANNELS_SIO, "ping_interval": 2_000, "ping_timeout": 2_000}
