"""The Session state machine, heartbeat and close, driven through a real EngineIOServer.

The transport is a small recording stand-in: these are unit tests of the state machine. The
protocol itself is tested against the official clients in tests/transports.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from channels_sio.engineio.config import EngineIOConfig
from channels_sio.engineio.errors import CloseReason
from channels_sio.engineio.http import HttpRequest
from channels_sio.engineio.packet import Packet, PacketType
from channels_sio.engineio.server import EngineIOServer
from channels_sio.engineio.session import (
    InvalidTransition,
    Session,
    SessionState,
    Transport,
    UpgradeState,
)

PING_INTERVAL = 50  # ms
PING_TIMEOUT = 40  # ms
LOGGER = "channels_sio.engineio"


class RecordingTransport(Transport):
    """Records what the session writes and how it is closed; can hold writes back."""

    def __init__(self, name: str = "polling") -> None:
        self.name = name
        self.session: Session | None = None
        self.written: list[Packet] = []
        self.closed: list[CloseReason] = []
        self.state_at_close: SessionState | None = None
        self.hold_pings = False  # when set, writing a PING never completes
        self._changed = asyncio.Event()

    @property
    def writable(self) -> bool:
        return True

    @property
    def queued(self) -> int:
        return 0

    async def write(self, packets: list[Packet]) -> None:
        self.written.extend(packets)
        self._changed.set()
        if self.hold_pings and any(p.type is PacketType.PING for p in packets):
            await asyncio.Event().wait()

    async def close(self, reason: CloseReason) -> None:
        if self.session is not None and self.state_at_close is None:
            self.state_at_close = self.session.state
        self.closed.append(reason)
        self._changed.set()

    def of_type(self, packet_type: PacketType) -> list[Packet]:
        return [p for p in self.written if p.type is packet_type]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(1):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


class Recorder:
    """The application handlers of the server under test."""

    def __init__(self) -> None:
        self.connected: list[Session] = []
        self.messages: list[tuple[Session, str | bytes]] = []
        self.disconnects: list[tuple[Session, CloseReason, SessionState]] = []
        self.disconnected = asyncio.Event()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def make_server(recorder: Recorder, **options: int) -> EngineIOServer:
    """A server whose handlers tell ``recorder``; fast heartbeats unless ``options`` say."""
    config = {"ping_interval": PING_INTERVAL, "ping_timeout": PING_TIMEOUT, **options}
    eio = EngineIOServer(EngineIOConfig(**config))

    @eio.on_connect
    async def connect(session: Session) -> None:
        recorder.connected.append(session)

    @eio.on_message
    async def message(session: Session, data: str | bytes) -> None:
        recorder.messages.append((session, data))

    @eio.on_disconnect
    async def disconnect(session: Session, reason: CloseReason) -> None:
        recorder.disconnects.append((session, reason, session.state))
        recorder.disconnected.set()

    return eio


@pytest.fixture
async def server(recorder: Recorder) -> AsyncIterator[EngineIOServer]:
    eio = make_server(recorder)
    yield eio
    await eio.shutdown()
    assert eio.sessions == {}


def handshake_request() -> HttpRequest:
    return HttpRequest("GET", {"EIO": "4", "transport": "polling"}, {}, context={"type": "test"})


async def open_session(
    server: EngineIOServer, transport: RecordingTransport | None = None
) -> tuple[Session, RecordingTransport]:
    transport = transport or RecordingTransport()
    session = await server._open_session(transport, handshake_request())
    assert session is not None
    return session, transport


async def settle(session: Session) -> None:
    """Let cancelled background tasks finish, with a bound."""
    async with asyncio.timeout(1):
        while session._tasks:
            await asyncio.wait(set(session._tasks))


# -- opening ------------------------------------------------------------------------------


async def test_open_writes_the_handshake_and_registers(
    server: EngineIOServer, recorder: Recorder
) -> None:
    session, transport = await open_session(server)
    assert len(transport.written) == 1
    opening = transport.written[0]
    assert opening.type is PacketType.OPEN
    assert isinstance(opening.data, str)
    assert json.loads(opening.data) == {
        "sid": session.sid,
        "upgrades": ["websocket"],
        "pingInterval": PING_INTERVAL,
        "pingTimeout": PING_TIMEOUT,
        "maxPayload": 1_000_000,
    }
    # Compact JSON, keys in the order Node's engine.io writes them.
    assert opening.data == (
        f'{{"sid":"{session.sid}","upgrades":["websocket"],"pingInterval":50,'
        '"pingTimeout":40,"maxPayload":1000000}'
    )
    assert session.state is SessionState.OPEN
    assert session.upgrade_state is UpgradeState.NONE
    assert session.close_reason is None
    assert transport.session is session
    assert session.context == {"type": "test"}
    assert server.sessions == {session.sid: session}
    assert recorder.connected == [session]


async def test_sids_are_unguessable_and_distinct(server: EngineIOServer) -> None:
    sessions = [(await open_session(server))[0] for _ in range(20)]
    sids = {s.sid for s in sessions}
    assert len(sids) == 20
    for sid in sids:
        assert len(sid) == 22  # 16 random bytes (128 bits), urlsafe base64
        assert sid.replace("-", "").replace("_", "").isalnum()


async def test_websocket_handshake_offers_no_upgrade(server: EngineIOServer) -> None:
    _, transport = await open_session(server, RecordingTransport("websocket"))
    assert isinstance(transport.written[0].data, str)
    assert json.loads(transport.written[0].data)["upgrades"] == []


async def test_refused_connect_closes_during_opening_without_disconnect(
    recorder: Recorder,
) -> None:
    eio = EngineIOServer(EngineIOConfig(ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT))
    states: list[SessionState] = []

    @eio.on_connect
    async def refuse(session: Session) -> bool:
        states.append(session.state)
        return False

    @eio.on_disconnect
    async def disconnect(session: Session, reason: CloseReason) -> None:
        recorder.disconnects.append((session, reason, session.state))

    transport = RecordingTransport()
    assert await eio._open_session(transport, handshake_request()) is None
    assert states == [SessionState.OPENING]
    assert transport.closed == [CloseReason.FORCED_CLOSE]
    assert transport.state_at_close is SessionState.CLOSING
    assert transport.session is not None
    assert transport.session.state is SessionState.CLOSED
    assert recorder.disconnects == []
    assert eio.sessions == {}


async def test_connect_handler_exception_refuses_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    eio = EngineIOServer()

    @eio.on_connect
    async def broken(session: Session) -> None:
        raise RuntimeError("connect boom")

    transport = RecordingTransport()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert await eio._open_session(transport, handshake_request()) is None
    assert transport.closed == [CloseReason.FORCED_CLOSE]
    assert eio.sessions == {}
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith("Engine.IO connect handler failed; refusing session ")
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "connect boom"


# -- the state machine --------------------------------------------------------------------


async def test_opening_open_closing_closed(server: EngineIOServer, recorder: Recorder) -> None:
    transport = RecordingTransport()
    session = Session(server, "the-sid", transport, None)
    transport.session = session
    server.sessions[session.sid] = session
    assert session.state is SessionState.OPENING
    assert session.is_open

    session.start()
    assert session.state is SessionState.OPEN
    assert session.is_open

    await session.close(CloseReason.FORCED_CLOSE)
    # The transport and the disconnect handler see the session while it is closing.
    assert transport.state_at_close is SessionState.CLOSING
    assert [(s, r, st) for s, r, st in recorder.disconnects] == [
        (session, CloseReason.FORCED_CLOSE, SessionState.CLOSING)
    ]
    assert session.state is SessionState.CLOSED
    assert not session.is_open
    assert session.close_reason is CloseReason.FORCED_CLOSE
    assert repr(session) == "<Session the-sid closed polling>"


async def test_close_defaults_to_forced_close(server: EngineIOServer, recorder: Recorder) -> None:
    session, transport = await open_session(server)
    await session.close()
    assert session.close_reason is CloseReason.FORCED_CLOSE
    assert transport.closed == [CloseReason.FORCED_CLOSE]


async def test_close_during_opening_skips_disconnect_handler(
    server: EngineIOServer, recorder: Recorder
) -> None:
    transport = RecordingTransport()
    session = Session(server, "opening-sid", transport, None)
    transport.session = session
    server.sessions[session.sid] = session
    await session.close(CloseReason.TRANSPORT_CLOSE)
    assert session.state is SessionState.CLOSED
    assert transport.closed == [CloseReason.TRANSPORT_CLOSE]
    assert recorder.disconnects == []
    assert server.sessions == {}


async def test_start_twice_is_invalid(server: EngineIOServer) -> None:
    session, _ = await open_session(server)
    with pytest.raises(InvalidTransition, match=f"^session {session.sid}: open -> open$"):
        session.start()
    assert session.state is SessionState.OPEN


async def test_start_after_close_is_invalid(server: EngineIOServer) -> None:
    session, transport = await open_session(server)
    await session.close()
    with pytest.raises(InvalidTransition, match=r"closed -> open$"):
        session.start()
    assert session.state is SessionState.CLOSED
    # No heartbeat was started by the refused transition.
    await asyncio.sleep(PING_INTERVAL * 1.5 / 1000)
    assert transport.of_type(PacketType.PING) == []


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ([], UpgradeState.UPGRADED),
        ([], UpgradeState.UPGRADING),
        ([], UpgradeState.NONE),
        ([UpgradeState.PROBING], UpgradeState.PROBING),
        ([UpgradeState.PROBING], UpgradeState.UPGRADED),
        ([UpgradeState.PROBING, UpgradeState.UPGRADING], UpgradeState.PROBING),
        ([UpgradeState.PROBING, UpgradeState.UPGRADING, UpgradeState.UPGRADED], UpgradeState.NONE),
    ],
    ids=lambda v: v.value if isinstance(v, UpgradeState) else "-".join(s.value for s in v),
)
async def test_impossible_upgrade_transitions(
    server: EngineIOServer, path: list[UpgradeState], bad: UpgradeState
) -> None:
    session, _ = await open_session(server)
    for state in path:
        session._set_upgrade_state(state)
    before = session.upgrade_state
    with pytest.raises(InvalidTransition, match=f"upgrade: {before.value} -> {bad.value}$"):
        session._set_upgrade_state(bad)
    assert session.upgrade_state is before


async def test_invalid_transition_is_a_runtime_error() -> None:
    assert issubclass(InvalidTransition, RuntimeError)


# -- close ----------------------------------------------------------------------------------


async def test_close_is_idempotent(server: EngineIOServer, recorder: Recorder) -> None:
    session, transport = await open_session(server)
    await session.close(CloseReason.PARSE_ERROR)
    await session.close(CloseReason.TRANSPORT_CLOSE)
    await session.close(CloseReason.SERVER_SHUTTING_DOWN)
    assert session.state is SessionState.CLOSED
    assert session.close_reason is CloseReason.PARSE_ERROR
    assert transport.closed == [CloseReason.PARSE_ERROR]
    assert [(s, r) for s, r, _ in recorder.disconnects] == [(session, CloseReason.PARSE_ERROR)]


async def test_concurrent_closes_run_once(server: EngineIOServer, recorder: Recorder) -> None:
    session, transport = await open_session(server)
    await asyncio.gather(
        session.close(CloseReason.TRANSPORT_ERROR), session.close(CloseReason.PING_TIMEOUT)
    )
    assert transport.closed == [CloseReason.TRANSPORT_ERROR]
    assert [r for _, r, _ in recorder.disconnects] == [CloseReason.TRANSPORT_ERROR]


async def test_close_from_the_disconnect_handler_does_not_reenter() -> None:
    eio = EngineIOServer()
    calls: list[CloseReason] = []

    @eio.on_disconnect
    async def disconnect(session: Session, reason: CloseReason) -> None:
        calls.append(reason)
        await session.close(CloseReason.FORCED_CLOSE)

    session, transport = await open_session(eio)
    await session.close(CloseReason.TRANSPORT_CLOSE)
    assert calls == [CloseReason.TRANSPORT_CLOSE]
    assert transport.closed == [CloseReason.TRANSPORT_CLOSE]
    assert session.state is SessionState.CLOSED


async def test_disconnect_handler_exception_is_logged_and_close_completes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    eio = EngineIOServer()

    @eio.on_disconnect
    async def broken(session: Session, reason: CloseReason) -> None:
        raise RuntimeError("disconnect boom")

    session, _ = await open_session(eio)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        await session.close(CloseReason.TRANSPORT_CLOSE)
    assert session.state is SessionState.CLOSED
    assert eio.sessions == {}
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert record.getMessage() == f"Engine.IO disconnect handler failed (session {session.sid})"
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "disconnect boom"


async def test_transport_close_failure_still_ends_closed_and_disconnects(
    server: EngineIOServer, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    class FailingClose(RecordingTransport):
        async def close(self, reason: CloseReason) -> None:
            await super().close(reason)
            raise OSError("socket gone")

    session, transport = await open_session(server, FailingClose())
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        await session.close(CloseReason.TRANSPORT_ERROR)
    assert "closing the transport failed" in caplog.text
    # The layers above heard of it: otherwise its sockets, rooms and acks would stay behind.
    assert [(s, r) for s, r, _ in recorder.disconnects] == [(session, CloseReason.TRANSPORT_ERROR)]
    assert session.state is SessionState.CLOSED
    assert session.sid not in server.sessions
    await session.close(CloseReason.FORCED_CLOSE)  # still idempotent afterwards
    assert transport.closed == [CloseReason.TRANSPORT_ERROR]


async def test_close_forgets_the_sid(server: EngineIOServer) -> None:
    session, _ = await open_session(server)
    other, _ = await open_session(server)
    assert set(server.sessions) == {session.sid, other.sid}
    await session.close()
    assert server.sessions == {other.sid: other}


async def test_forget_leaves_another_session_with_the_same_sid(server: EngineIOServer) -> None:
    session, _ = await open_session(server)
    stale = Session(server, session.sid, RecordingTransport(), None)
    server.forget(stale)
    assert server.sessions == {session.sid: session}


async def test_shutdown_closes_every_session(server: EngineIOServer, recorder: Recorder) -> None:
    sessions = [(await open_session(server))[0] for _ in range(3)]
    await server.shutdown()
    assert server.sessions == {}
    assert all(s.state is SessionState.CLOSED for s in sessions)
    assert sorted(r for _, r, _ in recorder.disconnects) == [CloseReason.SERVER_SHUTTING_DOWN] * 3


# -- sending ----------------------------------------------------------------------------


async def test_send_writes_messages_until_closing(server: EngineIOServer) -> None:
    session, transport = await open_session(server)
    await session.send("hi")
    await session.send(b"\x01\x02")
    await session.send_packets([Packet(PacketType.NOOP), Packet(PacketType.MESSAGE, "x")])
    assert transport.written[1:] == [
        Packet(PacketType.MESSAGE, "hi"),
        Packet(PacketType.MESSAGE, b"\x01\x02"),
        Packet(PacketType.NOOP),
        Packet(PacketType.MESSAGE, "x"),
    ]
    await session.close()
    count = len(transport.written)
    await session.send("dropped")
    assert len(transport.written) == count


class GatedTransport(RecordingTransport):
    """Writes wait while ``gate`` is clear, as for a client that reads slowly."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()

    async def write(self, packets: list[Packet]) -> None:
        await self.gate.wait()
        await super().write(packets)


