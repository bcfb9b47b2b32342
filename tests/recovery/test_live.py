"""persist_live_sessions in one process (channels_sio/recovery/live.py): the sessions of
connected sockets kept in the store as they change, written in groups, discarded on an
explicit disconnect, kept fresh; and restored by another server that shares the store while
the first one never saw the client go (a worker that died)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from channels.db import database_sync_to_async

from channels_sio import Socket
from channels_sio.recovery import ConnectionStateRecovery, MemoryStore
from channels_sio.socketio import ServerConfig, SocketIOServer
from channels_sio.socketio.adapter import SessionRecord

from .conftest import client_of


class CountingStore(MemoryStore):
    """A memory store that counts its session writes."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.writes: list[list[str]] = []

    async def save_sessions(self, sessions: Sequence[SessionRecord]) -> None:
        self.writes.append([session.pid for session in sessions])
        await super().save_sessions(sessions)


def make_server(store: MemoryStore) -> SocketIOServer:
    recovery = ConnectionStateRecovery(store, persist_live_sessions=True)
    server = SocketIOServer(ServerConfig(recovery=recovery), sync_runner=database_sync_to_async)
    chat = server.of("/chat")

    @chat.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any]) -> None:
        if not socket.recovered:
            socket.join("lobby")
            socket.data["name"] = "ann"

    @chat.on("join")
    async def join(socket: Socket, *rooms: str) -> bool:
        for room in rooms:  # one change each
            socket.join(room)
        return True

    @chat.on("leave")
    async def leave(socket: Socket, room: str) -> bool:
        socket.leave(room)
        return True

    @chat.on("set")
    async def set_data(socket: Socket, values: Any) -> bool:
        socket.data.update(values)
        return True

    @chat.on("say")
    async def say(socket: Socket, text: str) -> None:
        await chat.to("lobby").emit("said", text)

    @chat.on("bye")
    async def bye(socket: Socket) -> None:
        server.spawn(socket.disconnect())

    return server


async def kept(store: MemoryStore, pid: str | None, **expected: Any) -> SessionRecord:
    """The session kept for ``pid`` once its fields are ``expected`` (waits for the write)."""
    async with asyncio.timeout(1):
        while True:
            found = {k.session.pid: k.session for k in await store.browse_sessions()}
            session = found.get(pid or "")
            if session is not None and all(
                getattr(session, name) == value for name, value in expected.items()
            ):
                return session
            await asyncio.sleep(0.005)


async def not_kept(store: MemoryStore, pid: str | None) -> None:
    async with asyncio.timeout(1):
        while True:
            if not any(k.session.pid == pid for k in await store.browse_sessions()):
                return
            await asyncio.sleep(0.005)


async def test_a_connected_sockets_session_is_kept_as_it_changes(
    servers: list[SocketIOServer],
) -> None:
    store = CountingStore()
    server = make_server(store)
    servers.append(server)
    client = client_of(server)
    reply = await client.connect()
    session = await kept(store, client.pid, rooms={reply["sid"], "lobby"})
    assert session.sid == reply["sid"]
    assert session.data == {"name": "ann"}  # as the connect handler left it
    assert session.position is not None
    await client.emit_with_ack("set", {"mood": "ok"})
    assert await client.emit_with_ack("join", "a", "b") == [True]
    # socket.data changes are taken with the next write of the session.
    await kept(
        store,
        client.pid,
        rooms={reply["sid"], "lobby", "a", "b"},
        data={
            "name": "ann",
            "mood": "ok",
        },
    )
    await client.emit_with_ack("leave", "a")
    await kept(store, client.pid, rooms={reply["sid"], "lobby", "b"})
    await client.disconnect()
    await not_kept(store, client.pid)


async def test_changes_are_written_in_groups(servers: list[SocketIOServer]) -> None:
    store = CountingStore()
    server = make_server(store)
    servers.append(server)
    clients = [client_of(server) for _ in range(20)]
    await asyncio.gather(*(client.connect() for client in clients))
    rooms = [f"room-{n}" for n in range(50)]
    await asyncio.gather(*(client.emit_with_ack("join", *rooms) for client in clients))
    for client in clients:
        await kept(store, client.pid, rooms={client.sid, "lobby", *rooms})
    # 20 connects and 1,000 joins: each socket's changes coalesce, and the sockets changed
    # while a write is in flight go out together in the next.
    assert sum(map(len, store.writes)) < 20 * 51 / 5
    assert len(store.writes) < 20
    for client in clients:
        await client.disconnect()


@pytest.mark.parametrize("by", ["client", "server"])
async def test_an_explicit_disconnect_discards_the_session(
    servers: list[SocketIOServer], by: str
) -> None:
    store = MemoryStore()
    server = make_server(store)
    servers.append(server)
    client = client_of(server)
    await client.connect()
    await kept(store, client.pid)
    # A change is pending when the disconnect comes: it cannot bring the session back.
    await client.emit_with_ack("join", "late")
    if by == "client":
        await client.disconnect()
    else:
        await client.emit("bye")
        await client.ws.receive_output(1)  # the DISCONNECT
        await client.ws.disconnect()
    await not_kept(store, client.pid)
    await asyncio.sleep(0.05)
    await not_kept(store, client.pid)


async def test_a_lost_connection_keeps_its_final_state(servers: list[SocketIOServer]) -> None:
    store = MemoryStore()
    server = make_server(store)
    servers.append(server)
    client = client_of(server)
    reply = await client.connect()
    await client.emit_with_ack("join", "last")
    await client.drop()
    await kept(store, client.pid, rooms={reply["sid"], "lobby", "last"})
    assert (await client.reconnect())["sid"] == reply["sid"]
    assert client.recovered
    # Restored, and kept again while connected.
    await kept(store, client.pid, rooms={reply["sid"], "lobby", "last"})
    await client.disconnect()


async def test_sessions_are_rewritten_before_they_expire(servers: list[SocketIOServer]) -> None:
    store = MemoryStore(max_disconnection_duration=400)
    server = make_server(store)
    servers.append(server)
    client = client_of(server)
    await client.connect()
    await kept(store, client.pid)
    await asyncio.sleep(0.6)  # past the duration: rewritten every 100 ms meanwhile
    await kept(store, client.pid)
    await client.disconnect()


async def test_a_worker_that_never_saw_the_drop_is_not_needed(
    servers: list[SocketIOServer],
) -> None:
    """Two servers share a store; the client's first server is cut off without noticing
    (as a killed worker), and the client comes back on the other with its pid and offset."""
    store = MemoryStore()
    first, second = make_server(store), make_server(store)
    servers += [first, second]
    client, talker = client_of(first), client_of(second)
    reply = await client.connect()
    await talker.connect()
    await client.emit_with_ack("join", "red")
    await kept(store, client.pid, rooms={reply["sid"], "lobby", "red"})
    # The first server "dies": its socket is never closed, and nothing of it is written again.
    first_live = first.config.recovery
    assert isinstance(first_live, ConnectionStateRecovery)
    assert first_live.live is not None
    await first_live.live.close()
    await talker.emit("say", "while away")  # recorded, and delivered by the second server
    assert (await talker.expect_event("said"))[0] == "while away"
    moved = client_of(second)
    moved.pid, moved.offset = client.pid, client.offset
    assert (await moved.connect())["sid"] == reply["sid"]
    assert moved.recovered
    text, _ = await moved.expect_event("said")
    assert text == "while away"
    await moved.emit_with_ack("join", "again")
    await kept(store, client.pid, rooms={reply["sid"], "lobby", "red", "again"})
    await moved.disconnect()
    await talker.disconnect()
    await client.drop()
