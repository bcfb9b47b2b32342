"""channels_sio.conf: defaults, the CHANNELS_SIO overlay, lazy reading and cache reset."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from channels_sio import conf
from channels_sio.conf import DEFAULTS, SETTING_NAME, engineio_config, get, sio_settings
from channels_sio.engineio import EngineIOConfig
from channels_sio.origin import own_origin

EXPECTED_DEFAULTS = {
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


def test_setting_name() -> None:
    assert SETTING_NAME == "CHANNELS_SIO"


def test_defaults() -> None:
    assert DEFAULTS == EXPECTED_DEFAULTS


def test_test_project_sets_an_empty_dict() -> None:
    assert settings.CHANNELS_SIO == {}


def test_empty_setting_gives_the_defaults() -> None:
    assert sio_settings() == EXPECTED_DEFAULTS
    for name, value in EXPECTED_DEFAULTS.items():
        assert get(name) == value


def test_default_engineio_config() -> None:
    assert engineio_config() == EngineIOConfig()


def test_absent_setting_gives_the_defaults() -> None:
    with override_settings():
        del settings.CHANNELS_SIO
        assert conf.user_settings() == {}
        # Deleting a setting sends no setting_changed signal: clear by hand for this check.
        sio_settings.cache_clear()
        try:
            assert sio_settings() == EXPECTED_DEFAULTS
        finally:
            sio_settings.cache_clear()
    assert sio_settings() == EXPECTED_DEFAULTS


@override_settings(CHANNELS_SIO={"ping_interval": 30_000, "path": "/io/"})
def test_overlay_replaces_only_the_given_keys() -> None:
    assert sio_settings() == {**EXPECTED_DEFAULTS, "ping_interval": 30_000, "path": "/io/"}
    assert get("ping_interval") == 30_000
    assert get("ping_timeout") == 20_000
    assert get("path") == "/io/"


def test_overlay_does_not_touch_defaults() -> None:
    with override_settings(CHANNELS_SIO={"ping_interval": 30_000}):
        assert get("ping_interval") == 30_000
    assert DEFAULTS["ping_interval"] == 25_000


def test_get_unknown_name_raises_key_error() -> None:
    with pytest.raises(KeyError):
        get("no_such_setting")


def test_settings_are_cached() -> None:
    assert sio_settings() is sio_settings()
    assert engineio_config() is engineio_config()


def test_override_resets_the_caches() -> None:
    before_settings, before_config = sio_settings(), engineio_config()
    assert before_config.ping_interval == 25_000
    with override_settings(CHANNELS_SIO={"ping_interval": 1_000, "ping_timeout": 500}):
        assert get("ping_interval") == 1_000
        assert engineio_config().ping_interval == 1_000
        assert engineio_config().ping_timeout == 500
        assert sio_settings() is not before_settings
        with override_settings(CHANNELS_SIO={"ping_interval": 2_000, "ping_timeout": 500}):
            assert get("ping_interval") == 2_000
            assert engineio_config().ping_interval == 2_000
        assert get("ping_interval") == 1_000
        assert engineio_config().ping_interval == 1_000
    assert sio_settings() == before_settings
    assert engineio_config() == before_config
    assert engineio_config().ping_interval == 25_000


def test_settings_fixture_resets_the_caches(settings: Any) -> None:
    assert get("max_payload") == 1_000_000
    settings.CHANNELS_SIO = {"max_payload": 10}
    assert get("max_payload") == 10
    assert engineio_config().max_payload == 10


def test_other_settings_keep_the_cache() -> None:
    first = sio_settings()
    with override_settings(DEBUG=True):
        assert sio_settings() is first


def test_nothing_is_read_at_import() -> None:
    # In a fresh interpreter, import before settings exist: reading them would raise.
    script = (
        "import channels_sio.conf as conf, channels_sio.checks\n"
        "from django.conf import settings\n"
        "settings.configure(CHANNELS_SIO={'ping_interval': 7})\n"
        "print(conf.get('ping_interval'), conf.engineio_config().ping_interval)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "7 7\n"


def test_first_read_happens_on_first_use() -> None:
    sio_settings.cache_clear()
    engineio_config.cache_clear()
    with override_settings(CHANNELS_SIO={"connect_timeout": 5, "ping_interval": 30_000}):
        assert get("connect_timeout") == 5
        assert engineio_config().ping_interval == 30_000
    assert get("connect_timeout") == 45_000
    assert engineio_config().ping_interval == 25_000


@override_settings(
    CHANNELS_SIO={
        "ping_interval": 1_000,
        "ping_timeout": 900,
        "upgrade_timeout": 300,
        "max_payload": 4_096,
        "transports": ["websocket"],
        "allow_upgrades": False,
        "cors_allowed_origins": ["https://a.example", "http://b.example:8000"],
        "cors_credentials": False,
        "handshake_rate_limit": {"handshakes": 20, "window": 10_000},
    }
)
def test_engineio_config_from_settings() -> None:
    assert engineio_config() == EngineIOConfig(
        ping_interval=1_000,
        ping_timeout=900,
        upgrade_timeout=300,
        max_payload=4_096,
        transports=("websocket",),
        allow_upgrades=False,
        cors_allowed_origins=("https://a.example", "http://b.example:8000"),
        cors_credentials=False,
        handshake_rate_limit=(20, 10_000),
    )
    # Same origin is decided as Django decides a request's host (channels_sio.origin).
    assert engineio_config().own_origin is own_origin
    # Lists from settings become tuples: the config is immutable and hashable.
    assert engineio_config().transports == ("websocket",)
    assert engineio_config().cors_allowed_origins == ("https://a.example", "http://b.example:8000")


@pytest.mark.parametrize("origins", [None, "*"])
def test_engineio_config_keeps_none_and_star(origins: Any) -> None:
    with override_settings(CHANNELS_SIO={"cors_allowed_origins": origins}):
        assert engineio_config().cors_allowed_origins == origins


@pytest.mark.parametrize("value", [[], "not a dict", ("ping_interval", 1), None, 42], ids=repr)
def test_non_dict_setting_is_improperly_configured(value: Any) -> None:
    with override_settings(CHANNELS_SIO=value):
        with pytest.raises(ImproperlyConfigured, match=r"^CHANNELS_SIO must be a dict"):
            sio_settings()
        with pytest.raises(ImproperlyConfigured, match=r"^CHANNELS_SIO must be a dict"):
            engineio_config()
        with pytest.raises(ImproperlyConfigured):
            get("path")
    assert sio_settings() == EXPECTED_DEFAULTS


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"ping_interval": 0}, "ping_interval must be a positive integer, not 0"),
        ({"ping_timeout": -5}, "ping_timeout must be a positive integer, not -5"),
        ({"upgrade_timeout": "10"}, "upgrade_timeout must be a positive integer, not '10'"),
        ({"max_payload": True}, "max_payload must be a positive integer, not True"),
        ({"max_payload": 1.5}, "max_payload must be a positive integer, not 1.5"),
        ({"transports": []}, "transports must be a non-empty subset of"),
        ({"transports": ["flashsocket"]}, "transports must be a non-empty subset of"),
        ({"transports": "websocket"}, "transports must be a non-empty subset of"),
        ({"transports": None}, "object is not iterable"),
        (
            {"cors_allowed_origins": "https://example.com"},
            "cors_allowed_origins must be None, '*' or a sequence of origins",
        ),
        ({"cors_allowed_origins": [None]}, "cors_allowed_origins must be None, '*' or a"),
        ({"handshake_rate_limit": 20}, "handshake_rate_limit must be None or (handshakes, window)"),
        (
            {"handshake_rate_limit": {"handshakes": 20}},
            "handshake_rate_limit must be None or (handshakes, window), not (20, None)",
        ),
    ],
    ids=repr,
)
def test_invalid_values_are_improperly_configured(value: dict[str, Any], message: str) -> None:
    with override_settings(CHANNELS_SIO=value):
        with pytest.raises(ImproperlyConfigured) as info:
            engineio_config()
        assert str(info.value).startswith("CHANNELS_SIO: ")
        assert message in str(info.value)
        assert str(info.value).endswith(" (run manage.py check)")
        assert isinstance(info.value.__cause__, TypeError | ValueError)
    assert engineio_config() == EngineIOConfig()


def test_failed_config_is_not_cached() -> None:
    with override_settings(CHANNELS_SIO={"ping_interval": 0}):
        with pytest.raises(ImproperlyConfigured):
            engineio_config()
        with pytest.raises(ImproperlyConfigured):
            engineio_config()


def test_recovery_is_off_by_default() -> None:
    assert conf.recovery() is None
    assert conf.server_config().recovery is None


@pytest.mark.parametrize("value", [True, {}, {"store": "memory"}])
def test_recovery_settings_build_one_store_for_the_process(value: Any) -> None:
    with override_settings(
        CHANNELS_SIO={
            "connection_state_recovery": value if value is not True else {"store": "memory"}
        }
    ):
        recovery = conf.recovery()
        assert recovery is not None
        assert recovery is conf.recovery()  # cached: the server and emit() share the store
        assert recovery.skip_middlewares is True
        assert recovery.live is None  # sessions kept at disconnect only, by default
        assert recovery.store is recovery.store
        assert conf.server_config().recovery is recovery
    assert conf.recovery() is None  # reset when the setting changes


def test_recovery_options_reach_the_store() -> None:
    with override_settings(
        CHANNELS_SIO={
            "connection_state_recovery": {
                "store": "memory",
                "store_options": {"max_packets": 7, "replay_limit": 3},
                "max_disconnection_duration": 5000,
                "skip_middlewares": False,
                "persist_live_sessions": True,
            }
        }
    ):
        recovery = conf.recovery()
        assert recovery is not None
        store = recovery.store
        assert store.max_disconnection_duration == 5000
        assert store.replay_limit == 3
        assert store.max_packets == 7
        assert recovery.skip_middlewares is False
        assert recovery.live is not None


def test_monitoring_is_on_by_default_with_its_defaults() -> None:
    assert conf.monitoring_settings() == conf.MONITORING_DEFAULTS
    with override_settings(CHANNELS_SIO={"monitoring": False}):
        assert conf.monitoring_settings() is None
    with override_settings(CHANNELS_SIO={"monitoring": {"flush_interval": 1000}}):
        settings_ = conf.monitoring_settings()
        assert settings_ is not None
        assert settings_["flush_interval"] == 1000
        assert settings_["rules_interval"] == conf.MONITORING_DEFAULTS["rules_interval"]


def test_max_queued_packets_reaches_the_engine() -> None:
    with override_settings(CHANNELS_SIO={"max_queued_packets": 50}):
        assert engineio_config().max_queued_packets == 50