async def test_post_sends_at_once_and_goes_on_in_a_task_when_the_transport_waits(
    server: EngineIOServer,
) -> None:
    transport = GatedTransport()
    session, _ = await open_session(server, transport)
    session.post("now")
    assert transport.written[1:] == [Packet(PacketType.MESSAGE, "now")]
    assert not session._tasks  # taken at once: no task
    transport.gate.clear()
    session.post("later")
    session.post_packets([Packet(PacketType.MESSAGE, "then"), Packet(PacketType.NOOP)])
    assert len(transport.written) == 2
    assert len(session._tasks) == 2
    transport.gate.set()
    await settle(session)
    assert transport.written[1:] == [
        Packet(PacketType.MESSAGE, "now"),
        Packet(PacketType.MESSAGE, "later"),
        Packet(PacketType.MESSAGE, "then"),
        Packet(PacketType.NOOP),
    ]
    assert session.packets_out == 4
    await session.close()


async def test_a_post_waiting_on_the_transport_ends_with_the_session(
    server: EngineIOServer,
) -> None:
    transport = GatedTransport()
    session, _ = await open_session(server, transport)
    transport.gate.clear()
    session.post("stuck")
    (task,) = session._tasks
    await session.close()
    await settle(session)
    assert task.cancelled()
    assert Packet(PacketType.MESSAGE, "stuck") not in transport.written
    session.post("dropped")  # closed: nothing, and no task
    assert not session._tasks


