"""The feature configuration of tests/socketio with connection state recovery on, plus the
recovery handlers of tests/recovery/recovery_sockets.py.

``CSIO_RECOVERY_STORE`` picks the store (``memory`` by default, ``database``, ``redis``) and
``CSIO_RECOVERY_OPTIONS`` (JSON) its options, ``CSIO_RECOVERY_LIVE=1`` turns
``persist_live_sessions`` on; ``DATABASE_URL`` (example settings) the database
and ``REDIS_URL`` the channel layer, for several processes.
"""

import json
import os

from tests.socketio.settings_features import *  # noqa: F403
from tests.socketio.settings_features import CHANNELS_SIO

CHANNELS_SIO = {
    **CHANNELS_SIO,
    # Heartbeats long enough that a slow CI machine does not time clients out mid-test.
    "ping_interval": 1000,
    "ping_timeout": 800,
    "handlers": [*CHANNELS_SIO["handlers"], "tests.recovery.recovery_sockets"],
    "connection_state_recovery": {
        "store": os.environ.get("CSIO_RECOVERY_STORE", "memory"),
        "store_options": json.loads(os.environ.get("CSIO_RECOVERY_OPTIONS", "{}")),
        "max_disconnection_duration": 30_000,
        "persist_live_sessions": os.environ.get("CSIO_RECOVERY_LIVE") == "1",
    },
}
