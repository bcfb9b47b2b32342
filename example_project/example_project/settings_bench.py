"""Benchmark configuration: default timings; ``echo`` and ``bcast`` handlers on ``/``.

One process on the in-memory layer even when ``REDIS_URL`` is set (settings_bench_redis is the
multi-process configuration).
"""

from .settings import *  # noqa: F403

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "chat"]  # noqa: F405

CHANNELS_SIO = {"cors_allowed_origins": "*", "handlers": ["example_project.bench_sockets"]}

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

ENGINEIO_ENDPOINTS: dict[str, str] = {}

LOGGING = {"version": 1, "disable_existing_loggers": False}