# -- receiving ------------------------------------------------------------------------------


async def test_messages_reach_the_handler(server: EngineIOServer, recorder: Recorder) -> None:
    session, _ = await open_session(server)
    await session.receive_packet(Packet(PacketType.MESSAGE, "hello"))
    await session.receive_packet(Packet(PacketType.MESSAGE, b"\x00"))
    await session.receive_packet(Packet(PacketType.MESSAGE, ""))
    assert recorder.messages == [(session, "hello"), (session, b"\x00"), (session, "")]


async def test_noop_is_ignored(server: EngineIOServer, recorder: Recorder) -> None:
    session, transport = await open_session(server)
    await session.receive_packet(Packet(PacketType.NOOP))
    assert session.state is SessionState.OPEN
    assert recorder.messages == []
    assert transport.written == [transport.written[0]]
    assert transport.written[0].type is PacketType.OPEN


async def test_close_packet_closes_with_transport_close(
    server: EngineIOServer, recorder: Recorder
) -> None:
    session, transport = await open_session(server)
    await session.receive_packet(Packet(PacketType.CLOSE))
    assert session.state is SessionState.CLOSED
    assert session.close_reason is CloseReason.TRANSPORT_CLOSE
    assert transport.closed == [CloseReason.TRANSPORT_CLOSE]
    assert [r for _, r, _ in recorder.disconnects] == [CloseReason.TRANSPORT_CLOSE]


