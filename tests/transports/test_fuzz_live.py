"""Live fuzzing: random and mutated WebSocket frames and polling bodies sent to the running
servers (uvicorn and daphne, loopback only), bounded in count and time.

Each input goes to a Socket.IO session of its own, connected to ``/``, and is followed by a
probe (an event whose acknowledgement the server sends). An oracle built from the codec says
what the server must do: close that session with the reason the first bad packet calls for
(``parse error``, ``transport error``, ``transport close``), or answer the probe. Meanwhile a
python-socketio client keeps exchanging acknowledgements on another session, and afterwards
the server holds no session, socket, room entry, task or acknowledgement waiter (the
``fuzz_server`` fixture counts them through the server's own tables).

``CSIO_FUZZ_SEED`` (default fixed, so a failure replays), ``CSIO_FUZZ_COUNT`` (WebSocket
inputs per server; polling gets a third) and ``CSIO_FUZZ_SECONDS`` (per test) change the run.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import socketio
from websockets.asyncio.client import connect

from channels_sio.engineio.packet import (
    SEPARATOR,
    PacketType,
    ParseError,
    decode_packet,
    decode_payload,
)
from channels_sio.socketio.packet import Decoder, Packet, SocketIOParseError
from channels_sio.socketio.packet import PacketType as SioType
from tests.socketio.raw_client import SioPolling
from tests.support.eio import TIMEOUT, WebSocket, state
from tests.support.servers import ServerProcess, server_fixture

SEED = int(os.environ.get("CSIO_FUZZ_SEED", "20261203"))
COUNT = int(os.environ.get("CSIO_FUZZ_COUNT", "1000"))
SECONDS = float(os.environ.get("CSIO_FUZZ_SECONDS", "60"))
#: Sessions fuzzed at once.
WORKERS = 8
PROBE_ID = 987654
PROBE = f'42{PROBE_ID}["message-with-ack","probe"]'
PROBE_ANSWER = f'43{PROBE_ID}["probe"]'
PLACEHOLDER = '{"_placeholder":true,"num":0}'

# Valid Socket.IO traffic of a client connected to "/", and Engine.IO packets, to mutate.
SEEDS: list[list[str | bytes]] = [
    ['42["message","hello"]'],
    ['421["message-with-ack",1,{"x":[1,2,null]}]'],
    ['42["message","héllo ✓",3.5,true]'],
    [f'451-["message",{PLACEHOLDER}]', b"\x00\x01\xff"],
    [f'452-12["message-with-ack",{PLACEHOLDER},{{"_placeholder":true,"num":1}}]', b"a", b"b"],
    ["40/custom,", '42/custom,["message","x"]'],
    ['40/custom,{"token":"t"}'],
    ["41/custom,"],
    ['43/custom,5["late"]'],
    ['437["unknown ack"]'],
    ["3"],
    ["6"],
    ['42["other-event",{}]'],
    ["1"],
    ["2"],
    ["5"],
    ["41"],
    ['42/nowhere,["message"]'],
]
ALPHABET = '0123456789[]{}",-/:_ bnlutrefa\x1e\x00é✓'


def mutate(rng: random.Random, frames: list[str | bytes]) -> list[str | bytes]:
    """A copy of ``frames`` with one to three random edits of one frame, or random frames."""
    if rng.random() < 0.1:
        count = rng.randint(1, 3)
        return [
            rng.randbytes(rng.randint(0, 12))
            if rng.random() < 0.3
            else "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30)))
            for _ in range(count)
        ]
    frames = list(frames)
    index = rng.randrange(len(frames))
    frame = frames[index]
    for _ in range(rng.randint(1, 3)):
        frame = _edit(rng, frame)
    frames[index] = frame
    if rng.random() < 0.1:
        frames.append(rng.choice(frames))
    if rng.random() < 0.1 and len(frames) > 1:
        del frames[rng.randrange(len(frames))]
    return frames


def _edit(rng: random.Random, frame: str | bytes) -> str | bytes:
    if isinstance(frame, bytes):
        data = bytearray(frame)
        if data and rng.random() < 0.5:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        else:
            data += rng.randbytes(rng.randint(0, 4))
        return bytes(data) if rng.random() < 0.9 else frame.decode("latin-1")
    text = frame
    at = rng.randint(0, len(text))
    choice = rng.randrange(6)
    if choice == 0 and text:  # replace a character
        at = min(at, len(text) - 1)
        return text[:at] + rng.choice(ALPHABET) + text[at + 1 :]
    if choice == 1:  # delete a slice
        return text[:at] + text[at + rng.randint(1, 5) :]
    if choice == 2:  # insert characters
        return (
            text[:at] + "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 4))) + text[at:]
        )
    if choice == 3:  # truncate
        return text[:at]
    if choice == 4:  # a digit of the header changed
        return str(rng.randrange(10)) + text[1:] if text else text
    return text + text[at:]  # a tail duplicated


# -- the oracle ---------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the server must do with a session's input followed by the probe."""

    #: The reason it must close with, or None when it must not close for the input.
    close: str | None = None
    #: Whether it must answer the probe (False when the input may leave "/" unusable).
    answers_probe: bool = True
    packets: list[Packet] = field(default_factory=list)


