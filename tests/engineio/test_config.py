"""EngineIOConfig: defaults, validation of every option it guards, and ``upgrades``."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from channels_sio.engineio.config import TRANSPORTS, EngineIOConfig

INT_OPTIONS = ["ping_interval", "ping_timeout", "upgrade_timeout", "max_payload"]


def test_defaults() -> None:
    config = EngineIOConfig()
    assert config.ping_interval == 25_000
    assert config.ping_timeout == 20_000
    assert config.upgrade_timeout == 10_000
    assert config.max_payload == 1_000_000
    assert config.transports == ("polling", "websocket")
    assert config.allow_upgrades is True
    assert config.cors_allowed_origins is None
    assert config.cors_credentials is True
    assert tuple(config.extra_headers) == ()
    assert config.handshake_rate_limit is None
    assert config.own_origin is None


def test_transports_constant() -> None:
    assert TRANSPORTS == ("polling", "websocket")


def test_is_frozen() -> None:
    config = EngineIOConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.ping_interval = 1  # type: ignore[misc]


def test_equal_by_value() -> None:
    assert EngineIOConfig(ping_interval=50) == EngineIOConfig(ping_interval=50)
    assert EngineIOConfig(ping_interval=50) != EngineIOConfig(ping_interval=51)


@pytest.mark.parametrize("name", INT_OPTIONS)
@pytest.mark.parametrize("value", [1, 50, 10**9])
def test_positive_int_accepted(name: str, value: int) -> None:
    assert getattr(EngineIOConfig(**{name: value}), name) == value


@pytest.mark.parametrize("name", INT_OPTIONS)
@pytest.mark.parametrize(
    "value",
    [
        pytest.param(0, id="zero"),
        pytest.param(-1, id="negative"),
        pytest.param(True, id="true"),
        pytest.param(False, id="false"),
        pytest.param(1.5, id="float"),
        pytest.param(25000.0, id="whole-float"),
        pytest.param("25000", id="str"),
        pytest.param(None, id="none"),
    ],
)
def test_bad_int_rejected(name: str, value: Any) -> None:
    message = f"{name} must be a positive integer, not {value!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        EngineIOConfig(**{name: value})


@pytest.mark.parametrize(
    "transports",
    [("polling",), ("websocket",), ("polling", "websocket"), ("websocket", "polling")],
    ids=str,
)
def test_transports_accepted(transports: tuple[str, ...]) -> None:
    assert EngineIOConfig(transports=transports).transports == transports


@pytest.mark.parametrize(
    "transports",
    [
        pytest.param((), id="empty"),
        pytest.param(("flashsocket",), id="unknown"),
        pytest.param(("polling", "webtransport"), id="one-unknown"),
        pytest.param(("Polling",), id="case"),
        pytest.param("polling", id="bare-string"),
    ],
)
def test_transports_rejected(transports: Any) -> None:
    message = "transports must be a non-empty subset of ('polling', 'websocket')"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        EngineIOConfig(transports=transports)


@pytest.mark.parametrize(
    ("transports", "allow_upgrades", "upgrades"),
    [
        (("polling", "websocket"), True, ["websocket"]),
        (("websocket", "polling"), True, ["websocket"]),
        (("polling", "websocket"), False, []),
        (("polling",), True, []),
        (("polling",), False, []),
        (("websocket",), True, ["websocket"]),
        (("websocket",), False, []),
    ],
)
def test_upgrades(transports: tuple[str, ...], allow_upgrades: bool, upgrades: list[str]) -> None:
    config = EngineIOConfig(transports=transports, allow_upgrades=allow_upgrades)
    assert config.upgrades == upgrades


def test_upgrades_is_a_fresh_list() -> None:
    config = EngineIOConfig()
    config.upgrades.append("polling")
    assert config.upgrades == ["websocket"]


@pytest.mark.parametrize(
    "origins",
    [None, "*", (), ("https://example.com",), ["https://a.example", "http://b.example:8000"]],
    ids=repr,
)
def test_cors_allowed_origins_accepted(origins: Any) -> None:
    assert EngineIOConfig(cors_allowed_origins=origins).cors_allowed_origins == origins


@pytest.mark.parametrize(
    "origins",
    [
        # A bare string is not a list of one origin: matched with ``in`` it would allow any
        # substring of it ("https://example.co", "") -- it must be refused, not fail open.
        pytest.param("https://example.com", id="bare-origin"),
        pytest.param("", id="empty-string"),
        pytest.param(("https://example.com", None), id="none-item"),
        pytest.param((b"https://example.com",), id="bytes-item"),
        pytest.param(42, id="int"),
        pytest.param(True, id="bool"),
    ],
)
def test_cors_allowed_origins_rejected(origins: Any) -> None:
    message = f"cors_allowed_origins must be None, '*' or a sequence of origins, not {origins!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        EngineIOConfig(cors_allowed_origins=origins)


@pytest.mark.parametrize("limit", [None, (1, 1), (20, 10_000)], ids=repr)
def test_handshake_rate_limit_accepted(limit: Any) -> None:
    assert EngineIOConfig(handshake_rate_limit=limit).handshake_rate_limit == limit


@pytest.mark.parametrize(
    "limit",
    [20, (20,), (20, 10_000, 1), [20, 10_000], (0, 10_000), (20, -1), (True, 10), (20, 1.5)],
    ids=repr,
)
def test_handshake_rate_limit_rejected(limit: Any) -> None:
    message = f"handshake_rate_limit must be None or (handshakes, window), not {limit!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        EngineIOConfig(handshake_rate_limit=limit)