@pytest.mark.parametrize(
    "packet",
    [
        Packet(PacketType.PING),
        Packet(PacketType.PING, "probe"),
        Packet(PacketType.OPEN),
        Packet(PacketType.OPEN, "{}"),
        Packet(PacketType.UPGRADE),
    ],
    ids=lambda p: f"{p.type.name}-{p.data or 'empty'}",
)
async def test_unexpected_packet_closes_with_transport_error(
    server: EngineIOServer, recorder: Recorder, packet: Packet
) -> None:
    session, transport = await open_session(server)
    await session.receive_packet(packet)
    assert session.state is SessionState.CLOSED
    assert session.close_reason is CloseReason.TRANSPORT_ERROR
    assert transport.closed == [CloseReason.TRANSPORT_ERROR]
    assert [r for _, r, _ in recorder.disconnects] == [CloseReason.TRANSPORT_ERROR]
    assert server.sessions == {}


async def test_message_handler_exception_is_logged_and_session_stays_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    eio = EngineIOServer(EngineIOConfig(ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT))
    received: list[str | bytes] = []

    @eio.on_message
    async def handler(session: Session, data: str | bytes) -> None:
        if data == "bad":
            raise ValueError("handler boom")
        received.append(data)

    session, transport = await open_session(eio)
    try:
        with caplog.at_level(logging.ERROR, logger=LOGGER):
            await session.receive_packet(Packet(PacketType.MESSAGE, "bad"))
        [record] = [r for r in caplog.records if r.name == LOGGER]
        assert record.levelno == logging.ERROR
        assert record.getMessage() == f"Engine.IO message handler failed (session {session.sid})"
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], ValueError)
        assert str(record.exc_info[1]) == "handler boom"

        assert session.state is SessionState.OPEN
        assert transport.closed == []
        assert eio.sessions == {session.sid: session}
        await session.receive_packet(Packet(PacketType.MESSAGE, "good"))
        assert received == ["good"]
    finally:
        await eio.shutdown()


