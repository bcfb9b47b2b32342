"""The ``CHANNELS_SIO`` settings dict, read lazily and reset when tests override settings."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from .engineio import EngineIOConfig
from .origin import own_origin
from .recovery import ConnectionStateRecovery, RecoveryStore
from .socketio import ServerConfig

__all__ = [
    "DEFAULTS",
    "MONITORING_DEFAULTS",
    "RECOVERY_DEFAULTS",
    "SETTING_NAME",
    "STORES",
    "engineio_config",
    "get",
    "monitoring_settings",
    "recovery",
    "recovery_settings",
    "server_config",
    "sio_settings",
]

SETTING_NAME = "CHANNELS_SIO"

DEFAULTS: dict[str, Any] = {
    "path": "/socket.io/",
    "ping_interval": 25_000,
    "ping_timeout": 20_000,
    "upgrade_timeout": 10_000,
    "max_payload": 1_000_000,
    "transports": ["polling", "websocket"],
    "allow_upgrades": True,
    "cors_allowed_origins": None,
    "cors_credentials": True,
    "handshake_rate_limit": None,
    "connect_timeout": 45_000,
    "max_attachments": 10,
    "handlers": [],
    "node_heartbeat": 5_000,
    "node_timeout": 15_000,
    "request_timeout": 5_000,
    "forward_polling": True,
    "upgrade_window": 300,
    "max_queued_packets": 10_000,
    "connection_state_recovery": None,
    "monitoring": True,
}

#: The keys of ``monitoring`` (a dict, or True for all defaults; False turns it off).
MONITORING_DEFAULTS: dict[str, Any] = {
    "flush_interval": 5_000,
    "rules_interval": 5_000,
    "trusted_proxy_header": None,
    "fingerprint": ["pid", "user", "address"],
    "zombie_grace": 10_000,
    "duplicate_grace": 30_000,
    "storm_window": 60_000,
    "storm_threshold": 20,
    "stuck_grace": 5_000,
    "slow_consumer_window": 300_000,
    "retention": 3_600_000,
}

#: The keys of ``connection_state_recovery`` (a dict, or True for all defaults).
RECOVERY_DEFAULTS: dict[str, Any] = {
    "max_disconnection_duration": 120_000,
    "skip_middlewares": True,
    "persist_live_sessions": False,
    "store": "database",
    "store_options": {},
}

#: Store names and the classes they stand for; any other value is a dotted path to a class.
STORES = {
    "memory": "channels_sio.recovery.memory.MemoryStore",
    "database": "channels_sio.recovery.database.DatabaseStore",
    "redis": "channels_sio.recovery.redis.RedisStore",
}


def user_settings() -> Any:
    """The raw ``CHANNELS_SIO`` value, or an empty dict when the project sets none."""
    return getattr(django_settings, SETTING_NAME, {})


@cache
def sio_settings() -> dict[str, Any]:
    """Defaults overlaid with the project's ``CHANNELS_SIO``; cached until settings change."""
    raw = user_settings()
    if not isinstance(raw, dict):
        raise ImproperlyConfigured(f"{SETTING_NAME} must be a dict (see check channels_sio.E001)")
    return {**DEFAULTS, **raw}


def get(name: str) -> Any:
    """One setting by its documented name."""
    return sio_settings()[name]


@cache
def engineio_config() -> EngineIOConfig:
    """The Engine.IO options from settings, as the pure layer takes them."""
    values = sio_settings()
    origins = values["cors_allowed_origins"]
    if isinstance(origins, list | tuple):
        origins = tuple(origins)
    limit = values["handshake_rate_limit"]
    if isinstance(limit, dict):
        limit = (limit.get("handshakes"), limit.get("window"))
    try:
        return EngineIOConfig(
            ping_interval=values["ping_interval"],
            ping_timeout=values["ping_timeout"],
            upgrade_timeout=values["upgrade_timeout"],
            max_payload=values["max_payload"],
            transports=tuple(values["transports"]),
            allow_upgrades=values["allow_upgrades"],
            cors_allowed_origins=origins,
            cors_credentials=values["cors_credentials"],
            max_queued_packets=values["max_queued_packets"],
            handshake_rate_limit=limit,
            own_origin=own_origin,
        )
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"{SETTING_NAME}: {exc} (run manage.py check)") from exc


def recovery_settings() -> dict[str, Any] | None:
    """``connection_state_recovery`` with its defaults; None when recovery is off."""
    raw = get("connection_state_recovery")
    if raw is None or raw is False:
        return None
    return {**RECOVERY_DEFAULTS, **(raw if isinstance(raw, dict) else {})}


def monitoring_settings() -> dict[str, Any] | None:
    """``monitoring`` with its defaults; None when it is off."""
    raw = get("monitoring")
    if raw is None or raw is False:
        return None
    return {**MONITORING_DEFAULTS, **(raw if isinstance(raw, dict) else {})}


def store_class(name: str) -> type[RecoveryStore]:
    """The store class a ``store`` setting names (ImportError / TypeError if none)."""
    found = import_string(STORES.get(name, name))
    if not (isinstance(found, type) and issubclass(found, RecoveryStore)):
        raise TypeError(f"{name!r} is not a RecoveryStore subclass")
    return found


@cache
def recovery() -> ConnectionStateRecovery | None:
    """This process's connection state recovery (one store for the server and for
    ``channels_sio.emit``), or None when it is off."""
    values = recovery_settings()
    if values is None:
        return None
    cls = store_class(values["store"])
    options = {
        "max_disconnection_duration": values["max_disconnection_duration"],
        **values["store_options"],
    }
    return ConnectionStateRecovery(
        lambda: cls(**options),
        skip_middlewares=values["skip_middlewares"],
        persist_live_sessions=values["persist_live_sessions"],
    )


def server_config() -> ServerConfig:
    """The Socket.IO options from settings."""
    return ServerConfig(
        engine=engineio_config(),
        connect_timeout=get("connect_timeout"),
        max_attachments=get("max_attachments"),
        recovery=recovery(),
    )


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        sio_settings.cache_clear()
        engineio_config.cache_clear()
        recovery.cache_clear()
