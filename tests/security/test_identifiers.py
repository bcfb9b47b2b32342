"""Identifiers: sids, socket ids and pids are 128 bits or more from ``secrets``, and knowing a
socket id (which applications show to other users) opens nothing of its session."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.socketio.raw_client import PATH, SioPolling, sio_polling_url
from tests.support.eio import TIMEOUT, error_json
from tests.support.servers import ServerProcess


def random_bits(token: str) -> int:
    """Bits of a ``secrets.token_urlsafe`` token (unpadded base64url)."""
    return len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8


async def connect_root(session: SioPolling, auth: dict[str, Any] | None = None) -> dict[str, Any]:
    """Open the session and connect it to ``/``; the CONNECT reply's data."""
    await session.open()
    await session.send("40" + (json.dumps(auth) if auth else ""))
    reply, auth_echo = await session.receive(2)
    assert reply.startswith("40{"), reply
    assert auth_echo.startswith('42["auth"'), auth_echo
    return dict(json.loads(reply[2:]))


async def test_sids_socket_ids_and_pids_have_128_random_bits_or_more(
    security_server: ServerProcess,
) -> None:
    seen: set[str] = set()
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        for _ in range(3):
            session = SioPolling(security_server, client)
            connected = await connect_root(session)
            # A cluster node's prefix (8 characters) may start the sid: 22 random ones follow.
            assert len(session.sid) in (22, 30)
            assert random_bits(session.sid[-22:]) == 128
            assert random_bits(connected["sid"]) == 128
            assert random_bits(connected["pid"]) == 144
            ids = {session.sid, connected["sid"], connected["pid"]}
            assert len(ids) == 3
            assert not ids & seen
            seen |= ids
            await session.send("1")


async def test_a_socket_id_opens_nothing_of_its_session(security_server: ServerProcess) -> None:
    async with (
        httpx.AsyncClient(timeout=TIMEOUT) as owner_client,
        httpx.AsyncClient(timeout=TIMEOUT) as other_client,
    ):
        owner = SioPolling(security_server, owner_client)
        connected = await connect_root(owner)
        socket_id = connected["sid"]
        unknown = error_json(1, "Session ID unknown")

        # As an Engine.IO sid: polling reads and writes are refused...
        poll = await other_client.get(sio_polling_url(security_server, sid=socket_id))
        assert (poll.status_code, poll.content) == (400, unknown)
        post = await other_client.post(
            sio_polling_url(security_server, sid=socket_id), content=b'42["message","x"]'
        )
        assert (post.status_code, post.content) == (400, unknown)
        # ...and a WebSocket upgrade with it is closed at once, with nothing sent.
        url = f"ws{security_server.url.removeprefix('http')}{PATH}"
        async with asyncio.timeout(TIMEOUT):
            ws = await connect(f"{url}?EIO=4&transport=websocket&sid={socket_id}")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            # daphne sends 1000 where uvicorn sends 1008 (see WebSocketConsumer.close_socket).
            assert ws.close_code == (1008 if security_server.kind == "uvicorn" else 1000)

        # As a recovery pid: a fresh socket, not the owner's.
        other = SioPolling(security_server, other_client)
        recovered = await connect_root(other, {"pid": socket_id, "offset": "0-0"})
        assert recovered["sid"] != socket_id
        assert recovered["pid"] != connected["pid"]

        # The owner's session saw none of it and carries on.
        await owner.send('421["message-with-ack","still mine"]')
        assert await owner.receive(1) == ['431["still mine"]']
        await owner.send("1")
        await other.send("1")