async def test_messages_without_a_handler_are_dropped() -> None:
    eio = EngineIOServer()
    session, _ = await open_session(eio)
    await session.receive_packet(Packet(PacketType.MESSAGE, "nobody listens"))
    assert session.state is SessionState.OPEN
    await eio.shutdown()


# -- handler registration -----------------------------------------------------------------


def plain(*args: Any) -> None:
    return None


async def agen(*args: Any) -> AsyncIterator[None]:
    yield None


class AsyncCallable:
    async def __call__(self, *args: Any) -> None:
        return None


@pytest.mark.parametrize("register", ["on_connect", "on_message", "on_disconnect"])
@pytest.mark.parametrize(
    "handler",
    [
        pytest.param(plain, id="def"),
        pytest.param(lambda *args: None, id="lambda"),
        pytest.param(agen, id="async-generator"),
        pytest.param(None, id="none"),
    ],
)
def test_registering_a_non_async_handler_raises(register: str, handler: Any) -> None:
    eio = EngineIOServer()
    with pytest.raises(TypeError, match=r"^Engine\.IO handlers must be 'async def' functions"):
        getattr(eio, register)(handler)
    assert eio._connect is None
    assert eio._message is None
    assert eio._disconnect is None


@pytest.mark.parametrize("register", ["on_connect", "on_message", "on_disconnect"])
def test_registering_an_async_handler_returns_it(register: str) -> None:
    eio = EngineIOServer()

    async def handler(*args: Any) -> None:
        return None

    assert getattr(eio, register)(handler) is handler


