"""Leaks reproduced against a real server process (uvicorn, settings_monitoring, a SQLite
file of its own), each alarm (or its absence) read from the registry tables: the duplicate
client, the reconnect storm, the client that stops answering pings, the session that joins no
namespace, the second WebSocket for an upgraded session, the client that stops reading, a
healthy client, and a clean stop under uvicorn and daphne. Every server is stopped with
SIGTERM at the end, which must leave no session row and its node marked gone."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.support.driver import Driver
from tests.support.servers import ServerProcess

from .e2e import (
    SEP,
    SETTINGS,
    Monitored,
    RawClient,
    headers,
    manage,
    polling_handshake,
    polling_url,
    running,
    sqlite_registry,
)

T = TypeVar("T")


async def off(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A blocking registry wait, off the loop (the raw clients answer pings meanwhile)."""
    return await asyncio.to_thread(function, *args, **kwargs)


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database with every migration applied, copied for each test."""
    path = tmp_path_factory.mktemp("monitoring") / "migrated.sqlite3"
    manage({"EXAMPLE_DB": str(path)}, "migrate", "--noinput")
    return path


@pytest.fixture
def database(migrated: Path, tmp_path: Path) -> Path:
    path = tmp_path / "db.sqlite3"
    shutil.copy(migrated, path)
    return path


MakeClient = Callable[..., RawClient]


@pytest.fixture
async def raw() -> AsyncIterator[MakeClient]:
    """Makes raw clients (RawClient's arguments), all closed after the test."""
    made: list[RawClient] = []

    def make(*args: Any, **kwargs: Any) -> RawClient:
        client = RawClient(*args, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
def server(database: Path) -> Iterator[Monitored]:
    """A uvicorn server on a database of this test's own, stopped cleanly after it."""
    with running("uvicorn", {"EXAMPLE_DB": str(database)}, sqlite_registry(database)) as server:
        yield server


def alarms_of(server: Monitored) -> list[tuple[str, str]]:
    return sorted((a["kind"], a["fingerprint"]) for a in server.registry.alarms())


async def settle(server: Monitored, seconds: float) -> None:
    """Let the rules run for ``seconds``: longer than the grace of the rule checked."""
    await asyncio.sleep(seconds)
    # The node still heartbeats: the rules ran over fresh rows meanwhile.
    node = server.registry.node(server.pid)
    assert node is not None
    assert node["gone_at"] is None


async def test_a_second_session_of_one_client_is_a_duplicate_until_the_first_closes(
    server: Monitored, raw: MakeClient
) -> None:
    address, agent = "10.1.0.1", "leaky-app/1.0"
    first = await raw(server.process, address, agent).open()
    second = await raw(server.process, address, agent).open()
    fingerprint = f"address:{address}|{agent}"
    alarm = await off(server.registry.wait_alarm, "duplicate", fingerprint)
    assert alarm["severity"] == "warning"
    assert sorted(alarm["sids"]) == sorted([first.sid, second.sid])
    assert alarm["details"]["sessions"] == 2
    # Both keep answering pings: neither is a zombie, both are live in the registry.
    for client in (first, second):
        row = server.registry.session(client.sid)
        assert row is not None
        assert (row["state"], row["namespaces"], row["address"]) == ("live", "/", address)
    # What a deploy script sees.
    env = server.process.extra_env
    status = await off(manage, env, "socketio_status", "--json", "--fail-on", "warning", expect=2)
    shown = json.loads(status.stdout)
    assert [(a["kind"], a["fingerprint"]) for a in shown["alarms"]] == [("duplicate", fingerprint)]
    assert {first.sid, second.sid} <= {s["sid"] for s in shown["sessions"]}

    await first.close()

    def resolved() -> bool:
        return all(a["resolved_at"] for a in server.registry.alarms("duplicate"))

    await off(server.registry.wait, resolved, "the duplicate alarm resolved")
    [row] = server.registry.alarms("duplicate")
    assert row["count"] >= 2
    await second.close()
    log = server.log()
    assert log.count("leak alarm raised: duplicate client") == 1
    assert f"signal leak_detected duplicate {fingerprint} resolved=False" in log
    assert f"signal leak_resolved duplicate {fingerprint} resolved=True" in log
    assert "thread=channels-sio-monitoring" in log


async def test_a_client_sending_malformed_packets_in_a_loop_is_a_storm(
    server: Monitored, raw: MakeClient
) -> None:
    address = "10.2.0.1"
    for _ in range(15):  # storm_threshold is 10
        client = await raw(server.process, address, "storm/1.0").open()
        await client.send("42[null,null]")  # no event name: a parse error closes the session
        await client.closed_by_server()
    alarm = await off(server.registry.wait_alarm, "storm", address)
    assert alarm["details"]["events"] == 15
    assert alarm["details"]["by_kind"] == {"parse error": 15}
    # No session left behind, in the server or in the registry.
    await off(
        server.registry.wait,
        lambda: not server.registry.sessions("address = ?", address),
        "no session of the storm left",
    )
    assert not server.process.state()["socketio"]["sessions"]  # type: ignore[index]
    closes = server.registry.node(server.pid)["report"]["closes"]  # type: ignore[index]
    assert closes["parse error"] == 15
    # The window (5 s) passes: it resolves itself.
    await off(
        server.registry.wait,
        lambda: server.registry.alarms("storm")[0]["resolved_at"],
        "the storm alarm resolved",
    )
    assert "signal leak_resolved storm 10.2.0.1" in server.log()


async def test_a_client_that_stops_answering_pings_is_closed_by_the_heartbeat(
    server: Monitored, raw: MakeClient
) -> None:
    # Its TCP connection stays open: only the heartbeat can tell it is gone.
    client = await raw(server.process, "10.3.0.1", "silent/1.0", pong=False).open()
    started = time.monotonic()
    await client.closed_by_server()
    assert time.monotonic() - started < 1.8 + 2.0  # ping_interval + ping_timeout, and slack
    await off(
        server.registry.wait,
        lambda: server.registry.session(client.sid) is None,
        "its row deleted",
    )
    await settle(server, 3.5)  # past the zombie bound (2.8 s)
    assert alarms_of(server) == []
    report = server.registry.node(server.pid)["report"]  # type: ignore[index]
    assert report["closes"] == {"ping timeout": 1}
    await client.close()


async def test_a_session_that_joins_no_namespace_is_closed_by_the_connect_timeout(
    server: Monitored, raw: MakeClient
) -> None:
    client = await raw(server.process, "10.4.0.1", "lost/1.0").open(join=False)
    await off(
        server.registry.wait,
        lambda: server.registry.session(client.sid),
        "its row, in no namespace",
    )
    assert server.registry.session(client.sid)["namespaces"] == ""  # type: ignore[index]
    await client.closed_by_server()  # connect_timeout: 1 s
    await off(
        server.registry.wait,
        lambda: server.registry.session(client.sid) is None,
        "its row deleted",
    )
    await settle(server, 3.0)  # past the stuck bound (2.5 s)
    assert alarms_of(server) == []
    assert server.registry.alarms(open_only=True) == []
    await client.close()


async def test_a_second_websocket_for_an_upgraded_session_is_refused_and_leaks_nothing(
    server: Monitored, raw: MakeClient
) -> None:
    address, agent = "10.5.0.1", "upgrader/1.0"
    async with httpx.AsyncClient(timeout=5) as http:
        sid = await polling_handshake(http, server.process, address, agent)
        url = polling_url(server.process, sid=sid)
        assert (await http.post(url, content="40")).text == "ok"
        assert (await http.get(url)).text.startswith("40{")
        upgraded = await raw(server.process, address, agent).open(sid=sid)
        await upgraded.send("2probe")
        assert await upgraded.recv_until("3") == "3probe"
        await upgraded.send("5")
        await off(
            server.registry.wait,
            lambda: (server.registry.session(sid) or {}).get("upgrade") == "upgraded",
            "the session upgraded in the registry",
        )
        second = await raw(server.process, address, agent).open(sid=sid)
        await second.closed_by_server()  # accepted and closed at once
        await second.close()
        # The session works on as before.
        await upgraded.send('42["message","still here"]')
        assert await upgraded.recv_until('42["message-back"') == '42["message-back","still here"]'
        await settle(server, 2.5)  # past the orphan grace (1.5 s)
        assert alarms_of(server) == []
        row = server.registry.session(sid)
        assert row is not None
        assert (row["transport"], row["upgrade"], row["namespaces"]) == (
            "websocket",
            "upgraded",
            "/",
        )
        assert server.registry.node(server.pid)["report"]["orphans"] == []  # type: ignore[index]
        await upgraded.close()
    await off(server.registry.wait, lambda: server.registry.session(sid) is None, "its row deleted")


async def test_a_client_that_stops_reading_is_closed_at_the_bound_and_is_a_slow_consumer(
    server: Monitored,
) -> None:
    address = "10.6.0.1"
    async with httpx.AsyncClient(timeout=5) as http:
        sid = await polling_handshake(http, server.process, address, "reader/1.0")
        url = polling_url(server.process, sid=sid)
        assert (await http.post(url, content="40")).text == "ok"
        assert (await http.get(url)).text.startswith("40{")
        # 30 events, each answered, while it polls no more: over max_queued_packets (20).
        body = SEP.join(f'42["message",{n}]' for n in range(30))
        await http.post(url, content=body)
        alarm = await off(server.registry.wait_alarm, "slow_consumer", address)
    assert alarm["sids"] == [sid]
    assert alarm["details"]["closed"] == 1
    assert server.registry.session(sid) is None
    report = server.registry.node(server.pid)["report"]  # type: ignore[index]
    assert report["closes"] == {"send queue full": 1}
    assert "leak alarm raised: slow consumer (warning): 1 session(s) of 10.6.0.1" in server.log()


def healthy_client(server: Monitored, seconds: float) -> None:
    """The official client (polling, then WebSocket) connected for ``seconds``, acknowledging
    an event every two seconds: no alarm, ever."""
    address = "10.7.0.1"
    driver = Driver(deadline=seconds + 60)
    try:
        opened = driver(
            "open",
            name="H",
            url=server.process.url,
            nsp="/",
            transports="polling,websocket",
            headers=headers(address, "healthy/1.0"),
        )
        sid = opened["eio"]
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            assert driver("call", name="H", event="message-with-ack", args=[n]) == n
            assert server.registry.alarms() == [], server.registry.alarms()
            n += 1
            time.sleep(2)
        row = server.registry.session(sid)
        assert row is not None
        assert (row["state"], row["transport"], row["upgrade"]) == ("live", "websocket", "upgraded")
        assert row["rtt_ms"] is not None
        assert row["packets_in"] > n
        node = server.registry.node(server.pid)
        assert node is not None
        assert node["sessions"] == 1
        driver("leave", name="H")
        server.registry.wait(lambda: server.registry.session(sid) is None, "its row deleted")
        assert server.registry.alarms() == []
    finally:
        driver.close()


def test_a_healthy_client_raises_no_alarm(server: Monitored) -> None:
    healthy_client(server, 10)


@pytest.mark.slow
@pytest.mark.wall_clock
@pytest.mark.timeout(240)
def test_a_healthy_client_connected_for_100_seconds_raises_no_alarm(server: Monitored) -> None:
    healthy_client(server, 100)


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
async def test_a_clean_stop_leaves_no_rows_and_no_node_gone_alarm(
    database: Path, kind: str, raw: MakeClient
) -> None:
    registry = sqlite_registry(database)
    env = {"EXAMPLE_DB": str(database)}
    with running(kind, env, registry) as first:
        client = await raw(first.process, "10.8.0.1", "stayer/1.0").open()
        await off(registry.wait, lambda: registry.session(client.sid), "its row")
        gone_id = first.node()["id"]
    # running() stopped it with SIGTERM and checked its goodbye.
    await client.close()
    with running(kind, env, registry) as second:
        # The next node evaluates the rules: the first one left no session, so no alarm; after
        # the retention (3 s) its row is purged.
        await off(
            registry.wait,
            lambda: not registry.table("node", "id = ?", gone_id),
            "the first node's row purged",
        )
        assert second.node()["gone_at"] is None
        assert registry.alarms() == []


async def test_a_server_on_an_unmigrated_database_warns_once_and_serves(
    tmp_path: Path, raw: MakeClient
) -> None:
    process = ServerProcess("uvicorn", SETTINGS, {"EXAMPLE_DB": str(tmp_path / "empty.sqlite3")})
    await off(process.start)
    try:
        client = await raw(process, "10.9.0.1", "early/1.0").open()
        await client.send('42["message","hi"]')
        assert await client.recv_until('42["message-back"') == '42["message-back","hi"]'
        await asyncio.sleep(1.0)  # a few flush intervals
        await client.close()
    finally:
        await off(process.stop)
    log = process.log()
    assert log.count("manage.py migrate channels_sio") == 1, log
    assert "Traceback" not in log
