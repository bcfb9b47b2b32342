"""A new polling session held for an upgrade elsewhere, and its handover: the state machine.

Unit tests with the recording transport of test_session, and of the other side, a WebSocket
for a session another process owns (``RemoteProbe``), with stubs of that process and of the
socket; the upgrade between two real server processes, through the channel layer and
socket.io-client, is tested in tests/cluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from channels_sio.engineio.config import EngineIOConfig
from channels_sio.engineio.errors import CloseReason
from channels_sio.engineio.handover import HANDOVER, RELAY, RemoteProbe, RemoteState
from channels_sio.engineio.http import HttpRequest
from channels_sio.engineio.packet import Packet, PacketType
from channels_sio.engineio.server import EngineIOServer, EngineObserver
from channels_sio.engineio.session import Handover, Session, SessionState, UpgradeState
from channels_sio.engineio.websocket import CLOSE_NORMAL, WebSocketTransport

from .test_session import Recorder, RecordingTransport, open_session, recorder
from .test_session import make_server as make_recording_server

__all__ = ["recorder"]  # a fixture

HOLD = 0.05  # seconds
PING_INTERVAL = 5_000  # ms: no heartbeat within these tests
PING_TIMEOUT = 5_000


class BufferingTransport(RecordingTransport):
    """Keeps what is written after the handshake unpolled, as polling does until a GET."""

    def take_for_upgrade(self) -> list[Packet]:
        return [p for p in self.written if p.type is not PacketType.OPEN]


def make_server(recorder: Recorder, **options: int) -> EngineIOServer:
    """test_session's server, with no heartbeat within these tests."""
    return make_recording_server(
        recorder, **{"ping_interval": PING_INTERVAL, "ping_timeout": PING_TIMEOUT, **options}
    )


@pytest.fixture
async def server(recorder: Recorder) -> AsyncIterator[EngineIOServer]:
    eio = make_server(recorder)
    yield eio
    await eio.shutdown()


class MovedObserver(EngineObserver):
    def __init__(self) -> None:
        self.moved: list[Session] = []
        self.closed: list[Session] = []

    def session_moved(self, session: Session) -> None:
        self.moved.append(session)

    def session_closed(self, session: Session, reason: CloseReason) -> None:
        self.closed.append(session)


async def held_session(server: EngineIOServer) -> tuple[Session, RecordingTransport]:
    server.upgrade_window = lambda: HOLD
    session, transport = await open_session(server, BufferingTransport())
    assert session.held
    return session, transport


async def test_the_connect_handler_waits_and_then_gets_the_held_messages_in_order(
    server: EngineIOServer, recorder: Recorder
) -> None:
    session, transport = await held_session(server)
    assert session.state is SessionState.OPEN
    assert transport.written[0].type is PacketType.OPEN  # the handshake is answered at once
    await session.receive_packet(Packet(PacketType.MESSAGE, "one"))
    await session.receive_packet(Packet(PacketType.MESSAGE, b"two"))
    assert recorder.connected == []
    assert recorder.messages == []
    await asyncio.sleep(HOLD * 3)
    assert recorder.connected == [session]
    assert [data for _, data in recorder.messages] == ["one", b"two"]
    assert not session.held
    await session.receive_packet(Packet(PacketType.MESSAGE, "three"))
    assert [data for _, data in recorder.messages] == ["one", b"two", "three"]
    assert session.packets_in == 3


async def test_no_window_no_hold(server: EngineIOServer, recorder: Recorder) -> None:
    server.upgrade_window = lambda: 0.0
    session, _ = await open_session(server)
    assert not session.held
    assert recorder.connected == [session]


async def test_a_held_session_that_closes_never_connected_nor_disconnects(
    server: EngineIOServer, recorder: Recorder
) -> None:
    session, transport = await held_session(server)
    await session.receive_packet(Packet(PacketType.CLOSE))
    assert session.state is SessionState.CLOSED
    await asyncio.sleep(HOLD * 3)
    assert (recorder.connected, recorder.disconnects) == ([], [])
    assert transport.closed == [CloseReason.TRANSPORT_CLOSE]


