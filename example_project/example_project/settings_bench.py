"""Benchmark configuration: default timings; the handlers of ``bench_sockets`` on ``/``.

One process on the in-memory layer even when ``REDIS_URL`` is set (settings_bench_redis is the
multi-process configuration). ``RECOVERY_STORE`` turns connection state recovery on with that
store: ``memory``, ``database`` (the project's database: ``DATABASE_URL``, or SQLite) or
``redis`` (at ``REDIS_URL``); unset, recovery is off.
"""

import os

from .settings import *  # noqa: F403

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "chat"]  # noqa: F405

RECOVERY_STORE = os.environ.get("RECOVERY_STORE") or None
_RECOVERY_OPTIONS = (
    {"url": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")}
    if RECOVERY_STORE == "redis"
    else {}
)

CHANNELS_SIO = {
    "cors_allowed_origins": "*",
    "handlers": ["example_project.bench_sockets"],
    "connection_state_recovery": (
        {"store": RECOVERY_STORE, "store_options": _RECOVERY_OPTIONS} if RECOVERY_STORE else None
    ),
}

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

ENGINEIO_ENDPOINTS: dict[str, str] = {}

LOGGING = {"version": 1, "disable_existing_loggers": False}
