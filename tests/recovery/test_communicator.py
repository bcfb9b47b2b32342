"""Connection state recovery in one process, driven by channels_sio.testing's communicator
against isolated servers with the memory store: what the server does at each step, and the
settings that change it (skip_middlewares)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from channels_sio import Socket
from channels_sio.recovery import ConnectionStateRecovery, MemoryStore, PacketRecord
from channels_sio.socketio import ServerConfig, SocketIOServer

from .conftest import client_of


def make_server(*, skip_middlewares: bool = True) -> tuple[SocketIOServer, list[str]]:
    """A server on /chat whose middleware and connect handler write what they see to a log."""
    recovery = ConnectionStateRecovery(MemoryStore(), skip_middlewares=skip_middlewares)
    server = SocketIOServer(ServerConfig(recovery=recovery), sync_runner=database_sync_to_async)
    log: list[str] = []
    chat = server.of("/chat")

    @chat.use
    async def middleware(socket: Socket, auth: dict[str, Any]) -> None:
        log.append(f"middleware recovered={socket.recovered}")

    @chat.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any]) -> None:
        log.append(f"connect recovered={socket.recovered}")
        if not socket.recovered:
            socket.join("lobby")
            socket.data["n"] = 0

    @chat.on("bump")
    async def bump(socket: Socket) -> int:
        socket.data["n"] += 1
        return int(socket.data["n"])

    @chat.on("say")
    async def say(socket: Socket, text: str) -> None:
        await chat.to("lobby").emit("said", text)

    return server, log


@pytest.mark.parametrize("skip", [True, False])
async def test_a_dropped_socket_comes_back_with_its_state(
    servers: list[SocketIOServer], skip: bool
) -> None:
    server, log = make_server(skip_middlewares=skip)
    servers.append(server)
    client, other = client_of(server), client_of(server)
    first = await client.connect()
    await other.connect()
    assert set(first) == {"sid", "pid"}
    assert await client.emit_with_ack("bump") == [1]
    await client.drop()
    await other.emit("say", "while away")
    text, offset = await other.expect_event("said")
    assert text == "while away"
    assert offset == other.offset  # the offset, appended as the last argument
    back = await client.reconnect()
    assert client.recovered is True
    assert back == first
    said = await client.expect_event("said")
    assert said[0] == "while away"
    assert said[1] == client.offset
    assert await client.emit_with_ack("bump") == [2]  # its data came back
    expected_middleware = [] if skip else ["middleware recovered=True"]
    assert log == [
        "middleware recovered=False",
        "connect recovered=False",
        "middleware recovered=False",
        "connect recovered=False",
        *expected_middleware,
        "connect recovered=True",
    ]
    await client.disconnect()
    await other.disconnect()


async def test_a_socket_left_on_purpose_is_not_kept(servers: list[SocketIOServer]) -> None:
    server, _ = make_server()
    servers.append(server)
    client = client_of(server)
    first = await client.connect()
    await client.disconnect()
    back = await client.reconnect()
    assert client.recovered is False
    assert back["sid"] != first["sid"]
    await client.disconnect()


async def test_recovery_off_sends_no_pid_and_appends_no_offset(
    servers: list[SocketIOServer],
) -> None:
    server = SocketIOServer(sync_runner=database_sync_to_async)
    servers.append(server)
    chat = server.of("/chat")

    @chat.on("ping-me")
    async def ping_me(socket: Socket) -> None:
        await socket.emit("pong", "x")

    client = client_of(server)
    assert set(await client.connect()) == {"sid"}
    await client.emit("ping-me")
    assert await client.expect_event("pong") == ["x"]
    await client.disconnect()


class FlakyStore(MemoryStore):
    """A memory store whose writes fail while ``down`` is set."""

    down = False

    def record(self, packet: PacketRecord) -> str:
        if self.down:
            raise ConnectionError("store unreachable")
        return super().record(packet)


async def test_a_store_outage_costs_recording_not_delivery(
    servers: list[SocketIOServer], caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore()
    server = SocketIOServer(
        ServerConfig(recovery=ConnectionStateRecovery(store)), sync_runner=database_sync_to_async
    )
    servers.append(server)
    chat = server.of("/chat")

    @chat.on("say")
    async def say(socket: Socket, text: str) -> None:
        await chat.emit("said", text)

    client = client_of(server)
    await client.connect()
    store.down = True
    with caplog.at_level("WARNING", logger="channels_sio.recovery"):
        for text in ("one", "two", "three"):
            await client.emit("say", text)
            # Delivered, with no offset: nothing was recorded.
            assert await client.expect_event("said") == [text]
        errors = [r for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1  # once for the outage, not once per packet
        store.down = False
        await client.emit("say", "four")
        text, offset = await client.expect_event("said")
        assert text == "four"
        assert offset == client.offset
        assert any("answers again" in r.getMessage() for r in caplog.records)
    await client.disconnect()


async def test_what_json_cannot_hold_raises_in_the_emitting_code(
    servers: list[SocketIOServer], caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = make_server()
    servers.append(server)
    chat = server.of("/chat")
    errors: list[str] = []

    @chat.on("bad")
    async def bad(socket: Socket) -> None:
        try:
            await chat.emit("x", object())
        except TypeError as exc:
            errors.append(str(exc))
        socket.data["unstorable"] = {1, 2}  # a set: JSON cannot hold it

    client = client_of(server)
    await client.connect()
    await client.emit_with_ack("bump")
    await client.emit("bad")
    await client.emit_with_ack("bump")
    assert len(errors) == 1
    with caplog.at_level("WARNING", logger="channels_sio.recovery"):
        await client.drop()
        await asyncio.sleep(0.05)
    assert any("its data cannot be stored" in r.getMessage() for r in caplog.records)
    await client.reconnect()
    assert client.recovered is False  # nothing kept, so nothing to restore
    await client.disconnect()
