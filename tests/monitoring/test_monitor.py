"""The Monitor in one process, on SQLite and PostgreSQL: what a flush writes and deletes, in
how many statements and in which thread; the rewrite after a failure or after being marked
gone; the warning when the tables are missing; the goodbye of a clean stop; the lease between
two monitors; the thread the signals are sent from."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from channels.db import database_sync_to_async
from django.core.asgi import get_asgi_application
from django.db import OperationalError, connections
from django.test import override_settings
from django.utils import timezone

from channels_sio import Socket
from channels_sio.asgi import get_application
from channels_sio.cluster.node import Node
from channels_sio.models import Alarm, Lease, LiveSession, LiveSocket, NodeSample
from channels_sio.models import Node as NodeRow
from channels_sio.monitoring import registry
from channels_sio.monitoring.service import Monitor
from channels_sio.signals import leak_detected
from channels_sio.socketio import SocketIOServer
from channels_sio.testing import SocketIOCommunicator

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

T = TypeVar("T")

#: Steps of the background task once an hour: the tests drive flush() and evaluate().
MANUAL = {"flush_interval": 3_600_000, "rules_interval": 3_600_000}


async def in_thread(using: str, function: Callable[[], T]) -> T:
    """``function`` (ORM calls) in a thread, its connection closed after."""

    def run() -> T:
        try:
            return function()
        finally:
            connections[using].close()

    return await asyncio.to_thread(run)


async def wait_until(probe: Callable[[], Any], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not probe():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@pytest.fixture
async def sio() -> AsyncIterator[SocketIOServer]:
    server = SocketIOServer(sync_runner=database_sync_to_async)

    @server.on("join")
    async def join(socket: Socket, room: str) -> str:
        socket.join(room)
        return room

    @server.on("hello")
    async def hello(socket: Socket) -> str:
        return "hi"

    yield server
    await server.shutdown()


MakeMonitor = Callable[..., Monitor]


@pytest.fixture
async def make_monitor(sio: SocketIOServer, using: str) -> AsyncIterator[MakeMonitor]:
    """Makes started monitors of ``sio`` (each a node of its own) on ``using``; stopped after."""
    made: list[Monitor] = []

    def make(**monitoring: Any) -> Monitor:
        with override_settings(CHANNELS_SIO={"monitoring": {**MANUAL, **monitoring}}):
            node = Node(sio)
            node.channel = f"channels_sio.node.{node.id}"
            monitor = Monitor(node, using=using)
        monitor.start()
        made.append(monitor)
        return monitor

    yield make
    for monitor in made:
        await monitor.stop()


@pytest.fixture
async def monitor(make_monitor: MakeMonitor) -> Monitor:
    """A started monitor whose first flush and evaluation are done."""
    made = make_monitor()
    await wait_until(lambda: made.holder)
    return made


def client_of(server: SocketIOServer, agent: str) -> SocketIOCommunicator:
    app = get_application(get_asgi_application(), server=server)
    return SocketIOCommunicator(app, headers=[(b"user-agent", agent.encode())])


async def connect(server: SocketIOServer, count: int, prefix: str = "ua") -> list[Any]:
    clients = [client_of(server, f"{prefix}-{n}") for n in range(count)]
    for client in clients:
        await client.connect()
    return clients


# -- the registry -------------------------------------------------------------------------


async def test_a_flush_mirrors_the_node_and_a_clean_stop_says_goodbye(
    monitor: Monitor, sio: SocketIOServer, using: str
) -> None:
    client = client_of(sio, "tests/1.0")
    await client.connect()
    assert await client.emit_with_ack("join", "lobby") == ["lobby"]
    sid = client.handshake["sid"]
    await monitor.flush()

    def read() -> tuple[Any, ...]:
        return (
            NodeRow.objects.using(using).get(),
            LiveSession.objects.using(using).get(),
            LiveSocket.objects.using(using).get(),
            NodeSample.objects.using(using).count(),
        )

    node, session, socket, samples = await in_thread(using, read)
    assert (node.id, node.pid, node.host) == (monitor.node.id, os.getpid(), node.host)
    assert node.channel == monitor.node.channel
    assert (node.sessions, node.sockets, node.gone_at) == (1, 1, None)
    assert set(node.report) >= {"closes", "events", "orphans", "storm", "slow"}
    assert node.packets_in_per_s > 0
    assert samples == 2
    assert session.sid == sid
    assert (session.node_id, session.state, session.transport) == (node.id, "live", "websocket")
    assert session.user_agent == "tests/1.0"
    assert session.fingerprint.startswith("address:") or session.fingerprint == ""
    assert (session.namespaces, session.socket_ids, session.rooms) == ("/", client.sid, "lobby")
    assert session.packets_in == 2  # CONNECT and the event
    assert session.handshake["headers"]["user-agent"] == "tests/1.0"
    assert (socket.id, socket.session_id, socket.namespace) == (client.sid, sid, "/")
    assert socket.rooms == ["lobby"]

    await client.disconnect()
    await wait_until(lambda: not sio.engine.sessions)
    await monitor.flush()
    assert await in_thread(using, lambda: LiveSession.objects.using(using).count()) == 0
    assert await in_thread(using, lambda: LiveSocket.objects.using(using).count()) == 0

    [other] = await connect(sio, 1)
    await monitor.flush()
    await monitor.stop()
    node = await in_thread(using, lambda: NodeRow.objects.using(using).get())
    assert node.gone_at is not None
    assert node.sessions == 0
    assert await in_thread(using, lambda: LiveSession.objects.using(using).count()) == 0
    assert await in_thread(using, lambda: Lease.objects.using(using).count()) == 0
    assert monitor.tracker not in sio.engine.observers
    await other.disconnect()


async def test_a_flush_costs_the_same_statements_for_3_sessions_as_for_12(
    monitor: Monitor, sio: SocketIOServer, statements: list[tuple[int, str]]
) -> None:
    def flush_statements() -> list[tuple[int, str]]:
        ran = list(statements)
        statements.clear()
        return ran

    statements.clear()
    few = await connect(sio, 3, "few")
    await monitor.flush()
    first = flush_statements()
    many = await connect(sio, 9, "many")
    await monitor.flush()
    second = flush_statements()
    assert len(first) == len(second), (first, second)
    # Closes and counter changes, no socket change: the socket statements are skipped.
    for client in few:
        await client.disconnect()
    for client in many:
        assert await client.emit_with_ack("hello") == ["hi"]
    await wait_until(lambda: len(sio.engine.sessions) == 9)
    await monitor.flush()
    third = flush_statements()
    assert len(third) <= len(second)
    loop_thread = threading.get_ident()
    threads = {thread for thread, _ in first + second + third}
    assert len(threads) == 1, "every statement in the monitor's thread"
    assert loop_thread not in threads, "none on the event loop"
    for client in many:
        await client.disconnect()


async def test_a_node_marked_gone_writes_all_its_rows_again(
    monitor: Monitor, sio: SocketIOServer, using: str
) -> None:
    clients = await connect(sio, 2)
    await monitor.flush()
    now = timezone.now()

    def mark_gone() -> None:
        NodeRow.objects.using(using).update(gone_at=now)
        LiveSession.objects.using(using).update(state=LiveSession.State.GONE)
        LiveSocket.objects.using(using).all().delete()

    await in_thread(using, mark_gone)
    await monitor.flush()

    def states() -> tuple[Any, ...]:
        return (
            NodeRow.objects.using(using).get().gone_at,
            sorted(LiveSession.objects.using(using).values_list("state", flat=True)),
            LiveSocket.objects.using(using).count(),
        )

    assert await in_thread(using, states) == (None, ["live", "live"], 2)
    for client in clients:
        await client.disconnect()


async def test_failed_flushes_warn_once_and_the_next_good_one_rewrites_everything(
    make_monitor: MakeMonitor,
    sio: SocketIOServer,
    using: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="channels_sio.monitoring")
    monitor = make_monitor(flush_interval=50)
    await wait_until(lambda: monitor.holder)
    clients = await connect(sio, 2)
    write = registry.write_flush
    failures = 0

    def failing(*args: Any) -> None:
        nonlocal failures
        if failures < 3:
            failures += 1
            raise OperationalError("the database went away")
        write(*args)

    monkeypatch.setattr(registry, "write_flush", failing)
    await wait_until(lambda: failures == 3)
    # Meanwhile a session closed, and its close is not in any later snapshot.
    await clients[0].disconnect()
    await wait_until(lambda: len(sio.engine.sessions) == 1)
    remaining = next(iter(sio.engine.sessions))

    def live() -> list[str]:
        return list(LiveSession.objects.using(using).values_list("sid", flat=True))

    async with asyncio.timeout(5):
        while await in_thread(using, live) != [remaining]:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    def messages() -> list[str]:
        return [r.getMessage() for r in caplog.records if "registry flush" in r.getMessage()]

    # The write commits in the database thread before the loop hears of it and logs.
    await wait_until(lambda: any("works again" in m for m in messages()))
    assert len([m for m in messages() if "failed" in m]) == 1, messages()
    assert "the database went away" in messages()[0]
    await clients[1].disconnect()


async def test_missing_tables_stop_monitoring_with_one_warning(
    make_monitor: MakeMonitor,
    sio: SocketIOServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(registry, "missing_tables", lambda using: ["channels_sio_node"])
    monitor = make_monitor(flush_interval=10)
    task = monitor._task
    assert task is not None
    await asyncio.wait_for(task, 5)
    [warning] = [r for r in caplog.records if r.name == "channels_sio.monitoring"]
    assert warning.levelno == logging.WARNING
    assert "run `manage.py migrate channels_sio`" in warning.getMessage()
    assert monitor.tracker not in sio.engine.observers
    await monitor.stop()  # nothing to say goodbye for


# -- the rules ----------------------------------------------------------------------------


async def test_one_of_two_monitors_holds_the_lease_and_hands_it_over_on_stop(
    make_monitor: MakeMonitor, using: str
) -> None:
    first = make_monitor()
    await wait_until(lambda: first.holder)
    second = make_monitor()
    await second.evaluate()
    assert (first.holder, second.holder) == (True, False)
    await first.stop()
    await second.evaluate()
    assert second.holder
    holder = await in_thread(using, lambda: Lease.objects.using(using).get().holder)
    assert holder == second.node.id


async def test_signals_are_sent_from_the_monitors_thread_and_receivers_use_the_orm(
    monitor: Monitor, using: str
) -> None:
    seen: list[tuple[int, str, bool]] = []

    def receiver(sender: Any, alarm: Alarm, **kwargs: Any) -> None:
        stored = Alarm.objects.using(using).filter(pk=alarm.pk, kind=alarm.kind).exists()
        seen.append((threading.get_ident(), alarm.fingerprint, stored))

    def dead_node() -> None:
        # Over 3 flush intervals (an hour each here) ago.
        long_ago = timezone.now() - timedelta(days=1)
        node = NodeRow.objects.using(using).create(
            id="deadbeef", host="h", pid=1, started_at=long_ago, last_heartbeat=long_ago
        )
        LiveSession.objects.using(using).create(
            sid="left-behind",
            node=node,
            transport="polling",
            connected_at=long_ago,
            updated_at=long_ago,
        )

    await in_thread(using, dead_node)
    leak_detected.connect(receiver)
    try:
        await monitor.evaluate()
    finally:
        leak_detected.disconnect(receiver)
    [(thread, fingerprint, stored)] = seen
    assert fingerprint == "deadbeef"
    assert stored, "the receiver reads the committed alarm"
    assert thread != threading.get_ident()
    alarm = await in_thread(using, lambda: Alarm.objects.using(using).get())
    assert (alarm.kind, alarm.severity, alarm.sids) == ("node_gone", "critical", ["left-behind"])
