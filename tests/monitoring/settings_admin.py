"""The example project for the admin's browser test (tests/monitoring/test_admin_browser.py):
the registry flushed and the rules run twice a second, a duplicate client alarmed after one
second, clients told apart by address and user agent only (the test's clients share both on
purpose); ``EXAMPLE_DB`` (example settings) names the SQLite file."""

from example_project.settings import *  # noqa: F403

CHANNELS_SIO = {
    **CHANNELS_SIO,  # noqa: F405
    "monitoring": {
        "flush_interval": 500,
        "rules_interval": 500,
        "duplicate_grace": 1_000,
        "fingerprint": ["address"],
    },
}
