"""The recovery configuration of tests/recovery (connection state recovery on, memory store)
plus the signal receivers of :mod:`tests.signal_sockets`, with Django's signal errors logged to
the server's output."""

from tests.recovery.settings_recovery import *  # noqa: F403
from tests.recovery.settings_recovery import CHANNELS_SIO, LOGGING

CHANNELS_SIO = {**CHANNELS_SIO, "handlers": [*CHANNELS_SIO["handlers"], "tests.signal_sockets"]}

LOGGING = {
    **LOGGING,
    "loggers": {
        **LOGGING["loggers"],
        "django.dispatch": {"handlers": ["console"], "level": "ERROR"},
    },
}