# -- heartbeat ------------------------------------------------------------------------------


async def test_no_ping_before_start(server: EngineIOServer) -> None:
    transport = RecordingTransport()
    session = Session(server, "not-started", transport, None)
    await asyncio.sleep(PING_INTERVAL * 2 / 1000)
    assert transport.written == []
    await session.close()


async def test_ping_after_ping_interval(server: EngineIOServer) -> None:
    started = time.monotonic()
    session, transport = await open_session(server)
    await transport.wait_for(lambda: bool(transport.of_type(PacketType.PING)))
    elapsed = time.monotonic() - started
    assert PING_INTERVAL / 1000 * 0.9 <= elapsed < 0.5
    assert transport.of_type(PacketType.PING) == [Packet(PacketType.PING)]
    assert transport.written[-1] == Packet(PacketType.PING)
    assert session.state is SessionState.OPEN


async def test_pongs_keep_the_session_open(server: EngineIOServer, recorder: Recorder) -> None:
    session, transport = await open_session(server)
    started = time.monotonic()
    cycles = 5
    for cycle in range(1, cycles + 1):
        await transport.wait_for(lambda n=cycle: len(transport.of_type(PacketType.PING)) >= n)
        before = session.last_pong
        await session.receive_packet(Packet(PacketType.PONG))
        assert session.last_pong > before
        assert session.state is SessionState.OPEN
    # Each cycle waits one interval after the previous pong, and never for a timeout.
    elapsed = time.monotonic() - started
    assert cycles * PING_INTERVAL / 1000 * 0.9 <= elapsed < cycles * 0.2
    assert len(transport.of_type(PacketType.PING)) == cycles
    # Still open past interval + timeout since the start: the pongs reset the clock.
    assert elapsed > (PING_INTERVAL + PING_TIMEOUT) / 1000
    assert recorder.disconnects == []
    assert transport.closed == []


