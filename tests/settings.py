"""Settings for the test suite: the example project's, with an in-memory database.

A second alias, ``postgres``, is the PostgreSQL server of tests/support/services.py when it
answers and psycopg is installed (noxfile.py's ``fast`` sessions leave it out): the database
store's tests run against both. Its test database is named after the
run, so that two runs on one machine never share it.
"""

from importlib.util import find_spec

from example_project.settings import *  # noqa: F403
from example_project.settings import LOGGING

from tests.support.services import RUN_ID, postgres_reachable, postgres_settings

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
if postgres_reachable() and find_spec("psycopg"):
    DATABASES["postgres"] = {
        **postgres_settings(),
        "TEST": {"NAME": f"test_csio_{RUN_ID}"},
    }
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The package's defaults (recovery off), not the demo's.
CHANNELS_SIO: dict[str, object] = {}
# One process, whatever REDIS_URL says (tests/run.sh sets it for the cluster suites, whose
# servers choose their own layer).
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# pytest's caplog listens on the root logger: here the package's records go on to it (the
# example project stops them, for daphne's root handler).
LOGGING = {
    **LOGGING,
    "loggers": {
        **LOGGING["loggers"],
        "channels_sio": {**LOGGING["loggers"]["channels_sio"], "propagate": True},
    },
}
