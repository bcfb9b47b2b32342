"""Engine.IO server options, as a plain immutable value (no Django here)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .http import HttpRequest

__all__ = ["TRANSPORTS", "EngineIOConfig"]

TRANSPORTS = ("polling", "websocket")


@dataclass(frozen=True)
class EngineIOConfig:
    """Options of one Engine.IO server. Times are in milliseconds, as on the wire.

    ``cors_allowed_origins`` is ``None`` for same-origin only, ``"*"`` for any origin, or a
    sequence of exact origins such as ``"https://example.com"``. Same origin means the
    ``Origin`` header equals what ``own_origin(request)`` returns (``scheme://Host`` when it is
    None); ``own_origin`` returns None for a request whose host the site does not serve, which
    refuses every ``Origin`` on it. ``handshake_rate_limit`` is ``(handshakes, window)``: at
    most that many new sessions per client address per window (ms), or None for no limit.
    """

    ping_interval: int = 25_000
    ping_timeout: int = 20_000
    upgrade_timeout: int = 10_000
    max_payload: int = 1_000_000
    transports: tuple[str, ...] = TRANSPORTS
    allow_upgrades: bool = True
    cors_allowed_origins: str | tuple[str, ...] | None = None
    cors_credentials: bool = True
    extra_headers: Sequence[tuple[str, str]] = field(default=())
    #: Packets a session may have waiting to be sent (a WebSocket's writer busy, or polls not
    #: coming); past it the session closes with ``send queue full``.
    max_queued_packets: int = 10_000
    handshake_rate_limit: tuple[int, int] | None = None
    own_origin: Callable[[HttpRequest], str | None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # Invalid values are reported by Django system checks with hints; this guard keeps the
        # pure layer safe when it is used on its own.
        for name in (
            "ping_interval",
            "ping_timeout",
            "upgrade_timeout",
            "max_payload",
            "max_queued_packets",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        unknown = set(self.transports) - set(TRANSPORTS)
        if unknown or not self.transports:
            raise ValueError(f"transports must be a non-empty subset of {TRANSPORTS}")
        origins = self.cors_allowed_origins
        # A bare origin string would be matched with ``in``, i.e. as a substring: fail closed.
        if (
            origins is not None
            and origins != "*"
            and (
                isinstance(origins, str)
                or not isinstance(origins, Sequence)
                or not all(isinstance(origin, str) for origin in origins)
            )
        ):
            raise ValueError(
                f"cors_allowed_origins must be None, '*' or a sequence of origins, not {origins!r}"
            )
        limit = self.handshake_rate_limit
        if limit is not None and not (
            isinstance(limit, tuple)
            and len(limit) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in limit)
        ):
            raise ValueError(
                f"handshake_rate_limit must be None or (handshakes, window), not {limit!r}"
            )

    @property
    def upgrades(self) -> list[str]:
        """What a polling handshake offers to upgrade to."""
        if self.allow_upgrades and "websocket" in self.transports:
            return ["websocket"]
        return []