async def test_missing_pong_closes_with_ping_timeout(
    server: EngineIOServer, recorder: Recorder
) -> None:
    session, transport = await open_session(server)
    for cycle in (1, 2):
        await transport.wait_for(lambda n=cycle: len(transport.of_type(PacketType.PING)) == n)
        await session.receive_packet(Packet(PacketType.PONG))
    last_pong = time.monotonic()
    async with asyncio.timeout(1):
        await recorder.disconnected.wait()
    elapsed = time.monotonic() - last_pong
    assert (PING_INTERVAL + PING_TIMEOUT) / 1000 * 0.9 <= elapsed < 0.5
    assert [(s, r) for s, r, _ in recorder.disconnects] == [(session, CloseReason.PING_TIMEOUT)]
    await settle(session)
    assert session.state is SessionState.CLOSED
    assert session.close_reason is CloseReason.PING_TIMEOUT
    assert transport.closed == [CloseReason.PING_TIMEOUT]
    assert len(transport.of_type(PacketType.PING)) == 3
    assert server.sessions == {}
    assert not session._tasks


async def test_late_pong_does_not_reopen(server: EngineIOServer, recorder: Recorder) -> None:
    session, transport = await open_session(server)
    async with asyncio.timeout(1):
        await recorder.disconnected.wait()
    await settle(session)
    await session.receive_packet(Packet(PacketType.PONG))
    assert session.state is SessionState.CLOSED
    assert session._heartbeat is None
    pings = len(transport.of_type(PacketType.PING))
    await asyncio.sleep(PING_INTERVAL * 1.5 / 1000)
    assert len(transport.of_type(PacketType.PING)) == pings


async def test_close_stops_the_heartbeat(server: EngineIOServer, recorder: Recorder) -> None:
    session, transport = await open_session(server)
    await session.close(CloseReason.TRANSPORT_CLOSE)
    assert session._heartbeat is None
    await asyncio.sleep((PING_INTERVAL + PING_TIMEOUT) * 1.5 / 1000)
    assert transport.of_type(PacketType.PING) == []
    assert [r for _, r, _ in recorder.disconnects] == [CloseReason.TRANSPORT_CLOSE]


async def test_close_cancels_background_tasks(server: EngineIOServer) -> None:
    transport = RecordingTransport()
    transport.hold_pings = True
    session, _ = await open_session(server, transport)
    await transport.wait_for(lambda: bool(transport.of_type(PacketType.PING)))
    await asyncio.sleep(0)
    tasks = set(session._tasks)
    assert len(tasks) == 1  # the PING write, held by the transport

    await session.close(CloseReason.FORCED_CLOSE)
    await asyncio.wait(tasks, timeout=1)
    assert all(task.cancelled() for task in tasks)
    assert not session._tasks


async def test_ping_timeout_close_cancels_the_stuck_ping_write(
    server: EngineIOServer, recorder: Recorder
) -> None:
    transport = RecordingTransport()
    transport.hold_pings = True
    session, _ = await open_session(server, transport)
    await transport.wait_for(lambda: bool(transport.of_type(PacketType.PING)))
    await asyncio.sleep(0)
    [ping_write] = session._tasks
    async with asyncio.timeout(1):
        await recorder.disconnected.wait()
    await settle(session)
    assert ping_write.cancelled()
    assert not session._tasks
    assert session.close_reason is CloseReason.PING_TIMEOUT


async def test_failed_background_task_is_logged(
    server: EngineIOServer, caplog: pytest.LogCaptureFixture
) -> None:
    class FailingPing(RecordingTransport):
        async def write(self, packets: list[Packet]) -> None:
            await super().write(packets)
            if any(p.type is PacketType.PING for p in packets):
                raise OSError("write failed")

    transport = FailingPing()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        session, _ = await open_session(server, transport)
        await transport.wait_for(lambda: bool(transport.of_type(PacketType.PING)))
        await settle(session)
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert record.getMessage() == f"session {session.sid}: background task failed"
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "write failed"


# -- upgrade --------------------------------------------------------------------------------


class UpgradablePolling(RecordingTransport):
    """A polling stand-in with the two upgrade hooks PollingTransport has."""

    def __init__(self) -> None:
        super().__init__("polling")
        self.released = 0
        self.leftovers: list[Packet] = []

    def release_for_upgrade(self) -> None:
        self.released += 1

    def take_for_upgrade(self) -> list[Packet]:
        packets, self.leftovers = self.leftovers, []
        return packets


