"""channels_sio.checks: one stable id and a useful hint for every wrong CHANNELS_SIO value."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from django.core.checks import Error, Warning, run_checks
from django.test import override_settings

from channels_sio.checks import check_settings


def sio_messages() -> list[Any]:
    return [m for m in run_checks() if str(m.id).startswith("channels_sio.")]


def run_with(value: Any) -> list[Any]:
    with override_settings(CHANNELS_SIO=value):
        return sio_messages()


def test_default_config_is_clean() -> None:
    assert sio_messages() == []


def test_check_is_registered() -> None:
    # Called directly it agrees with run_checks(): the app registered it.
    with override_settings(CHANNELS_SIO={"ping_interval": 0}):
        direct = check_settings()
        assert [m.id for m in sio_messages()] == [m.id for m in direct] == ["channels_sio.E003"]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(
            {
                "path": "/realtime/",
                "ping_interval": 30_000,
                "ping_timeout": 5_000,
                "upgrade_timeout": 1,
                "max_payload": 1,
                "transports": ("websocket",),
                "allow_upgrades": False,
                "cors_allowed_origins": ["https://example.com", "http://localhost:8000"],
                "cors_credentials": False,
                "connect_timeout": 1,
            },
            id="every-key",
        ),
        pytest.param({"transports": ["polling"]}, id="polling-only"),
        pytest.param({"cors_allowed_origins": "*"}, id="any-origin"),
        pytest.param({"cors_allowed_origins": []}, id="no-origin-list"),
        pytest.param({"cors_allowed_origins": None}, id="same-origin"),
        pytest.param({"path": "/"}, id="root-path"),
        pytest.param({"handshake_rate_limit": None}, id="no-rate-limit"),
        pytest.param({"handshake_rate_limit": {"handshakes": 1, "window": 1}}, id="rate-limit"),
        pytest.param({"upgrade_window": 0}, id="no-upgrade-window"),
        pytest.param({"upgrade_window": 1000}, id="upgrade-window"),
    ],
)
def test_valid_configs_are_clean(value: dict[str, Any]) -> None:
    assert run_with(value) == []


CASES = [
    pytest.param("not a dict", 1, "must be a dict, not str", id="E001-str"),
    pytest.param([("ping_interval", 1)], 1, "must be a dict, not list", id="E001-list"),
    pytest.param(None, 1, "must be a dict, not NoneType", id="E001-none"),
    pytest.param({"pingInterval": 1000}, 2, "unknown key 'pingInterval'", id="E002"),
    pytest.param({"ping_interval": 0}, 3, "['ping_interval'] must be a positive", id="E003-zero"),
    pytest.param({"ping_timeout": -1}, 3, "['ping_timeout'] must be a positive", id="E003-neg"),
    pytest.param(
        {"upgrade_timeout": "10s"}, 3, "['upgrade_timeout'] must be a positive", id="E003-str"
    ),
    pytest.param(
        {"connect_timeout": True}, 3, "['connect_timeout'] must be a positive", id="E003-bool"
    ),
    pytest.param(
        {"ping_interval": 2.5}, 3, "['ping_interval'] must be a positive", id="E003-float"
    ),
    pytest.param(
        {"max_payload": 0}, 4, "['max_payload'] must be a positive number of bytes", id="E004"
    ),
    pytest.param(
        {"max_attachments": 0},
        4,
        "['max_attachments'] must be a positive number of attachments",
        id="E004-attachments",
    ),
    pytest.param(
        {"node_timeout": 5000, "node_heartbeat": 5000},
        11,
        "['node_timeout'] (5000) must be at least twice node_heartbeat (5000)",
        id="E011",
    ),
    pytest.param({"forward_polling": "yes"}, 9, "must be True or False", id="E009-forward"),
    *(
        pytest.param(
            {"handshake_rate_limit": limit},
            25,
            "['handshake_rate_limit'] must be None or a dict of a positive 'handshakes'",
            id=f"E025-{name}",
        )
        for name, limit in [
            ("int", 20),
            ("tuple", (20, 10_000)),
            ("no-window", {"handshakes": 20}),
            ("zero", {"handshakes": 0, "window": 10_000}),
            ("bool", {"handshakes": True, "window": 10_000}),
            ("float-window", {"handshakes": 20, "window": 0.5}),
            ("extra-key", {"handshakes": 20, "window": 10_000, "per": "ip"}),
        ]
    ),
    *(
        pytest.param(
            {"upgrade_window": window},
            26,
            "['upgrade_window'] must be a whole number of milliseconds, 0 or more",
            id=f"E026-{name}",
        )
        for name, window in [("negative", -1), ("float", 0.3), ("bool", True), ("str", "300")]
    ),
    pytest.param({"request_timeout": 0}, 3, "must be a positive", id="E003-request"),
    pytest.param(
        {"handlers": "chat.sockets"}, 10, "['handlers'] must be a list of module paths", id="E010"
    ),
    pytest.param(
        {"handlers": [1]}, 10, "['handlers'] must be a list of module paths", id="E010-item"
    ),
    pytest.param(
        {"max_payload": None},
        4,
        "['max_payload'] must be a positive number of bytes",
        id="E004-none",
    ),
    pytest.param(
        {"ping_interval": 20_000, "ping_timeout": 20_000},
        5,
        "['ping_timeout'] (20000) must be less than ping_interval (20000)",
        id="E005-equal",
    ),
    pytest.param(
        {"ping_timeout": 30_000},
        5,
        "['ping_timeout'] (30000) must be less than ping_interval (25000)",
        id="E005-greater",
    ),
    pytest.param({"transports": []}, 6, "['transports'] must be a non-empty list", id="E006-empty"),
    pytest.param(
        {"transports": ["polling", "flashsocket"]},
        6,
        "['transports'] must be a non-empty list",
        id="E006-unknown",
    ),
    pytest.param(
        {"transports": "websocket"}, 6, "['transports'] must be a non-empty list", id="E006-str"
    ),
    pytest.param(
        {"path": "socket.io/"}, 7, "['path'] must start and end with '/'", id="E007-start"
    ),
    pytest.param({"path": "/socket.io"}, 7, "['path'] must start and end with '/'", id="E007-end"),
    pytest.param({"path": None}, 7, "['path'] must start and end with '/'", id="E007-none"),
    pytest.param(
        {"cors_allowed_origins": ["https://example.com/"]},
        8,
        "['cors_allowed_origins'] must be None",
        id="E008-path",
    ),
    pytest.param(
        {"cors_allowed_origins": ["example.com"]},
        8,
        "['cors_allowed_origins'] must be None",
        id="E008-no-scheme",
    ),
    pytest.param(
        {"cors_allowed_origins": ["ftp://example.com"]},
        8,
        "['cors_allowed_origins'] must be None",
        id="E008-scheme",
    ),
    pytest.param(
        {"cors_allowed_origins": "https://example.com"},
        8,
        "['cors_allowed_origins'] must be None",
        id="E008-bare-string",
    ),
    pytest.param(
        {"cors_allowed_origins": [None]},
        8,
        "['cors_allowed_origins'] must be None",
        id="E008-none-item",
    ),
    pytest.param(
        {"allow_upgrades": "yes"}, 9, "['allow_upgrades'] must be True or False", id="E009-upgrades"
    ),
    pytest.param(
        {"cors_credentials": 1}, 9, "['cors_credentials'] must be True or False", id="E009-cred"
    ),
]


@pytest.mark.parametrize(("value", "number", "text"), CASES)
def test_each_problem_has_its_own_id(value: Any, number: int, text: str) -> None:
    messages = run_with(value)
    assert [m.id for m in messages] == [f"channels_sio.E{number:03d}"]
    [message] = messages
    assert isinstance(message, Error)
    assert message.msg.startswith("CHANNELS_SIO")
    assert text in message.msg
    assert isinstance(message.hint, str)
    assert message.hint.strip() != ""


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("ping_intervall", "ping_interval"),
        ("pingTimeout", "ping_timeout"),
        ("max_payloads", "max_payload"),
        ("transport", "transports"),
        ("cors_allowed_origin", "cors_allowed_origins"),
    ],
)
def test_unknown_key_suggests_the_close_match(key: str, suggestion: str) -> None:
    [message] = run_with({key: 1})
    assert message.id == "channels_sio.E002"
    assert message.msg == f"CHANNELS_SIO has an unknown key {key!r}."
    assert message.hint == f"Did you mean {suggestion!r}?"


def test_unknown_key_without_a_close_match_lists_the_known_keys() -> None:
    [message] = run_with({"zzz": 1})
    assert message.id == "channels_sio.E002"
    assert message.hint == (
        "Known keys: path, ping_interval, ping_timeout, upgrade_timeout, max_payload, "
        "transports, allow_upgrades, cors_allowed_origins, cors_credentials, "
        "handshake_rate_limit, connect_timeout, max_attachments, handlers, node_heartbeat, "
        "node_timeout, request_timeout, forward_polling, upgrade_window, max_queued_packets, "
        "connection_state_recovery, monitoring."
    )


def test_non_string_key_is_reported() -> None:
    [message] = run_with({1: 1})
    assert message.id == "channels_sio.E002"
    assert message.msg == "CHANNELS_SIO has an unknown key 1."


def test_e001_hides_every_other_check() -> None:
    [message] = run_with(["ping_intervall"])
    assert message.id == "channels_sio.E001"
    assert message.msg == "CHANNELS_SIO must be a dict, not list."


def test_e003_hint_gives_the_default() -> None:
    [message] = run_with({"ping_timeout": 0})
    assert message.msg == (
        "CHANNELS_SIO['ping_timeout'] must be a positive number of milliseconds, not 0."
    )
    assert message.hint == "The default is 20000."


def test_e005_is_skipped_when_a_timing_is_already_wrong() -> None:
    assert [m.id for m in run_with({"ping_interval": 0, "ping_timeout": 5})] == [
        "channels_sio.E003"
    ]


def test_every_problem_is_reported_once() -> None:
    messages = run_with(
        {
            "ping_intervall": 1,
            "ping_interval": -1,
            "connect_timeout": 0,
            "max_payload": 0,
            "transports": [],
            "path": "x",
            "cors_allowed_origins": ["x"],
            "allow_upgrades": None,
            "cors_credentials": None,
        }
    )
    assert [m.id for m in messages] == [
        "channels_sio.E002",
        "channels_sio.E003",
        "channels_sio.E003",
        "channels_sio.E004",
        "channels_sio.E006",
        "channels_sio.E007",
        "channels_sio.E008",
        "channels_sio.E009",
        "channels_sio.E009",
    ]
    assert all(m.hint for m in messages)


def test_e005_alone() -> None:
    [message] = run_with({"ping_interval": 1_000, "ping_timeout": 1_500})
    assert message.id == "channels_sio.E005"
    assert "25000 / 20000" in message.hint


IN_MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def recovery_ids(value: Any, **other: Any) -> list[str]:
    """The check ids for a recovery setting, with one process unless ``other`` says more."""
    layers = other.pop("CHANNEL_LAYERS", IN_MEMORY_LAYER)
    with override_settings(
        CHANNELS_SIO={"connection_state_recovery": value}, CHANNEL_LAYERS=layers, **other
    ):
        return [str(m.id) for m in sio_messages()]


@pytest.mark.parametrize(
    "value",
    [
        None,
        False,
        True,
        {},
        {"store": "memory"},
        {"store": "memory", "store_options": {"max_packets": 100}},
        {"store": "database", "max_disconnection_duration": 60_000, "skip_middlewares": False},
        {"store": "redis", "persist_live_sessions": True},
        {"store": "redis", "store_options": {"url": "redis://127.0.0.1:6379/3", "max_len": 500}},
        {"store": "channels_sio.recovery.memory.MemoryStore"},
    ],
)
def test_valid_recovery_settings_are_clean(value: Any) -> None:
    assert recovery_ids(value) == []


@pytest.mark.parametrize(
    ("value", "expected", "text"),
    [
        pytest.param("on", "E012", "must be None, True or a dict", id="not-a-dict"),
        pytest.param({"stor": "memory"}, "E013", "Did you mean 'store'?", id="unknown-key"),
        pytest.param(
            {"max_disconnection_duration": 0}, "E014", "positive number", id="duration-zero"
        ),
        pytest.param(
            {"max_disconnection_duration": "2m"}, "E014", "positive number", id="duration-str"
        ),
        pytest.param({"skip_middlewares": "yes"}, "E015", "True or False", id="skip-not-bool"),
        pytest.param(
            {"persist_live_sessions": 1}, "E027", "True or False", id="persist-live-not-bool"
        ),
        pytest.param({"store": "mongo"}, "E016", "is not a recovery store", id="unknown-store"),
        pytest.param(
            {"store": "django.db.models.Model"}, "E016", "not a RecoveryStore", id="not-a-store"
        ),
        pytest.param({"store": 3}, "E016", "is not a recovery store", id="store-not-str"),
        pytest.param({"store_options": []}, "E017", "must be a dict", id="options-not-dict"),
        pytest.param(
            {"store": "memory", "store_options": {"max_len": 5}},
            "E017",
            "do not suit MemoryStore",
            id="option-of-another-store",
        ),
    ],
)
def test_each_recovery_problem_has_its_own_id(value: Any, expected: str, text: str) -> None:
    with override_settings(
        CHANNELS_SIO={"connection_state_recovery": value}, CHANNEL_LAYERS=IN_MEMORY_LAYER
    ):
        [message] = sio_messages()
    assert message.id == f"channels_sio.{expected}"
    assert text in message.msg + str(message.hint)
    assert message.hint


def test_a_memory_store_cannot_serve_several_processes() -> None:
    redis_layer = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:6379", "socket_timeout": 10}]},
        }
    }
    ids = recovery_ids({"store": "memory"}, CHANNEL_LAYERS=redis_layer)
    assert "channels_sio.E018" in ids
    assert "channels_sio.E018" not in recovery_ids({"store": "redis"}, CHANNEL_LAYERS=redis_layer)
    assert recovery_ids({"store": "memory"}) == []  # the in-memory layer: one process


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        None,
        {},
        {"flush_interval": 1000, "fingerprint": ["user"]},
        {"trusted_proxy_header": "X-Forwarded-For", "storm_threshold": 5},
    ],
)
def test_valid_monitoring_settings_are_clean(value: Any) -> None:
    assert run_with({"monitoring": value}) == []


@pytest.mark.parametrize(
    ("value", "expected", "text"),
    [
        pytest.param("on", "E019", "must be True, False or a dict", id="not-a-dict"),
        pytest.param(
            {"flush_intervall": 1}, "E020", "Did you mean 'flush_interval'?", id="unknown-key"
        ),
        pytest.param({"zombie_grace": 0}, "E021", "positive number of ms", id="zero-grace"),
        pytest.param({"storm_threshold": "many"}, "E021", "positive number", id="threshold"),
        pytest.param({"fingerprint": ["ip"]}, "E022", "non-empty list", id="fingerprint"),
        pytest.param({"fingerprint": []}, "E022", "non-empty list", id="no-fingerprint"),
        pytest.param({"trusted_proxy_header": ""}, "E023", "header name", id="empty-header"),
    ],
)
def test_each_monitoring_problem_has_its_own_id(value: Any, expected: str, text: str) -> None:
    [message] = run_with({"monitoring": value})
    assert message.id == f"channels_sio.{expected}"
    assert text in message.msg + str(message.hint)


def test_max_queued_packets_is_checked() -> None:
    [message] = run_with({"max_queued_packets": 0})
    assert message.id == "channels_sio.E004"


@pytest.fixture
def without_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """redis-py and channels-redis as if the redis extra were not installed (None in
    sys.modules makes an import fail, and find_spec say nothing is there)."""
    for module in list(sys.modules):
        if module.partition(".")[0] in ("redis", "channels_redis") or module == (
            "channels_sio.recovery.redis"
        ):
            monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "channels_redis", None)


@pytest.mark.usefixtures("without_redis")
def test_the_redis_store_without_its_extra_names_the_extra() -> None:
    with override_settings(
        CHANNELS_SIO={"connection_state_recovery": {"store": "redis"}},
        CHANNEL_LAYERS=IN_MEMORY_LAYER,
    ):
        [message] = sio_messages()
    assert message.id == "channels_sio.E024"
    assert message.msg == (
        "CHANNELS_SIO['connection_state_recovery']['store'] 'redis' needs redis-py, "
        "which is not installed."
    )
    assert message.hint == 'pip install "channels-sio[redis]"'


@pytest.mark.usefixtures("without_redis")
def test_a_redis_channel_layer_without_its_extra_names_the_extra() -> None:
    layers = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer"},
        "other": {"BACKEND": "channels.layers.InMemoryChannelLayer"},
    }
    with override_settings(CHANNEL_LAYERS=layers):
        [message] = sio_messages()
    assert message.id == "channels_sio.E024"
    assert message.msg == (
        "CHANNEL_LAYERS['default'] (channels_redis.core.RedisChannelLayer) needs "
        "channels-redis, which is not installed."
    )
    assert message.hint == 'pip install "channels-sio[redis]"'


def test_extras_that_are_installed_raise_nothing() -> None:
    layers = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer"}}
    with override_settings(CHANNEL_LAYERS=layers):
        assert "channels_sio.E024" not in [m.id for m in sio_messages()]
    assert recovery_ids({"store": "redis"}) == []


def deploy_messages(value: Any) -> list[Any]:
    with override_settings(CHANNELS_SIO=value):
        return [
            m for m in run_checks(include_deployment_checks=True) if m.id == "channels_sio.W003"
        ]


def test_any_origin_warns_at_deploy_only() -> None:
    assert run_with({"cors_allowed_origins": "*"}) == []
    [message] = deploy_messages({"cors_allowed_origins": "*", "cors_credentials": False})
    assert isinstance(message, Warning)
    assert "pages of any origin may open Socket.IO connections" in message.msg
    assert message.hint.startswith('List the origins your pages are served from, e.g. ["https')


@pytest.mark.parametrize(
    "value",
    [{}, {"cors_allowed_origins": None}, {"cors_allowed_origins": ["https://example.com"]}, []],
)
def test_listed_or_same_origins_do_not_warn_at_deploy(value: Any) -> None:
    assert deploy_messages(value) == []
