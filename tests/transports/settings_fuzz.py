"""The protocol reference configuration with slow heartbeats, for the live fuzz tests.

Served by the ``fuzz_server`` fixture. The fuzzed sessions answer no ping while their input and
probe are on the way, and settings_protocol's heartbeat (300 + 200 ms) closed some of them with
``ping timeout`` before their bad packet was read when the machine was loaded; the outcome the
oracle checks is the bad packet's. Every fuzzed session is closed by its client.
"""

from example_project.settings_protocol import *  # noqa: F403
from example_project.settings_protocol import CHANNELS_SIO

CHANNELS_SIO = {**CHANNELS_SIO, "ping_interval": 10_000, "ping_timeout": 10_000}
