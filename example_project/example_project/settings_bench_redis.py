"""Benchmark configuration on channels-redis at ``REDIS_URL``: the cluster scenario's workers.

The same handlers and settings as settings_bench; every process running it joins one Socket.IO
server through the project's channels-redis layer (settings.py).
"""

from django.core.exceptions import ImproperlyConfigured

from . import settings as project
from .settings_bench import *  # noqa: F403

if not project.REDIS_URL:
    raise ImproperlyConfigured("settings_bench_redis needs REDIS_URL")

CHANNEL_LAYERS = project.CHANNEL_LAYERS
