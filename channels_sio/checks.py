"""Django system checks: a stable id and a hint for every wrong ``CHANNELS_SIO`` value, and
warnings for channel-layer settings known to fail."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from .conf import DEFAULTS, SETTING_NAME, user_settings
from .engineio.config import TRANSPORTS

__all__ = ["check_channel_layers", "check_settings"]

_POSITIVE_MS = (
    "ping_interval",
    "ping_timeout",
    "upgrade_timeout",
    "connect_timeout",
    "node_heartbeat",
    "node_timeout",
    "request_timeout",
)


def _error(msg: str, hint: str, code: int) -> Error:
    return Error(msg, hint=hint, id=f"channels_sio.E{code:03d}")


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _origin_ok(origin: Any) -> bool:
    if not isinstance(origin, str):
        return False
    parts = urlsplit(origin)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and origin == (f"{parts.scheme}://{parts.netloc}")
    )


@register(Tags.compatibility)
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Validate ``CHANNELS_SIO``; each problem is reported once, with how to fix it."""
    raw = user_settings()
    if not isinstance(raw, dict):
        return [
            _error(
                f"{SETTING_NAME} must be a dict, not {type(raw).__name__}.",
                f'Write {SETTING_NAME} = {{"ping_interval": 25000, ...}} in settings.',
                1,
            )
        ]
    errors: list[CheckMessage] = []
    for key in raw:
        if key not in DEFAULTS:
            close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
            hint = f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(DEFAULTS)}."
            errors.append(_error(f"{SETTING_NAME} has an unknown key {key!r}.", hint, 2))
    values = {**DEFAULTS, **raw}

    for name in _POSITIVE_MS:
        if not _is_positive_int(values[name]):
            errors.append(
                _error(
                    f"{SETTING_NAME}[{name!r}] must be a positive number of milliseconds, "
                    f"not {values[name]!r}.",
                    f"The default is {DEFAULTS[name]}.",
                    3,
                )
            )
    for name, unit in (("max_payload", "bytes"), ("max_attachments", "attachments")):
        if not _is_positive_int(values[name]):
            errors.append(
                _error(
                    f"{SETTING_NAME}[{name!r}] must be a positive number of {unit}, "
                    f"not {values[name]!r}.",
                    f"The default is {DEFAULTS[name]}.",
                    4,
                )
            )
    interval, timeout = values["ping_interval"], values["ping_timeout"]
    if _is_positive_int(interval) and _is_positive_int(timeout) and timeout >= interval:
        errors.append(
            _error(
                f"{SETTING_NAME}['ping_timeout'] ({timeout}) must be less than "
                f"ping_interval ({interval}).",
                "A timeout at least as long as the interval delays the detection of dead "
                "clients past the next ping; socket.io's defaults are 25000 / 20000.",
                5,
            )
        )
    transports = values["transports"]
    if (
        not isinstance(transports, list | tuple)
        or not transports
        or any(t not in TRANSPORTS for t in transports)
    ):
        errors.append(
            _error(
                f"{SETTING_NAME}['transports'] must be a non-empty list drawn from "
                f"{list(TRANSPORTS)}, not {transports!r}.",
                'Use ["polling", "websocket"] (the default) or one of them alone.',
                6,
            )
        )
    path = values["path"]
    if not isinstance(path, str) or not path.startswith("/") or not path.endswith("/"):
        errors.append(
            _error(
                f"{SETTING_NAME}['path'] must start and end with '/', not {path!r}.",
                'The default is "/socket.io/", which official clients expect.',
                7,
            )
        )
    origins = values["cors_allowed_origins"]
    if not (
        origins is None
        or origins == "*"
        or (isinstance(origins, list | tuple) and all(_origin_ok(o) for o in origins))
    ):
        errors.append(
            _error(
                f"{SETTING_NAME}['cors_allowed_origins'] must be None (same origin), '*' or a "
                f"list of origins, not {origins!r}.",
                'Origins are scheme://host[:port] with no path, e.g. ["https://example.com"].',
                8,
            )
        )
    for name in ("allow_upgrades", "cors_credentials", "forward_polling"):
        if not isinstance(values[name], bool):
            errors.append(
                _error(
                    f"{SETTING_NAME}[{name!r}] must be True or False, not {values[name]!r}.",
                    f"The default is {DEFAULTS[name]}.",
                    9,
                )
            )
    beat, lost = values["node_heartbeat"], values["node_timeout"]
    if _is_positive_int(beat) and _is_positive_int(lost) and lost < 2 * beat:
        errors.append(
            _error(
                f"{SETTING_NAME}['node_timeout'] ({lost}) must be at least twice "
                f"node_heartbeat ({beat}).",
                "A node is declared lost when no heartbeat came within node_timeout; one late "
                "heartbeat must not be enough. The defaults are 5000 / 15000.",
                11,
            )
        )
    modules = values["handlers"]
    if not isinstance(modules, list | tuple) or not all(isinstance(m, str) for m in modules):
        errors.append(
            _error(
                f"{SETTING_NAME}['handlers'] must be a list of module paths, not {modules!r}.",
                'For example ["chat.sockets"]; modules named sockets.py in installed apps are '
                "found without being listed.",
                10,
            )
        )
    return errors


_REDIS_LAYER = "channels_redis.core.RedisChannelLayer"
_REDIS_LAYERS = (_REDIS_LAYER, "channels_redis.pubsub.RedisPubSubChannelLayer")
_BLOCKING_POP_TIMEOUT = 5  # seconds: channels_redis's RedisChannelLayer.brpop_timeout


def _redis_major() -> int:
    try:
        import redis
    except ImportError:
        return 0
    return int(str(redis.__version__).split(".", 1)[0])


@register(Tags.compatibility)
def check_channel_layers(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn about channels-redis settings that redis-py 8 turns into failures."""
    if _redis_major() < 8:
        return []
    warnings: list[CheckMessage] = []
    for alias, layer in (getattr(settings, "CHANNEL_LAYERS", None) or {}).items():
        backend = layer.get("BACKEND") if isinstance(layer, dict) else None
        if backend not in _REDIS_LAYERS:
            continue
        hosts = (layer.get("CONFIG") or {}).get("hosts") or ["redis://localhost:6379"]
        for host in hosts:
            options = host if isinstance(host, dict) else {}
            timeout = options.get("socket_timeout", _BLOCKING_POP_TIMEOUT)
            if backend == _REDIS_LAYER and timeout is not None and timeout <= _BLOCKING_POP_TIMEOUT:
                warnings.append(
                    Warning(
                        f"CHANNEL_LAYERS[{alias!r}]: redis-py 8 times sockets out after "
                        f"{timeout}s, which races channels-redis's {_BLOCKING_POP_TIMEOUT}s "
                        "blocking receive (channels_redis#422): receives fail every few seconds.",
                        hint='Give each host as a dict with a longer timeout, e.g. {"address": '
                        '"redis://127.0.0.1:6379", "socket_timeout": 10}.',
                        id="channels_sio.W001",
                    )
                )
            if "max_connections" not in options:
                warnings.append(
                    Warning(
                        f"CHANNEL_LAYERS[{alias!r}]: redis-py 8 caps each connection pool at 100 "
                        "connections; past that, channel-layer sends fail under load.",
                        hint='Add "max_connections" to the host dict, e.g. {"address": ..., '
                        '"max_connections": 1000}.',
                        id="channels_sio.W002",
                    )
                )
    return warnings
