"""settings_recovery with a memory store that keeps 5 packets per namespace."""

from tests.recovery.settings_recovery import *  # noqa: F403
from tests.recovery.settings_recovery import CHANNELS_SIO

CHANNELS_SIO = {
    **CHANNELS_SIO,
    "connection_state_recovery": {
        **CHANNELS_SIO["connection_state_recovery"],
        "store": "memory",
        "store_options": {"max_packets": 5},
    },
}
