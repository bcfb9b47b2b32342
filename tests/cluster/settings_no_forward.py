"""Polling NOT forwarded: a request for a sid another node owns gets "Session ID unknown"."""

from .settings_polling import *  # noqa: F403
from .settings_polling import CHANNELS_SIO

CHANNELS_SIO = {**CHANNELS_SIO, "forward_polling": False}
