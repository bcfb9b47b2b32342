"""Load and churn configuration (bench/load.py, tests/reliability): settings_bench, plus the
``disconnect_all`` handler and the ``/_load/stats/`` view of ``example_project.load``, and the
protocol state view (``/_protocol/state/``, which the test servers wait for).

With ``REDIS_URL`` set, channels-redis there (every process running it joins one Socket.IO
server, as with settings_bench_redis); unset, the in-memory layer of one process.
``FLUSH_INTERVAL`` (ms) sets monitoring's ``flush_interval`` (default 5,000).
"""

import os

from . import settings as project
from .settings_bench import *  # noqa: F403
from .settings_bench import CHANNELS_SIO

CHANNELS_SIO = {
    **CHANNELS_SIO,
    "handlers": ["example_project.bench_sockets", "example_project.load"],
}
if CHANNELS_SIO["monitoring"] and "FLUSH_INTERVAL" in os.environ:
    # The short runs of the test suite wait for the registry's last flush: a shorter one.
    CHANNELS_SIO["monitoring"] = {"flush_interval": int(os.environ["FLUSH_INTERVAL"])}

if project.REDIS_URL:
    CHANNEL_LAYERS = project.CHANNEL_LAYERS

PROTOCOL_STATE_VIEW = True
LOAD_STATS_VIEW = True