class Oracle:
    """The server's expected decisions, packet by packet, from the codec's own functions."""

    def __init__(self) -> None:
        self.decoder = Decoder()
        self.outcome = Outcome()

    def engine_packet(self, raw: str | bytes) -> bool:
        """One Engine.IO packet; False once the session must close."""
        try:
            packet = decode_packet(raw)
        except ParseError:
            return self._closes("parse error")
        kind = packet.type
        if kind is PacketType.MESSAGE:
            return self._message(packet.data)
        if kind is PacketType.CLOSE:
            return self._closes("transport close")
        if kind in (PacketType.OPEN, PacketType.PING, PacketType.UPGRADE):
            return self._closes("transport error")
        return True  # pong, noop

    def _message(self, data: str | bytes) -> bool:
        try:
            packet = self.decoder.feed(data)
        except SocketIOParseError:
            return self._closes("parse error")
        if packet is not None:
            self.outcome.packets.append(packet)
            if packet.namespace == "/" and packet.type in (SioType.CONNECT, SioType.DISCONNECT):
                # "/" reconnected or left: what the probe gets is not this test's question.
                self.outcome.answers_probe = False
        return True

    def _closes(self, reason: str) -> bool:
        self.outcome.close = reason
        return False


def websocket_outcome(frames: list[str | bytes]) -> Outcome:
    oracle = Oracle()
    for frame in [*frames, PROBE]:
        if not oracle.engine_packet(frame):
            break
    return oracle.outcome


def polling_outcome(body: bytes) -> Outcome:
    """A POST body: decoded whole (any bad record rejects it), then packet by packet."""
    oracle = Oracle()
    try:
        records = [*decode_payload(body.decode("utf-8")), decode_packet(PROBE)]
    except (UnicodeDecodeError, ParseError):
        oracle.outcome.close = "parse error"
        return oracle.outcome
    for record in records:
        kind = record.type
        if kind is PacketType.MESSAGE:
            if not oracle._message(record.data):
                break
        elif kind is PacketType.CLOSE:
            oracle._closes("transport close")
            break
        elif kind in (PacketType.OPEN, PacketType.PING, PacketType.UPGRADE):
            oracle._closes("transport error")
            break
    return oracle.outcome


def polling_body(frames: list[str | bytes]) -> bytes:
    """Frames as one POST body: text as it is, binary as ``b`` + base64 (Engine.IO's payload)."""
    records = [
        "b" + base64.b64encode(frame).decode() if isinstance(frame, bytes) else frame
        for frame in frames
    ]
    return SEPARATOR.join(records).encode()


# -- running inputs -----------------------------------------------------------------------


@dataclass
class Seen:
    """What the server did with one input."""

    answered: bool
    closed: bool


async def _socket_reason(server: ServerProcess, socket_id: str) -> str | None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        disconnected = (await state(server))["socketio_disconnected"]
        if socket_id in disconnected:
            return str(disconnected[socket_id])
        await asyncio.sleep(0.05)
    return None


async def _await_probe(next_frame: Callable[[], Awaitable[str | bytes | None]]) -> Seen:
    """Read until the probe's answer, or until the session closed (or TIMEOUT: neither)."""
    try:
        while True:
            frame = await next_frame()
            if frame is None:
                return Seen(answered=False, closed=True)
            if frame == PROBE_ANSWER:
                return Seen(answered=True, closed=False)
    except TimeoutError:
        return Seen(answered=False, closed=False)


async def run_websocket_input(server: ServerProcess, frames: list[str | bytes]) -> str:
    """One input on a WebSocket session of its own; a description of any wrong outcome."""
    url = f"ws{server.url.removeprefix('http')}/socket.io/?EIO=4&transport=websocket"
    ws = WebSocket(await asyncio.wait_for(connect(url), TIMEOUT))
    try:
        opened = await ws.recv()
        assert isinstance(opened, str)
        assert opened.startswith("0{"), opened
        await ws.send("40")
        reply = await ws.recv()
        assert isinstance(reply, str)
        assert reply.startswith("40{"), reply
        socket_id = json.loads(reply[2:])["sid"]
        expected = websocket_outcome(frames)
        for frame in frames:
            await ws.send(frame)
        await ws.send(PROBE)
        if expected.close is None and not expected.answers_probe:
            return ""  # the input left "/" or connected it again: nothing to wait for
        seen = await _await_probe(ws.recv_or_closed)
    finally:
        await _close_quietly(ws)
    return await _judge(server, expected, seen, socket_id, frames)


async def _close_quietly(ws: WebSocket) -> None:
    with contextlib.suppress(TimeoutError, OSError):
        await ws.close()


