"""Django system checks for ``CHANNELS_SIO``: a stable id and a hint for every wrong value."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, Tags, register

from .conf import DEFAULTS, SETTING_NAME, user_settings
from .engineio.config import TRANSPORTS

__all__ = ["check_settings"]

_POSITIVE_MS = ("ping_interval", "ping_timeout", "upgrade_timeout", "connect_timeout")


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
    for name in ("allow_upgrades", "cors_credentials"):
        if not isinstance(values[name], bool):
            errors.append(
                _error(
                    f"{SETTING_NAME}[{name!r}] must be True or False, not {values[name]!r}.",
                    f"The default is {DEFAULTS[name]}.",
                    9,
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
