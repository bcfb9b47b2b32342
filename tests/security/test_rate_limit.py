"""handshake_rate_limit (settings_ratelimit: 5 new sessions per address per 5 s), from several
loopback addresses at once, over both transports, under uvicorn and daphne."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support.eio import TIMEOUT, Polling, polling_url, websocket_url
from tests.support.servers import ServerProcess

LIMIT = 5


@contextlib.asynccontextmanager
async def client_from(address: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose connections leave from ``address`` (any 127.x.y.z is loopback)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as client:
        yield client


async def open_websocket(server: ServerProcess, address: str) -> None:
    """Open a direct WebSocket session from ``address``, read its open packet, close it."""
    ws = await asyncio.wait_for(connect(websocket_url(server), local_addr=(address, 0)), TIMEOUT)
    try:
        assert str(await asyncio.wait_for(ws.recv(), TIMEOUT)).startswith("0{")
    finally:
        await asyncio.wait_for(ws.close(), TIMEOUT)


async def test_polling_handshakes_over_the_limit_get_429(ratelimit_server: ServerProcess) -> None:
    async with client_from("127.0.0.2") as limited, client_from("127.0.0.3") as other:
        sessions = [Polling(ratelimit_server, limited) for _ in range(LIMIT)]
        for session in sessions:
            await session.open()
        refused = await limited.get(polling_url(ratelimit_server))
        assert refused.status_code == 429
        assert refused.json() == {"code": 3, "message": "Bad request"}
        assert refused.headers["retry-after"] == "1"
        # No CORS header was asked for, and none is given; no session was made.
        assert "access-control-allow-origin" not in refused.headers
        # Another address has a bucket of its own.
        elsewhere = Polling(ratelimit_server, other)
        await elsewhere.open()
        # Requests of open sessions are not handshakes: they are never limited.
        for session in sessions:
            await session.send("4still here")
            assert await session.poll() == ["4still here"]
        # The bucket refills at one handshake a second.
        await asyncio.sleep(1.1)
        extra = Polling(ratelimit_server, limited)
        await extra.open()
        assert (await limited.get(polling_url(ratelimit_server))).status_code == 429
        for session in [*sessions, extra, elsewhere]:
            await session.send("1")


async def test_websocket_handshakes_over_the_limit_are_refused(
    ratelimit_server: ServerProcess,
) -> None:
    for _ in range(LIMIT):
        await open_websocket(ratelimit_server, "127.0.0.4")
    with pytest.raises(InvalidStatus) as refused:
        await asyncio.wait_for(
            connect(websocket_url(ratelimit_server), local_addr=("127.0.0.4", 0)), TIMEOUT
        )
    assert refused.value.response.status_code == 403
    await open_websocket(ratelimit_server, "127.0.0.5")
    # Polling and WebSocket handshakes share one bucket per address.
    async with client_from("127.0.0.4") as client:
        answer = await client.get(polling_url(ratelimit_server))
        assert (answer.status_code, json.loads(answer.content)["code"]) == (429, 3)
