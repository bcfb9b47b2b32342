"""Django system checks: a stable id and a hint for every wrong ``CHANNELS_SIO`` value,
warnings for channel-layer settings known to fail, and (``check --deploy``) for origins that
let other sites' pages connect."""

from __future__ import annotations

import difflib
import importlib.util
import inspect
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from .conf import (
    DEFAULTS,
    MONITORING_DEFAULTS,
    RECOVERY_DEFAULTS,
    SETTING_NAME,
    STORES,
    store_class,
    user_settings,
)
from .engineio.config import TRANSPORTS

__all__ = [
    "check_channel_layers",
    "check_layer_backends",
    "check_monitoring",
    "check_origins",
    "check_recovery",
    "check_settings",
]

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


#: Top-level modules that an extra of the package installs: (distribution, extra).
_EXTRAS = {"redis": ("redis-py", "redis"), "channels_redis": ("channels-redis", "redis")}


def _missing_extra(what: str, module: str) -> Error:
    distribution, extra = _EXTRAS[module]
    return _error(
        f"{what} needs {distribution}, which is not installed.",
        f'pip install "channels-sio[{extra}]"',
        24,
    )


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _unknown_keys(
    given: dict[Any, Any], known: dict[str, Any], where: str, code: int
) -> list[CheckMessage]:
    """One error per key of ``given`` not in ``known``, with the closest known key as hint."""
    errors: list[CheckMessage] = []
    for key in given:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(known)}."
            errors.append(_error(f"{where} has an unknown key {key!r}.", hint, code))
    return errors


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
    errors = _unknown_keys(raw, DEFAULTS, SETTING_NAME, 2)
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
    for name, unit in (
        ("max_payload", "bytes"),
        ("max_attachments", "attachments"),
        ("max_queued_packets", "packets"),
    ):
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
    limit = values["handshake_rate_limit"]
    if limit is not None and not (
        isinstance(limit, dict)
        and set(limit) == {"handshakes", "window"}
        and all(_is_positive_int(n) for n in limit.values())
    ):
        errors.append(
            _error(
                f"{SETTING_NAME}['handshake_rate_limit'] must be None or a dict of a positive "
                f"'handshakes' and a positive 'window' (ms), not {limit!r}.",
                'For example {"handshakes": 20, "window": 10000}: at most 20 new sessions per '
                "client address every 10 s; None (the default) sets no limit.",
                25,
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
    window = values["upgrade_window"]
    if not isinstance(window, int) or isinstance(window, bool) or window < 0:
        errors.append(
            _error(
                f"{SETTING_NAME}['upgrade_window'] must be a whole number of milliseconds, 0 "
                f"or more, not {window!r}.",
                "The default is 300; 0 starts every connection at once (upgrades that land "
                "on another process are then relayed to the session's owner).",
                26,
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


_RECOVERY = f"{SETTING_NAME}['connection_state_recovery']"


@register(Tags.compatibility)
def check_recovery(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Validate ``connection_state_recovery``, and that its store can serve this project's
    processes."""
    raw = user_settings()
    value = raw.get("connection_state_recovery") if isinstance(raw, dict) else None
    if value is None or isinstance(value, bool):
        return []
    if not isinstance(value, dict):
        return [
            _error(
                f"{_RECOVERY} must be None, True or a dict, not {type(value).__name__}.",
                'For example {"store": "database", "max_disconnection_duration": 120000}; '
                "None (the default) turns recovery off, True turns it on with the defaults.",
                12,
            )
        ]
    errors = _unknown_keys(value, RECOVERY_DEFAULTS, _RECOVERY, 13)
    values = {**RECOVERY_DEFAULTS, **value}
    duration = values["max_disconnection_duration"]
    if not _is_positive_int(duration):
        errors.append(
            _error(
                f"{_RECOVERY}['max_disconnection_duration'] must be a positive number of "
                f"milliseconds, not {duration!r}.",
                "The default is 120000 (two minutes), as in socket.io.",
                14,
            )
        )
    if not isinstance(values["skip_middlewares"], bool):
        errors.append(
            _error(
                f"{_RECOVERY}['skip_middlewares'] must be True or False, "
                f"not {values['skip_middlewares']!r}.",
                "The default is True: a recovered socket does not run the middlewares again "
                "(its connect handler still runs).",
                15,
            )
        )
    if not isinstance(values["persist_live_sessions"], bool):
        errors.append(
            _error(
                f"{_RECOVERY}['persist_live_sessions'] must be True or False, "
                f"not {values['persist_live_sessions']!r}.",
                "The default is False: a session is kept when its socket disconnects. True "
                "also keeps it while the socket is connected (written at connect, join and "
                "leave), so that its client recovers when its worker dies.",
                27,
            )
        )
    options = values["store_options"]
    if not isinstance(options, dict):
        errors.append(
            _error(
                f"{_RECOVERY}['store_options'] must be a dict, not {options!r}.",
                'For example {"url": "redis://127.0.0.1:6379/0"} for the redis store.',
                17,
            )
        )
        options = None
    errors.extend(_check_store(values["store"], options, values["max_disconnection_duration"]))
    return errors


def _check_store(name: Any, options: dict[str, Any] | None, duration: Any) -> list[CheckMessage]:
    try:
        if not isinstance(name, str):
            raise TypeError(f"not {type(name).__name__}")
        cls = store_class(name)
    except ImportError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing in _EXTRAS:
            return [_missing_extra(f"{_RECOVERY}['store'] {name!r}", missing)]
        return [_not_a_store(name, exc)]
    except (TypeError, ValueError) as exc:
        return [_not_a_store(name, exc)]
    errors: list[CheckMessage] = []
    if options is not None:
        known = _store_options(cls)
        unknown = sorted(str(key) for key in options if key not in known)
        if unknown:
            errors.append(
                _error(
                    f"{_RECOVERY}['store_options'] do not suit {cls.__name__}: unknown "
                    f"option(s) {', '.join(map(repr, unknown))}.",
                    f"{cls.__name__} takes {', '.join(sorted(known))} (docs/recovery.md).",
                    17,
                )
            )
    if not cls.shared:
        for alias, layer in (getattr(settings, "CHANNEL_LAYERS", None) or {}).items():
            backend = layer.get("BACKEND") if isinstance(layer, dict) else None
            if backend != _IN_MEMORY_LAYER:
                errors.append(
                    _error(
                        f"{_RECOVERY}['store'] {name!r} keeps sessions in one process's "
                        f"memory, but CHANNEL_LAYERS[{alias!r}] ({backend}) joins several "
                        "processes: a client that reconnects to another one is not recovered.",
                        'Use "database" or "redis", which every process shares.',
                        18,
                    )
                )
    return errors


_MONITORING = f"{SETTING_NAME}['monitoring']"
_MONITORING_MS = (
    "flush_interval",
    "rules_interval",
    "zombie_grace",
    "duplicate_grace",
    "storm_window",
    "stuck_grace",
    "slow_consumer_window",
    "retention",
)
_FINGERPRINTS = ("pid", "user", "address")


@register(Tags.compatibility)
def check_monitoring(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Validate ``monitoring``: the registry of live sessions and its leak rules."""
    raw = user_settings()
    value = raw.get("monitoring", True) if isinstance(raw, dict) else True
    if value is None or isinstance(value, bool):
        return []
    if not isinstance(value, dict):
        return [
            _error(
                f"{_MONITORING} must be True, False or a dict, not {type(value).__name__}.",
                "True (the default) keeps the registry of live sessions with the default leak "
                'rules; a dict changes some of them, e.g. {"flush_interval": 10000}.',
                19,
            )
        ]
    errors = _unknown_keys(value, MONITORING_DEFAULTS, _MONITORING, 20)
    values = {**MONITORING_DEFAULTS, **value}
    for name in (*_MONITORING_MS, "storm_threshold"):
        if not _is_positive_int(values[name]):
            unit = "a positive number" if name == "storm_threshold" else "a positive number of ms"
            errors.append(
                _error(
                    f"{_MONITORING}[{name!r}] must be {unit}, not {values[name]!r}.",
                    f"The default is {MONITORING_DEFAULTS[name]}.",
                    21,
                )
            )
    fingerprint = values["fingerprint"]
    if (
        not isinstance(fingerprint, list | tuple)
        or not fingerprint
        or any(kind not in _FINGERPRINTS for kind in fingerprint)
    ):
        errors.append(
            _error(
                f"{_MONITORING}['fingerprint'] must be a non-empty list drawn from "
                f"{list(_FINGERPRINTS)}, not {fingerprint!r}.",
                "The first that applies tells one client from another: the recovery pid, the "
                "Django user with the user agent, the address with the user agent (default "
                '["pid", "user", "address"]).',
                22,
            )
        )
    header = values["trusted_proxy_header"]
    if header is not None and (not isinstance(header, str) or not header.strip()):
        errors.append(
            _error(
                f"{_MONITORING}['trusted_proxy_header'] must be None or a header name, "
                f"not {header!r}.",
                'For example "X-Forwarded-For", set by your proxy; None (the default) uses '
                "the peer address.",
                23,
            )
        )
    return errors


def _not_a_store(name: Any, exc: Exception) -> Error:
    return _error(
        f"{_RECOVERY}['store'] {name!r} is not a recovery store ({exc}).",
        f"Use one of {', '.join(repr(s) for s in STORES)}, or the dotted path of a "
        "channels_sio.recovery.RecoveryStore subclass.",
        16,
    )


def _store_options(cls: type) -> set[str]:
    """The keyword options a store class takes: its ``__init__``'s, and those its ``**options``
    pass on to the classes it derives from."""
    known: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters.values()
        known.update(
            p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        )
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    known.discard("self")
    known.discard("max_disconnection_duration")  # the setting of its own
    return known


_IN_MEMORY_LAYER = "channels.layers.InMemoryChannelLayer"
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


@register(Tags.security, deploy=True)
def check_origins(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """With ``check --deploy``: warn when pages of any origin may open Socket.IO connections."""
    raw = user_settings()
    if not isinstance(raw, dict) or raw.get("cors_allowed_origins") != "*":
        return []
    # Browsers send cookies with a cross-origin WebSocket handshake or polling POST whatever
    # the CORS answer (it only hides the response): "*" lets another origin's page act as the
    # user wherever SameSite lets the session cookie go.
    return [
        Warning(
            f"{SETTING_NAME}['cors_allowed_origins'] is '*': pages of any origin may open "
            "Socket.IO connections, with the user's session cookie wherever the browser "
            "sends it (from other subdomains of your site with SESSION_COOKIE_SAMESITE "
            "'Lax', from any site with 'None'), and so act as the signed-in user.",
            hint='List the origins your pages are served from, e.g. ["https://app.example.com"], '
            "or leave it None (same origin only). If no socket relies on the session cookie, "
            "add channels_sio.W003 to SILENCED_SYSTEM_CHECKS.",
            id="channels_sio.W003",
        )
    ]


@register(Tags.compatibility)
def check_layer_backends(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """An error for each channel layer whose backend needs an extra that is not installed."""
    errors: list[CheckMessage] = []
    for alias, layer in (getattr(settings, "CHANNEL_LAYERS", None) or {}).items():
        backend = layer.get("BACKEND") if isinstance(layer, dict) else None
        module = backend.partition(".")[0] if isinstance(backend, str) else ""
        if module in _EXTRAS and importlib.util.find_spec(module) is None:
            errors.append(_missing_extra(f"CHANNEL_LAYERS[{alias!r}] ({backend})", module))
    return errors
