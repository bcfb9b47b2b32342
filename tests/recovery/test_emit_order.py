"""A recorded ``socket.emit`` on a store that waits for its write (Redis, the database): the
emitting handler goes on at once, and the packet goes out once written, in its place among
what the connection is sent. Driven by channels_sio.testing's communicator against servers
whose memory store is made to wait for a gate, as a remote store waits for its round trip.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from channels.db import database_sync_to_async

from channels_sio import Socket
from channels_sio.recovery import (
    ConnectionStateRecovery,
    MemoryStore,
    PacketRecord,
    RecoveryStore,
)
from channels_sio.socketio import ServerConfig, SocketIOServer
from channels_sio.testing import SocketIOCommunicator

from .conftest import client_of


class GatedStore(MemoryStore):
    """A memory store that writes like a remote one: grouped, and each write waits for
    ``gate``; ``fail`` makes writes fail."""

    writes_at_once = False

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.fail = False
        self.writes: list[int] = []  # packets per write

    def record(self, packet: PacketRecord) -> Any:
        return RecoveryStore.record(self, packet)  # grouped, as a remote store's

    async def append(self, packets: Sequence[PacketRecord]) -> list[str]:
        await self.gate.wait()
        self.writes.append(len(packets))
        if self.fail:
            raise ConnectionError("the store is down")
        return [MemoryStore.record(self, packet) for packet in packets]


@dataclass
class Gated:
    """A client connected to a server made by :func:`gated_server`."""

    store: GatedStore
    log: list[str]
    client: SocketIOCommunicator


@pytest.fixture
async def gated(servers: list[SocketIOServer]) -> AsyncIterator[Gated]:
    """A connected client of a server with a gated store, whose gate opens before the server
    shuts down (a failed test must not leave the store's close waiting for its write)."""
    server, store, log = gated_server()
    servers.append(server)
    client = client_of(server)
    await client.connect()
    try:
        yield Gated(store, log, client)
    finally:
        store.gate.set()


def gated_server() -> tuple[SocketIOServer, GatedStore, list[str]]:
    """A server on /chat with a gated store; ``log`` gets what its handlers did."""
    store = GatedStore()
    server = SocketIOServer(
        ServerConfig(recovery=ConnectionStateRecovery(store)), sync_runner=database_sync_to_async
    )
    log: list[str] = []
    chat = server.of("/chat")

    @chat.on("emit-then-ack")
    async def emit_then_ack(socket: Socket, event: str) -> str:
        await socket.emit(event, 1)
        log.append("emitted")
        return "ack"

    @chat.on("mixed")
    async def mixed(socket: Socket) -> None:
        await socket.emit("seq", "recorded 1")
        await socket.volatile.emit("seq", "volatile")
        await socket.emit("seq", "recorded 2")
        await socket.emit("seq", "with a callback", callback=lambda *_: None)
        await chat.emit("seq", "broadcast")
        log.append("mixed done")

    @chat.on("emit-then-leave")
    async def emit_then_leave(socket: Socket) -> None:
        await socket.emit("bye")
        await socket.disconnect()
        log.append("left")

    return server, store, log


async def wait_for(condition: Any) -> None:
    async with asyncio.timeout(2):
        while not condition():  # noqa: ASYNC110 (what the handlers did has no event)
            await asyncio.sleep(0.005)


async def test_the_emitter_goes_on_and_its_acknowledgement_follows_the_event(
    gated: Gated,
) -> None:
    store, log, client = gated.store, gated.log, gated.client
    answer = asyncio.ensure_future(client.emit_with_ack("emit-then-ack", "news"))
    await wait_for(lambda: log == ["emitted"])  # the handler did not wait for the write
    assert await client.receive_nothing(0.05)
    assert not answer.done()  # its acknowledgement waits behind the event
    store.gate.set()
    assert await answer == ["ack"]
    # The event was read before the acknowledgement, with its offset.
    assert await client.receive_nothing(0) is False
    assert await client.expect_event("news") == [1, "1"]
    await client.disconnect()


async def test_what_follows_a_recorded_emit_keeps_its_order(
    gated: Gated,
) -> None:
    store, log, client = gated.store, gated.log, gated.client
    await client.emit("mixed")
    # The broadcast waits for its write: the handler stops there, the packets before it wait.
    await asyncio.sleep(0.05)
    assert log == []
    assert await client.receive_nothing(0)
    store.gate.set()
    got = [await client.expect_event("seq") for _ in range(5)]
    assert got == [
        ["recorded 1", "1"],
        ["volatile"],
        ["recorded 2", "2"],
        ["with a callback"],
        ["broadcast", "3"],
    ]
    await wait_for(lambda: log == ["mixed done"])
    await client.disconnect()


async def test_a_server_disconnect_sends_what_was_emitted_before_it(
    gated: Gated,
) -> None:
    store, log, client = gated.store, gated.log, gated.client
    await client.emit("emit-then-leave")
    await asyncio.sleep(0.05)
    assert log == []  # the disconnect waits for the emit's write
    store.gate.set()
    assert await client.expect_event("bye") == ["1"]
    await wait_for(lambda: log == ["left"])


async def test_an_emit_the_store_failed_goes_out_unrecorded_in_its_place(
    gated: Gated, caplog: pytest.LogCaptureFixture
) -> None:
    store, client = gated.store, gated.client
    store.fail = True
    store.gate.set()
    with caplog.at_level(logging.ERROR, "channels_sio.recovery"):
        assert await client.emit_with_ack("emit-then-ack", "news") == ["ack"]
        assert await client.expect_event("news") == [1]  # no offset
    assert "recording a packet failed" in caplog.text
    await client.disconnect()


async def test_a_socket_lost_while_its_emit_is_written_gets_it_on_recovery(
    gated: Gated,
) -> None:
    store, log, client = gated.store, gated.log, gated.client
    await client.emit("emit-then-ack", "late")
    await wait_for(lambda: log == ["emitted"])
    await client.drop()
    store.gate.set()
    await wait_for(lambda: store.writes == [1])
    await client.reconnect()
    assert client.recovered is True
    assert await client.expect_event("late") == [1, "1"]  # replayed, once
    assert await client.receive_nothing()
    await client.disconnect()


async def test_an_emit_whose_write_was_cancelled_is_dropped_and_holds_nothing_back(
    gated: Gated,
) -> None:
    store, log, client = gated.store, gated.log, gated.client
    await client.emit("emit-then-ack", "never")
    await wait_for(lambda: log == ["emitted"])
    flushing = store._writes[asyncio.get_running_loop()].packets._task
    assert flushing is not None
    flushing.cancel()
    await asyncio.wait([flushing])
    store.gate.set()
    # What the connection is sent next is not held behind the dropped packet.
    assert await client.emit_with_ack("emit-then-ack", "next") == ["ack"]
    assert await client.expect_event("next") == [1, "1"]
    await client.disconnect()


async def test_a_client_restored_while_its_emit_is_written_gets_it_once(
    gated: Gated,
) -> None:
    store, log, client = gated.store, gated.log, gated.client
    await client.emit("emit-then-ack", "in flight")
    await wait_for(lambda: log == ["emitted"])
    await client.drop()
    # Restored before the write lands: the log it reads does not hold the packet yet.
    await client.reconnect()
    assert client.recovered is True
    assert await client.receive_nothing(0.05)
    store.gate.set()
    assert await client.expect_event("in flight") == [1, "1"]
    assert await client.receive_nothing()
    await client.disconnect()