async def run_polling_input(
    server: ServerProcess, client: httpx.AsyncClient, frames: list[str | bytes]
) -> str:
    """One input as one POST body (the probe after it) of a polling session of its own."""
    session = SioPolling(server, client)
    await session.open()
    await session.send("40")
    reply = await _poll_for(session, lambda packet: packet.startswith("40{"))
    assert reply is not None, "no CONNECT reply"
    socket_id = json.loads(reply[2:])["sid"]
    body = polling_body(frames)
    expected = polling_outcome(body)
    try:
        await session.post(body + SEPARATOR.encode() + PROBE.encode())
        if expected.close is None and not expected.answers_probe:
            return ""  # the input left "/" or connected it again: nothing to wait for
        try:
            answer = await _poll_for(session, lambda packet: packet == PROBE_ANSWER)
            seen = Seen(answered=answer is not None, closed=answer is None)
        except TimeoutError:
            seen = Seen(answered=False, closed=False)
    finally:
        # A session the input left open is closed by the client, as a client would.
        await session.post("1")
    return await _judge(server, expected, seen, socket_id, frames)


async def _poll_for(session: SioPolling, wanted: Callable[[str], bool]) -> str | None:
    """Poll until a packet ``wanted`` says yes to (returned), or the session is gone (None)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            response = await session.get()
            if response.status_code != 200:
                return None
            packets = response.text.split(SEPARATOR)
            if "2" in packets:
                await session.post("3")
            found = next((packet for packet in packets if wanted(packet)), None)
            if found is not None:
                return found
            if "1" in packets:
                return None


async def _judge(
    server: ServerProcess,
    expected: Outcome,
    seen: Seen,
    socket_id: str,
    frames: list[str | bytes],
) -> str:
    where = f"input {frames!r}"
    if expected.close is not None:
        if not seen.closed and not seen.answered:
            return f"{where}: neither closed nor answered; expected a close with {expected.close!r}"
        if seen.answered:
            return f"{where}: the probe was answered; expected a close with {expected.close!r}"
        if expected.answers_probe:
            reason = await _socket_reason(server, socket_id)
            if reason != expected.close:
                return f"{where}: closed with {reason!r}, expected {expected.close!r}"
        return ""
    if expected.answers_probe and not seen.answered:
        reason = await _socket_reason(server, socket_id)
        return f"{where}: the probe was not answered (socket closed: {reason!r})"
    return ""


async def fuzz(
    server: ServerProcess,
    count: int,
    run_input: Callable[[list[str | bytes]], Awaitable[str]],
    seed: int,
) -> tuple[int, list[str]]:
    """``count`` inputs from ``seed``, ``WORKERS`` at a time, while a python-socketio client
    exchanges acknowledgements; the inputs run, and the failures."""
    rng = random.Random(seed)
    inputs = [mutate(rng, rng.choice(SEEDS)) for _ in range(count)]
    deadline = time.monotonic() + SECONDS
    failures: list[str] = []
    done = 0
    good = socketio.AsyncClient(reconnection=False)
    await good.connect(server.url, transports=["websocket"], wait_timeout=TIMEOUT)
    try:

        async def worker(mine: list[list[str | bytes]]) -> None:
            nonlocal done
            for frames in mine:
                if time.monotonic() > deadline:
                    return
                failure = await run_input(frames)
                if failure:
                    failures.append(failure)
                done += 1
                if done % 50 == 0:
                    marker = done
                    answer = await good.call("message-with-ack", marker, timeout=TIMEOUT)
                    assert answer == marker, "the other client stopped getting answers"

        await asyncio.gather(*(worker(inputs[n::WORKERS]) for n in range(WORKERS)))
        assert await good.call("message-with-ack", "last", timeout=TIMEOUT) == "last"
    finally:
        await good.disconnect()
    return done, failures


def _check(server: ServerProcess, done: int, count: int, failures: list[str]) -> None:
    assert server.proc is not None
    assert server.proc.poll() is None, "the worker died"
    assert done >= min(count, 100), f"only {done} inputs ran within {SECONDS} s"
    assert not failures, f"{len(failures)} of {done} inputs (seed {SEED}):\n" + "\n".join(
        failures[:20]
    )


fuzz_server = server_fixture(
    "tests.transports.settings_fuzz",
    "The protocol reference configuration with slow heartbeats, under each ASGI server, "
    "checked for leaks after.",
)


async def test_websocket_frames(fuzz_server: ServerProcess) -> None:
    done, failures = await fuzz(
        fuzz_server,
        COUNT,
        lambda frames: run_websocket_input(fuzz_server, frames),
        SEED,
    )
    _check(fuzz_server, done, COUNT, failures)


async def test_polling_bodies(fuzz_server: ServerProcess, client: httpx.AsyncClient) -> None:
    count = max(COUNT // 3, 1)
    done, failures = await fuzz(
        fuzz_server,
        count,
        lambda frames: run_polling_input(fuzz_server, client, frames),
        SEED + 1,
    )
    _check(fuzz_server, done, count, failures)