async def test_a_local_upgrade_attaches_at_once(server: EngineIOServer, recorder: Recorder) -> None:
    server.upgrade_window = lambda: 10.0
    session, _ = await open_session(server)
    await session.receive_packet(Packet(PacketType.MESSAGE, "before"))
    probe = RecordingTransport("websocket")
    session.begin_probe(probe)
    await session.probe_received()
    await session.complete_upgrade()
    assert recorder.connected == [session]
    assert [data for _, data in recorder.messages] == ["before"]


async def test_handover_takes_the_held_messages_and_leaves_quietly(
    server: EngineIOServer, recorder: Recorder
) -> None:
    observer = MovedObserver()
    server.observers.append(observer)
    session, transport = await held_session(server)
    await session.receive_packet(Packet(PacketType.MESSAGE, "40"))
    await session.send_packets([Packet(PacketType.NOOP)])  # not polled yet
    assert session.begin_handover()
    assert session.upgrade_state is UpgradeState.HANDING_OVER
    assert not session.begin_handover()  # once
    await asyncio.sleep(HOLD * 3)  # the hold runs out: the handover decides, not the timer
    assert recorder.connected == []
    handover = session.hand_over()
    assert handover is not None
    assert handover.messages == ["40"]
    assert [p.type for p in handover.leftovers] == [PacketType.NOOP]
    assert handover.connected_at == session.connected_at
    assert session.state is SessionState.CLOSED
    assert session.sid not in server.sessions
    assert (recorder.connected, recorder.disconnects) == ([], [])
    assert (observer.moved, observer.closed) == ([session], [])
    assert transport.closed == []  # its pending GET was answered; nothing to tell the client
    assert session.hand_over() is None


async def test_an_attached_session_is_not_handed_over(server: EngineIOServer) -> None:
    session, _ = await open_session(server)
    assert not session.begin_handover()
    assert session.upgrade_state is UpgradeState.NONE
    assert session.hand_over() is None


async def test_an_abandoned_handover_carries_on_here(
    server: EngineIOServer, recorder: Recorder
) -> None:
    session, _ = await held_session(server)
    await session.receive_packet(Packet(PacketType.MESSAGE, "40"))
    assert session.begin_handover()
    await asyncio.sleep(HOLD * 3)
    await session.abandon_handover()
    assert session.upgrade_state is UpgradeState.NONE
    assert recorder.connected == [session]
    assert [data for _, data in recorder.messages] == ["40"]
    assert session.can_upgrade  # a later probe may still upgrade it


async def test_a_handover_that_never_completes_times_out(recorder: Recorder) -> None:
    eio = make_server(recorder, upgrade_timeout=30)
    session, _ = await held_session(eio)
    assert session.begin_handover()
    await asyncio.sleep(HOLD * 3)
    assert session.upgrade_state is UpgradeState.NONE
    assert recorder.connected == [session]
    await eio.shutdown()


async def test_adopt_opens_the_session_upgraded_and_replays(
    server: EngineIOServer, recorder: Recorder
) -> None:
    owner = make_server(Recorder())
    owner.upgrade_window = lambda: 10.0
    held, _ = await open_session(owner, BufferingTransport())
    await held.receive_packet(Packet(PacketType.MESSAGE, "hello"))
    await held.send_packets([Packet(PacketType.MESSAGE, "unpolled")])
    assert held.begin_handover()
    handover = held.hand_over()
    assert handover is not None

    websocket = RecordingTransport("websocket")
    request = HttpRequest("GET", {"EIO": "4", "transport": "websocket", "sid": held.sid}, {})
    session = await server.adopt(held.sid, websocket, request, handover)  # type: ignore[arg-type]
    assert session is not None
    assert session.sid == held.sid
    assert (session.state, session.upgrade_state) == (SessionState.OPEN, UpgradeState.UPGRADED)
    assert server.sessions[held.sid] is session
    assert recorder.connected == [session]
    assert [data for _, data in recorder.messages] == ["hello"]
    assert [(p.type, p.data) for p in websocket.written] == [(PacketType.MESSAGE, "unpolled")]
    assert not session.can_upgrade


async def test_a_refusing_connect_handler_closes_the_held_session() -> None:
    eio = EngineIOServer(EngineIOConfig(ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT))
    disconnects: list[CloseReason] = []

    @eio.on_connect
    async def refuse(session: Session) -> bool:
        return False

    @eio.on_disconnect
    async def disconnect(session: Session, reason: CloseReason) -> None:
        disconnects.append(reason)

    eio.upgrade_window = lambda: HOLD
    session, transport = await open_session(eio)
    await asyncio.sleep(HOLD * 3)
    assert session.state is SessionState.CLOSED
    assert transport.closed == [CloseReason.FORCED_CLOSE]
    assert disconnects == []


