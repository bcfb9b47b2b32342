"""A long-polling GET the client aborts while the server answers it: the ASGI form of
socket.io#5066, where engine.io wrote a response after its request was aborted and the write
failed.

The server is given packets to write (a POST of large messages, echoed to the waiting GET) at
the moment the GET's raw TCP connection goes away, closed or reset, with the order and the gap
between the two varied. Whichever wins, nothing reaches the application as an error and
nothing is logged as one: either the server saw the abort first (the session closes with
``transport error``), or it wrote the answer into a connection that is gone, and the session
lives on until the client closes it (``transport close``).
"""

from __future__ import annotations

import asyncio
import random

import httpx

from channels_sio.engineio.polling import WATCH_AFTER
from tests.support.eio import SEP, TIMEOUT, Polling, close_reason, error_json, polling_session
from tests.support.raw_websocket import drop
from tests.support.servers import ServerProcess, socketio_leftovers

ROUNDS = 30
MESSAGE = "4" + "x" * 100_000
BURST = SEP.join([MESSAGE] * 8)
GONE = (400, error_json(1, "Session ID unknown"))
OK = (200, b"ok")


async def waiting_get(server: ServerProcess, session: Polling) -> asyncio.StreamWriter:
    """A GET of ``session`` on a raw TCP connection, waiting on the server."""
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    target = session.url.removeprefix(server.url)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    await session.get_waiting()
    return writer


async def one_round(
    server: ServerProcess, client: httpx.AsyncClient, gap: float, *, reset: bool
) -> str:
    """Drop a waiting GET and post a burst ``gap`` seconds apart (negative: the drop first);
    the reason the session closed with."""
    session = Polling(server, client)
    await session.open()
    writer = await waiting_get(server, session)

    async def abort() -> None:
        await asyncio.sleep(max(gap, 0))
        drop(writer, reset=reset)

    async def burst() -> None:
        await asyncio.sleep(max(-gap, 0))
        response = await session.post(BURST)
        # Too late (the server saw the abort and closed the session) or taken.
        assert (response.status_code, response.content) in (GONE, OK)

    await asyncio.gather(abort(), burst())
    # The client leaves: the session is still there if the answer went into the dropped
    # connection (its "1" is taken), not if the server saw the abort first.
    response = await session.post("1")
    assert (response.status_code, response.content) in (GONE, OK)
    reason = await close_reason(server, session.sid)
    assert reason == ("transport close" if response.status_code == 200 else "transport error")
    assert reason is not None
    return reason


async def test_get_aborted_while_answered(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    rng = random.Random(5066)
    offset = protocol_server.log_offset()
    reasons: list[str] = []
    async with (
        asyncio.timeout(ROUNDS * TIMEOUT / 10),
        polling_session(protocol_server, client, background=True) as other,
    ):
        for _ in range(ROUNDS):
            # Around the moment the server starts watching a waiting GET for an abort.
            gap = rng.uniform(-2 * WATCH_AFTER, 0.004)
            reasons.append(await one_round(protocol_server, client, gap, reset=rng.random() < 0.5))
        # Another session never noticed.
        await other.send("4still here")
        assert await other.recv() == "4still here"
        await other.close()
    assert protocol_server.errors_logged(offset) == [], protocol_server.log()
    state = await asyncio.to_thread(protocol_server.wait_idle)
    assert not state["sessions"], state["sessions"]
    assert not state["tasks"], state["tasks"]
    assert not socketio_leftovers(state), state
    # Both races were run, not only one of them.
    assert set(reasons) == {"transport error", "transport close"}, reasons
