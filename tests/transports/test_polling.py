"""Long-polling on the wire: handshake, messages both ways, and every way a session closes."""

from __future__ import annotations

import asyncio
import base64
import time

import httpx
import pytest

from tests.support.eio import (
    TIMEOUT,
    Polling,
    close_reason,
    error_json,
    polling_session,
    session_state,
    websocket_session,
)
from tests.support.servers import ServerProcess

BAD_REQUEST = error_json(3, "Bad request")
UNKNOWN_SID = error_json(1, "Session ID unknown")
BINARY = bytes(range(256))


async def test_handshake(protocol_server: ServerProcess, client: httpx.AsyncClient) -> None:
    sids = set()
    for _ in range(3):
        session = Polling(protocol_server, client)
        handshake = await session.open()
        assert handshake == {
            "sid": session.sid,
            "upgrades": ["websocket"],
            "pingInterval": 300,
            "pingTimeout": 200,
            "maxPayload": 1_000_000,
        }
        assert await session_state(protocol_server, session.sid) == {
            "state": "open",
            "transport": "polling",
            "upgrade": "none",
            "get_waiting": False,
        }
        sids.add(session.sid)
        await session.send("1")
    assert len(sids) == 3


async def test_text_and_binary_echo(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    async with polling_session(protocol_server, client) as session:
        for packet in ["4hello", "4", "4héllo wörld ✓", "b" + base64.b64encode(BINARY).decode()]:
            await session.send(packet)
            assert await session.receive(1) == [packet]
        # Empty binary message: "b" and nothing else.
        await session.send("b")
        assert await session.receive(1) == ["b"]
        await session.send("1")
    assert await close_reason(protocol_server, session.sid) == "transport close"


async def test_several_packets_in_one_post_keep_their_order(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    packets = ["4one", "bAQID", "4two", "6", "4three", "3", "b/w==", "4" + "x" * 5000]
    messages = [p for p in packets if p[0] in "4b"]
    async with polling_session(protocol_server, client) as session:
        await session.send(*packets)
        assert await session.receive(len(messages)) == messages
        await session.send("1")
    assert await close_reason(protocol_server, session.sid) == "transport close"


async def test_pending_get_answered_by_a_message(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    async with polling_session(protocol_server, client, background=True) as session:
        await session.send("4a")
        assert await session.recv() == "4a"
        await session.send("4b", "4c")
        assert [await session.recv(), await session.recv()] == ["4b", "4c"]
        await session.close()
        assert await session.recv() == "6"
        gone = await session.recv_any()
        assert isinstance(gone, httpx.Response)
        assert (gone.status_code, gone.content) == (400, UNKNOWN_SID)
    assert await close_reason(protocol_server, session.sid) == "transport close"


async def test_client_close_answers_pending_get_with_a_noop(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    # engine.io 6.6 (lib/transports/polling.ts, onData and onClose): a CLOSE posted while a GET
    # waits answers that GET with a noop, the POST with "ok", and the session is gone.
    async with polling_session(protocol_server, client) as session:
        pending = asyncio.create_task(session.get())
        await session.get_waiting()
        posted = await session.post("1")
        assert (posted.status_code, posted.text) == (200, "ok")
        response = await asyncio.wait_for(pending, TIMEOUT)
        assert (response.status_code, response.text) == (200, "6")
        again = await session.get()
        assert (again.status_code, again.content) == (400, UNKNOWN_SID)
    assert await close_reason(protocol_server, session.sid) == "transport close"


# -- parse error ------------------------------------------------------------------------

MALFORMED = {
    "unknown-type": b"7hello",
    "unknown-type-in-payload": b"4fine\x1e9bad",
    "bad-base64": b"b!!not base64!!",
    "invalid-utf8": b"4\xff\xfe",
    "empty": b"",
    "empty-record": b"4a\x1e\x1e4b",
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
async def test_parse_error_closes_only_that_session(
    protocol_server: ServerProcess, client: httpx.AsyncClient, body: bytes
) -> None:
    async with (
        polling_session(protocol_server, client, background=True) as bad,
        polling_session(protocol_server, client, background=True) as good,
    ):
        response = await bad.post(body)
        assert (response.status_code, response.content) == (400, BAD_REQUEST)
        # Its pending GET gets the close packet; the session is gone.
        assert await bad.recv() == "1"
        await bad.finished()
        assert await close_reason(protocol_server, bad.sid) == "parse error"
        # The other session, and the server, carry on.
        await good.send("4still")
        assert await good.recv() == "4still"
        third = Polling(protocol_server, client)
        await third.open()
        await third.send("4new", "1")
        await good.close()
    assert await close_reason(protocol_server, good.sid) == "transport close"
    assert await close_reason(protocol_server, third.sid) == "transport close"


# -- ping timeout -----------------------------------------------------------------------


async def test_heartbeat_keeps_polling_session(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    async with polling_session(protocol_server, client, background=True) as session:
        await asyncio.sleep(1.6)
        # pingInterval 300 ms: about five pings, each answered.
        assert 3 <= session.pings <= 6
        await session.send("4alive")
        assert await session.recv() == "4alive"
        await session.close()
    assert await close_reason(protocol_server, session.sid) == "transport close"


async def wait_closed(server: ServerProcess, sid: str, since: float) -> tuple[str | None, float]:
    reason = await close_reason(server, sid)
    return reason, time.monotonic() - since


async def test_ping_timeout_when_client_stops_polling(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    session = Polling(protocol_server, client)
    await session.open()
    opened = time.monotonic()
    reason, elapsed = await wait_closed(protocol_server, session.sid, opened)
    assert reason == "ping timeout"
    # pingInterval + pingTimeout = 500 ms, seen through the state view.
    assert 0.4 <= elapsed <= 2.0
    assert (await session.get()).content == error_json(1, "Session ID unknown")


async def test_ping_timeout_when_client_polls_without_pong(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    session = Polling(protocol_server, client)
    await session.open()
    opened = time.monotonic()
    first = await asyncio.wait_for(session.get(), TIMEOUT)
    assert first.text == "2"
    # The next poll is still answered: with the close packet, when the pong is overdue.
    second = await asyncio.wait_for(session.get(), TIMEOUT)
    assert (second.status_code, second.text) == (200, "1")
    reason, elapsed = await wait_closed(protocol_server, session.sid, opened)
    assert reason == "ping timeout"
    assert 0.4 <= elapsed <= 2.0


# -- transport error --------------------------------------------------------------------


async def test_overlapping_get_closes_session(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    session = Polling(protocol_server, client)
    await session.open()
    first = asyncio.create_task(session.get())
    await session.get_waiting()
    second = await session.get()
    assert (second.status_code, second.content) == (400, BAD_REQUEST)
    response = await asyncio.wait_for(first, TIMEOUT)
    assert (response.status_code, response.text) == (200, "1")
    assert await close_reason(protocol_server, session.sid) == "transport error"


async def test_aborted_get_closes_session(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    session = Polling(protocol_server, client)
    await session.open()
    # A raw connection, so the abort is exactly "the client hung up while its GET waited".
    _, writer = await asyncio.open_connection("127.0.0.1", protocol_server.port)
    target = session.url.removeprefix(protocol_server.url)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    await session.get_waiting()
    writer.close()
    await writer.wait_closed()
    assert await close_reason(protocol_server, session.sid) == "transport error"
    assert (await session.get()).content == error_json(1, "Session ID unknown")


async def test_aborted_get_other_session_unaffected(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    async with polling_session(protocol_server, client, background=True) as good:
        session = Polling(protocol_server, client)
        await session.open()
        aborted = asyncio.create_task(session.get())
        await session.get_waiting()
        # Cancelling the request makes httpx drop its connection.
        aborted.cancel()
        with pytest.raises(asyncio.CancelledError):
            await aborted
        assert await close_reason(protocol_server, session.sid) == "transport error"
        await good.send("4still")
        assert await good.recv() == "4still"
        await good.close()
    assert await close_reason(protocol_server, good.sid) == "transport close"


async def test_post_at_max_payload_accepted(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    packet = "4" + "x" * (1_000_000 - 1)
    async with polling_session(protocol_server, client) as session:
        await session.send(packet)
        assert await session.receive(1) == [packet]
        await session.send("1")
    assert await close_reason(protocol_server, session.sid) == "transport close"


async def test_post_over_max_payload_closes_session(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    async with (
        polling_session(protocol_server, client, background=True) as session,
        polling_session(protocol_server, client, background=True) as good,
    ):
        response = await session.post("4" + "x" * 1_000_000)
        assert (response.status_code, response.content) == (413, b"Payload Too Large")
        assert await session.recv() == "1"
        await session.finished()
        assert await close_reason(protocol_server, session.sid) == "transport error"
        await good.send("4still")
        assert await good.recv() == "4still"
        await good.close()


async def test_unexpected_packet_type_from_client(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    # Valid packets a v4 client never sends on its transport: open, ping, upgrade.
    for packet in ["0", "2", "5"]:
        session = Polling(protocol_server, client)
        await session.open()
        await session.send(packet)
        assert await close_reason(protocol_server, session.sid) == "transport error"


async def test_polling_to_direct_websocket_sid_is_bad_request(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    async with websocket_session(protocol_server) as (sock, handshake):
        session = Polling(protocol_server, client)
        session.sid = handshake["sid"]
        assert (await session.get()).content == BAD_REQUEST
        await sock.echo("4ok")
        await sock.close()