async def test_messages_during_a_slow_connect_handler_queue_behind_the_held_ones(
    recorder: Recorder,
) -> None:
    eio = make_server(recorder)
    started = asyncio.Event()
    release = asyncio.Event()

    @eio.on_connect
    async def slow(session: Session) -> None:
        started.set()
        await release.wait()

    eio.upgrade_window = lambda: HOLD
    session, _ = await open_session(eio, BufferingTransport())
    await session.receive_packet(Packet(PacketType.MESSAGE, "held"))
    await started.wait()
    await session.receive_packet(Packet(PacketType.MESSAGE, "during"))
    release.set()
    async with asyncio.timeout(1):
        while len(recorder.messages) < 2:  # noqa: ASYNC110 (the recorder has no event)
            await asyncio.sleep(0.01)
    assert [data for _, data in recorder.messages] == ["held", "during"]
    await session.receive_packet(Packet(PacketType.MESSAGE, "after"))
    assert [data for _, data in recorder.messages] == ["held", "during", "after"]
    await eio.shutdown()


# -- an upgrade that lands on a process other than the owner ---------------------------------


class StubOwner:
    """An owner process that holds every probed session for a handover."""

    def __init__(self) -> None:
        self.abandoned: list[str] = []

    def owns(self, sid: str) -> bool:
        return True

    async def probe(self, sid: str, relay: RemoteProbe) -> str | None:
        return HANDOVER

    async def relay(self, sid: str, frame: str | bytes) -> None:
        raise AssertionError("not relayed")

    def relay_lost(self, sid: str, code: int, reason: CloseReason | None = None) -> None:
        raise AssertionError("not relayed")

    async def take(self, sid: str) -> Handover | None:
        return None

    def abandon(self, sid: str) -> None:
        self.abandoned.append(sid)


class StubSink:
    """A WebSocket whose close waits for ``release`` (set by default)."""

    closed_errors: tuple[type[Exception], ...] = (OSError,)

    def __init__(self) -> None:
        self.closing = asyncio.Event()
        self.closed: list[int] = []
        self.release = asyncio.Event()
        self.release.set()

    async def accept(self) -> None:
        pass

    async def send_frame(self, data: str | bytes) -> None:
        pass

    async def close_socket(self, code: int) -> None:
        self.closing.set()
        await self.release.wait()
        self.closed.append(code)


async def probed(server: EngineIOServer, sink: StubSink, owner: StubOwner) -> RemoteProbe:
    """A WebSocket for a session ``owner`` holds, once its client probed it."""
    transport = WebSocketTransport(sink, server.config.max_payload)
    request = HttpRequest("GET", {"EIO": "4", "transport": "websocket", "sid": "elsewhere"}, {})
    probe = RemoteProbe(server, owner, "elsewhere", transport, request)
    transport.remote = probe
    await transport.start_writing()
    await probe.receive("2probe")
    return probe


async def remote_probe(server: EngineIOServer, sink: StubSink) -> tuple[RemoteProbe, StubOwner]:
    """A probed WebSocket for a session another process holds for its handover."""
    owner = StubOwner()
    probe = await probed(server, sink, owner)
    assert probe.state is RemoteState.UPGRADING
    return probe, owner


async def test_a_remote_upgrade_that_times_out_closes_its_socket_and_tells_the_owner(
    recorder: Recorder,
) -> None:
    server = make_server(recorder, upgrade_timeout=50)
    sink = StubSink()
    probe, owner = await remote_probe(server, sink)
    await asyncio.wait_for(sink.closing.wait(), 5)
    await asyncio.sleep(0)  # the close ends
    assert probe.state is RemoteState.ENDED
    assert owner.abandoned == ["elsewhere"]
    assert sink.closed == [CLOSE_NORMAL]
    await server.shutdown()


