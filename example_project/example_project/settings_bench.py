"""Benchmark configuration: default timings; the handlers of ``bench_sockets`` on ``/``.

One process on the in-memory layer even when ``REDIS_URL`` is set (settings_bench_redis is the
multi-process configuration). ``RECOVERY_STORE`` turns connection state recovery on with that
store: ``memory``, ``database`` (the project's database: ``DATABASE_URL``, or SQLite) or
``redis`` (at ``REDIS_URL``); unset, recovery is off. ``MONITORING`` sets monitoring (the
live-session registry, in the project's database: ``DATABASE_URL``, else the SQLite file of
``EXAMPLE_DB``, migrated): unset or ``1``, on (the default); ``0``, off.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from .settings import *  # noqa: F403

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "chat"]  # noqa: F405

RECOVERY_STORE = os.environ.get("RECOVERY_STORE") or None
_RECOVERY_OPTIONS = (
    {"url": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")}
    if RECOVERY_STORE == "redis"
    else {}
)

_MONITORING = os.environ.get("MONITORING") or "1"
if _MONITORING not in ("0", "1"):
    raise ImproperlyConfigured(f"MONITORING must be 0 or 1 (unset: 1), not {_MONITORING!r}")

CHANNELS_SIO = {
    "cors_allowed_origins": "*",
    "handlers": ["example_project.bench_sockets"],
    "connection_state_recovery": (
        {
            "store": RECOVERY_STORE,
            "store_options": _RECOVERY_OPTIONS,
            # bench/live_sessions.py compares the sessions' cost with it on and off.
            "persist_live_sessions": os.environ.get("PERSIST_LIVE_SESSIONS") == "1",
        }
        if RECOVERY_STORE
        else None
    ),
    "monitoring": _MONITORING == "1",
    # bench/upgrades.py compares the WebSocket upgrades of several workers with and without it.
    "upgrade_window": int(os.environ.get("UPGRADE_WINDOW", "300")),
}

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

ENGINEIO_ENDPOINTS: dict[str, str] = {}

LOGGING = {"version": 1, "disable_existing_loggers": False}
