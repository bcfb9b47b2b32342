"""The cluster over channels-redis's RedisPubSubChannelLayer, and the system checks that warn
about channel-layer settings redis-py 8 turns into failures (W001 / W002)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from channels_sio import checks

from .conftest import Driver, running_cluster

CORE = "channels_redis.core.RedisChannelLayer"
PUBSUB = "channels_redis.pubsub.RedisPubSubChannelLayer"
URL = "redis://127.0.0.1:6379/0"


@pytest.mark.redis
@pytest.mark.node
def test_cross_node_broadcast_over_the_pubsub_layer(redis_url: str, driver: Driver) -> None:
    settings = "tests.cluster.settings_pubsub"
    with running_cluster(redis_url, settings, ("uvicorn", "daphne")) as cluster:
        ids = {}
        for node in (0, 1):
            url = cluster[node].url
            ids[f"M{node}"] = driver("open", name=f"M{node}", url=url, auth={"rooms": ["r"]})["id"]
            ids[f"N{node}"] = driver("open", name=f"N{node}", url=url)["id"]
        everyone = sorted(ids)
        for number, sender in enumerate(("N0", "N1", "M1")):
            token = f"cast-{number}"
            spec = {"event": "news", "args": [token], "to": "r", "flush": token}
            driver("call", name=sender, event="cast", args=[spec])
            for name in everyone:
                driver("wait", name=name, event="flush")
                got = [e for e in driver("events", name=name, clear=True) if e[0] != "flush"]
                assert got == ([["news", token]] if name.startswith("M") else []), name
        # Requests and replies too.
        answer = driver("call", name="N1", event="ask-all", args=[{"to": "r", "timeout": 3000}])
        assert answer == {"responses": ["M0", "M1"]}
        found = driver("call", name="N0", event="fetch", args=[{}])
        assert sorted(s["id"] for s in found) == sorted(ids.values())
        nodes = sorted(s["node"] for s in found)
        assert nodes == sorted([cluster.ids[0], cluster.ids[1]] * 2)


def layer_warnings(layers: dict[str, Any]) -> list[tuple[str, str]]:
    with override_settings(CHANNEL_LAYERS=layers):
        return [
            (str(m.id), m.msg)
            for m in run_checks()
            if str(m.id) in ("channels_sio.W001", "channels_sio.W002")
        ]


def ids_of(layers: dict[str, Any]) -> list[str]:
    return [warning_id for warning_id, _ in layer_warnings(layers)]


@pytest.fixture
def redis_py_8(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "_redis_major", lambda: 8)


@pytest.mark.usefixtures("redis_py_8")
@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        pytest.param({"BACKEND": CORE, "CONFIG": {"hosts": [URL]}}, ["W001", "W002"], id="url"),
        pytest.param({"BACKEND": CORE}, ["W001", "W002"], id="no-config"),
        pytest.param({"BACKEND": CORE, "CONFIG": {}}, ["W001", "W002"], id="no-hosts"),
        pytest.param(
            {"BACKEND": CORE, "CONFIG": {"hosts": [("127.0.0.1", 6379)]}},
            ["W001", "W002"],
            id="tuple",
        ),
        pytest.param(
            {"BACKEND": CORE, "CONFIG": {"hosts": [{"address": URL, "socket_timeout": 5}]}},
            ["W001", "W002"],
            id="timeout-5",
        ),
        pytest.param(
            {
                "BACKEND": CORE,
                "CONFIG": {
                    "hosts": [{"address": URL, "socket_timeout": 10, "max_connections": 1000}]
                },
            },
            [],
            id="fixed",
        ),
        pytest.param(
            {
                "BACKEND": CORE,
                "CONFIG": {
                    "hosts": [{"address": URL, "socket_timeout": None, "max_connections": 500}]
                },
            },
            [],
            id="no-timeout",
        ),
        pytest.param(
            {"BACKEND": CORE, "CONFIG": {"hosts": [{"address": URL, "max_connections": 500}]}},
            ["W001"],
            id="default-timeout",
        ),
        pytest.param(
            {"BACKEND": CORE, "CONFIG": {"hosts": [{"address": URL, "socket_timeout": 10}]}},
            ["W002"],
            id="no-max-connections",
        ),
        # The pub/sub layer does no blocking pop: only the pool cap concerns it.
        pytest.param({"BACKEND": PUBSUB, "CONFIG": {"hosts": [URL]}}, ["W002"], id="pubsub"),
        pytest.param(
            {"BACKEND": PUBSUB, "CONFIG": {"hosts": [{"address": URL, "max_connections": 500}]}},
            [],
            id="pubsub-fixed",
        ),
        pytest.param({"BACKEND": "channels.layers.InMemoryChannelLayer"}, [], id="in-memory"),
    ],
)
def test_redis_layer_warnings(layer: dict[str, Any], expected: list[str]) -> None:
    assert ids_of({"default": layer}) == [f"channels_sio.{e}" for e in expected]


@pytest.mark.usefixtures("redis_py_8")
def test_each_host_and_each_layer_is_checked() -> None:
    fixed = {"address": URL, "socket_timeout": 10, "max_connections": 1000}
    layers = {
        "default": {"BACKEND": CORE, "CONFIG": {"hosts": [fixed, URL]}},
        "other": {"BACKEND": PUBSUB, "CONFIG": {"hosts": [URL]}},
    }
    warnings = layer_warnings(layers)
    assert [w for w, _ in warnings] == [
        "channels_sio.W001",
        "channels_sio.W002",
        "channels_sio.W002",
    ]
    assert warnings[0][1].startswith("CHANNEL_LAYERS['default']: redis-py 8 times sockets out")
    assert warnings[2][1].startswith("CHANNEL_LAYERS['other']: redis-py 8 caps each connection")


@pytest.mark.usefixtures("redis_py_8")
def test_warnings_carry_the_fix_in_their_hint() -> None:
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": CORE}}):
        found = {str(m.id): m for m in checks.check_channel_layers()}
    assert '"socket_timeout": 10' in found["channels_sio.W001"].hint
    assert '"max_connections": 1000' in found["channels_sio.W002"].hint


def test_no_warning_before_redis_py_8(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "_redis_major", lambda: 7)
    assert ids_of({"default": {"BACKEND": CORE}}) == []