async def test_shutdown_cancels_the_close_of_a_timed_out_remote_upgrade(
    recorder: Recorder,
) -> None:
    """The close the timeout starts is the server's task: shutdown cancels it."""
    server = make_server(recorder, upgrade_timeout=50)
    sink = StubSink()
    sink.release.clear()
    probe, _ = await remote_probe(server, sink)
    await asyncio.wait_for(sink.closing.wait(), 5)
    await asyncio.wait_for(server.shutdown(), 5)
    sink.release.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert sink.closed == []  # cancelled while it waited
    assert probe.state is RemoteState.ENDED


class RelayingOwner(StubOwner):
    """An owner process that has the probed session relayed to it."""

    def __init__(self) -> None:
        super().__init__()
        self.relayed: list[str | bytes] = []
        self.lost: list[tuple[str, int, CloseReason | None]] = []

    async def probe(self, sid: str, relay: RemoteProbe) -> str | None:
        return RELAY

    async def relay(self, sid: str, frame: str | bytes) -> None:
        self.relayed.append(frame)

    def relay_lost(self, sid: str, code: int, reason: CloseReason | None = None) -> None:
        self.lost.append((sid, code, reason))


class SlowReaderSink(StubSink):
    """A WebSocket whose client reads nothing until ``readable`` is set: each send waits."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str | bytes] = []
        self.readable = asyncio.Event()

    async def send_frame(self, data: str | bytes) -> None:
        await self.readable.wait()
        self.sent.append(data)


class GoneSink(SlowReaderSink):
    """A WebSocket that fails under the first write the client lets through."""

    async def send_frame(self, data: str | bytes) -> None:
        await self.readable.wait()
        raise ConnectionResetError


async def relaying_probe(
    server: EngineIOServer, sink: StubSink
) -> tuple[RemoteProbe, RelayingOwner]:
    owner = RelayingOwner()
    probe = await probed(server, sink, owner)
    assert probe.state is RemoteState.RELAYING
    assert owner.relayed == ["2probe"]
    return probe, owner


async def test_relayed_frames_for_a_client_that_does_not_read_never_hold_their_sender(
    server: EngineIOServer,
) -> None:
    """The owner's frames arrive on the loop that serves every relayed socket (the node's
    receive loop): they queue, in order, and so does the owner's close."""
    sink = SlowReaderSink()
    probe, _ = await relaying_probe(server, sink)
    for frame in ["3probe", "6", b"\x01\x02", "4last"]:
        assert probe.send(frame) is None  # nothing to await
    await asyncio.wait_for(probe.close(CLOSE_NORMAL), 1)  # returns while the client is stuck
    await asyncio.sleep(0.01)
    assert (sink.sent, sink.closed) == ([], [])
    probe.send("4after the close")  # dropped
    sink.readable.set()
    await asyncio.wait_for(sink.closing.wait(), 1)
    await asyncio.sleep(0)
    assert sink.sent == ["3probe", "6", b"\x01\x02", "4last"]
    assert sink.closed == [CLOSE_NORMAL]
    assert probe.state is RemoteState.ENDED


async def test_relayed_frames_past_max_queued_packets_close_the_socket_and_tell_the_owner(
    recorder: Recorder,
) -> None:
    server = make_server(recorder, max_queued_packets=3)
    sink = SlowReaderSink()
    probe, owner = await relaying_probe(server, sink)
    probe.send("4frame 0")
    await asyncio.sleep(0)  # the writer takes it, and waits for the client
    for n in range(1, 5):
        probe.send(f"4frame {n}")
    assert probe.state is RemoteState.ENDED
    assert owner.lost == [("elsewhere", CLOSE_NORMAL, CloseReason.SEND_QUEUE_FULL)]
    sink.readable.set()
    await asyncio.wait_for(sink.closing.wait(), 1)
    await asyncio.sleep(0)
    # The frame in flight when the queue overflowed went out; the queued ones were dropped.
    assert sink.sent == ["4frame 0"]
    assert sink.closed == [CLOSE_NORMAL]
    await server.shutdown()


async def test_a_relayed_socket_that_fails_under_a_write_drops_the_rest(
    server: EngineIOServer,
) -> None:
    """Its disconnect tells the owner, as for a socket that closes between writes."""
    sink = GoneSink()
    probe, owner = await relaying_probe(server, sink)
    probe.send("4one")
    probe.send("4two")
    sink.readable.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert probe.state is RemoteState.RELAYING
    assert sink.closed == []
    await probe.transport.disconnected(1006)
    assert owner.lost == [("elsewhere", 1006, None)]