async def test_upgrade_none_probing_upgrading_upgraded(server: EngineIOServer) -> None:
    polling = UpgradablePolling()
    session, _ = await open_session(server, polling)
    assert session.can_upgrade
    probe = RecordingTransport("websocket")

    session.begin_probe(probe)
    assert session.upgrade_state is UpgradeState.PROBING
    assert session.is_probe(probe)
    assert not session.is_probe(polling)
    assert not session.can_upgrade

    await session.probe_received()
    assert session.upgrade_state is UpgradeState.UPGRADING
    assert probe.written == [Packet(PacketType.PONG, "probe")]
    assert polling.released == 1

    polling.leftovers = [Packet(PacketType.MESSAGE, "a"), Packet(PacketType.MESSAGE, "b")]
    await session.complete_upgrade()
    assert session.upgrade_state is UpgradeState.UPGRADED
    assert session.transport is probe
    assert not session.is_probe(probe)
    assert session._upgrade_timer is None
    assert probe.written[1:] == [Packet(PacketType.MESSAGE, "a"), Packet(PacketType.MESSAGE, "b")]
    assert not session.can_upgrade
    await session.send("after")
    assert probe.written[-1] == Packet(PacketType.MESSAGE, "after")
    assert polling.closed == []


async def test_begin_probe_twice_is_invalid(server: EngineIOServer) -> None:
    session, _ = await open_session(server)
    session.begin_probe(RecordingTransport("websocket"))
    with pytest.raises(InvalidTransition, match=r"upgrade: probing -> probing$"):
        session.begin_probe(RecordingTransport("websocket"))


async def test_abandoned_upgrade_returns_to_none(server: EngineIOServer) -> None:
    session, polling = await open_session(server)
    probe = RecordingTransport("websocket")
    session.begin_probe(probe)
    await session.abandon_upgrade()
    assert session.upgrade_state is UpgradeState.NONE
    assert probe.closed == [CloseReason.TRANSPORT_ERROR]
    assert session.transport is polling
    assert session.state is SessionState.OPEN
    assert session.can_upgrade
    await session.abandon_upgrade()  # nothing left to abandon
    assert probe.closed == [CloseReason.TRANSPORT_ERROR]


async def test_upgrade_timeout_abandons_the_probe() -> None:
    eio = EngineIOServer(EngineIOConfig(upgrade_timeout=30))
    session, polling = await open_session(eio)
    probe = RecordingTransport("websocket")
    session.begin_probe(probe)
    await probe.wait_for(lambda: bool(probe.closed))
    await settle(session)
    assert probe.closed == [CloseReason.TRANSPORT_ERROR]
    assert session.upgrade_state is UpgradeState.NONE
    assert session.state is SessionState.OPEN
    assert session.transport is polling
    await eio.shutdown()


async def test_close_while_probing_closes_the_probe(
    server: EngineIOServer, recorder: Recorder
) -> None:
    session, polling = await open_session(server)
    probe = RecordingTransport("websocket")
    session.begin_probe(probe)
    await session.close(CloseReason.SERVER_SHUTTING_DOWN)
    assert probe.closed == [CloseReason.TRANSPORT_ERROR]
    assert polling.closed == [CloseReason.SERVER_SHUTTING_DOWN]
    assert session._upgrade_timer is None
    assert [r for _, r, _ in recorder.disconnects] == [CloseReason.SERVER_SHUTTING_DOWN]


@pytest.mark.parametrize(
    ("config", "transport_name", "expected"),
    [
        (EngineIOConfig(), "polling", True),
        (EngineIOConfig(), "websocket", False),
        (EngineIOConfig(allow_upgrades=False), "polling", False),
        (EngineIOConfig(transports=("polling",)), "polling", False),
    ],
    ids=["default", "already-websocket", "upgrades-off", "polling-only"],
)
async def test_can_upgrade(config: EngineIOConfig, transport_name: str, expected: bool) -> None:
    eio = EngineIOServer(config)
    session, _ = await open_session(eio, RecordingTransport(transport_name))
    assert session.can_upgrade is expected
    await session.close()
    assert session.can_upgrade is False
