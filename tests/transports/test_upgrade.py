"""Polling → WebSocket upgrade on the wire, its timeout, and refused second WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.eio import (
    TIMEOUT,
    Polling,
    WebSocket,
    close_reason,
    error_json,
    polling_session,
    session_state,
    state,
    websocket,
    websocket_session,
)
from tests.support.servers import ServerProcess

CLOSE_NORMAL = 1000
CLOSE_POLICY_VIOLATION = 1008
BAD_REQUEST = error_json(3, "Bad request")


def refused_code(server: ServerProcess) -> int:
    # daphne (autobahn) cannot send 1008 from the application: the socket closes with 1000.
    return CLOSE_POLICY_VIOLATION if server.kind == "uvicorn" else CLOSE_NORMAL


async def waiting_get(session: Polling) -> asyncio.Task[httpx.Response]:
    """A GET of the session, returned once it waits on the server."""
    pending = asyncio.create_task(session.get())
    await session.get_waiting()
    return pending


async def released_get(session: Polling, pending: asyncio.Task[httpx.Response]) -> list[str]:
    """What the GET pending during the upgrade ends with, pings answered as the client does."""
    response = await asyncio.wait_for(pending, TIMEOUT)
    assert response.status_code == 200
    packets = response.text.split("\x1e")
    if packets == ["2"]:
        # A ping was due before the probe: answer it; the next poll is answered at once.
        await session.send("3")
        return await session.poll()
    return packets


async def ping_probe(probe: WebSocket) -> None:
    """The probe ping, answered by the probe pong."""
    await probe.send("2probe")
    assert await probe.recv() == "3probe"


async def ping_probe_releasing_get(session: Polling, probe: WebSocket) -> None:
    """Probe with a GET pending: the GET must be released with a noop."""
    pending = await waiting_get(session)
    await ping_probe(probe)
    assert await released_get(session, pending) == ["6"]


async def upgrade(server: ServerProcess, session: Polling, probe: WebSocket) -> None:
    """Probe and upgrade, with a GET pending meanwhile."""
    await ping_probe_releasing_get(session, probe)
    await probe.send("5")
    assert await session_state(server, session.sid) == {
        "state": "open",
        "transport": "websocket",
        "upgrade": "upgraded",
        "get_waiting": False,
    }


@contextlib.asynccontextmanager
async def upgrading(
    server: ServerProcess, client: httpx.AsyncClient
) -> AsyncIterator[tuple[Polling, WebSocket]]:
    """A polling session and a probe WebSocket for it, not probed yet. After the block the
    client closes the probe, which must have become the transport: "transport close"."""
    async with (
        polling_session(server, client) as session,
        websocket(server, sid=session.sid) as probe,
    ):
        yield session, probe
        await probe.close()
    assert await close_reason(server, session.sid) == "transport close"


async def test_upgrade(protocol_server: ServerProcess, client: httpx.AsyncClient) -> None:
    async with upgrading(protocol_server, client) as (session, probe):
        await upgrade(protocol_server, session, probe)
        await probe.echo("4over websocket")
        await probe.echo(b"\x00\x01binary")
        # Polling is over for this session: its requests are bad requests and change nothing.
        assert (await session.get()).content == BAD_REQUEST
        assert (await session.post("4x")).content == BAD_REQUEST
        await probe.echo("4still")
        # The heartbeat now runs over the WebSocket.
        await asyncio.sleep(0.7)
        assert len(probe.ping_times) >= 1
        await probe.echo("4after pings")


async def test_message_sent_during_upgrade_delivered_once(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    async with upgrading(protocol_server, client) as (session, probe):
        await ping_probe_releasing_get(session, probe)
        # Polling is paused; the server's answer waits for the transport that comes next.
        await session.send("4during", "bAQID")
        await probe.send("5")
        assert await probe.recv() == "4during"
        assert await probe.recv() == b"\x01\x02\x03"
        await probe.echo("4after")
        # Nothing of it is left for a poll.
        assert (await session.get()).content == BAD_REQUEST


async def test_message_sent_while_probing_goes_to_polling(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    async with upgrading(protocol_server, client) as (session, probe):
        # Probe socket open but not probed yet: polling is still the transport.
        await session.send("4probing")
        assert await session.receive(1) == ["4probing"]
        await upgrade(protocol_server, session, probe)
        await probe.echo("4upgraded")


async def test_invalid_packet_on_probe_abandons_upgrade(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    async with polling_session(protocol_server, client, background=True) as session:
        async with websocket(protocol_server, sid=session.sid) as probe:
            await probe.send("4not a probe")
            assert await probe.closed() == CLOSE_NORMAL
        # The session carries on over polling, and may upgrade later.
        await session.send("4polling")
        assert await session.recv() == "4polling"
        assert (await session_state(protocol_server, session.sid) or {})["upgrade"] == "none"
        await session.close()
    assert await close_reason(protocol_server, session.sid) == "transport close"


async def test_probe_socket_closed_by_client_abandons_upgrade(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    async with polling_session(protocol_server, client, background=True) as session:
        async with websocket(protocol_server, sid=session.sid) as probe:
            await ping_probe(probe)
            await probe.close()
        # Released with a noop for the upgrade, the poller goes on polling.
        assert await session.recv() == "6"
        await session.send("4polling")
        # Polls during the (abandoned) upgrade are answered with noops at once.
        packets = [await session.recv()]
        while packets[-1] == "6":
            packets.append(await session.recv())
        assert packets[-1] == "4polling"
        async with websocket(protocol_server, sid=session.sid) as probe:
            await ping_probe(probe)
            assert await session.recv() == "6"
            await probe.send("5")
            await probe.echo("4upgraded later")
            await probe.close()
    assert await close_reason(protocol_server, session.sid) == "transport close"


# -- upgrade timeout (settings_strict: upgradeTimeout 300 ms) ------------------------------


@pytest.mark.parametrize("probed", [False, True], ids=["no-probe", "no-upgrade"])
async def test_upgrade_timeout(
    strict_server: ServerProcess, client: httpx.AsyncClient, probed: bool
) -> None:
    async with polling_session(strict_server, client) as session:
        async with websocket(strict_server, sid=session.sid) as probe:
            if probed:
                await ping_probe(probe)
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await probe.closed() == CLOSE_NORMAL
            assert 0.2 <= loop.time() - started <= 2.0
        assert (await session_state(strict_server, session.sid) or {})["upgrade"] == "none"
        # The session carries on over polling, with a waiting GET again.
        pending = await waiting_get(session)
        await session.send("4polling")
        response = await asyncio.wait_for(pending, TIMEOUT)
        assert response.text == "4polling"
        # And a later upgrade succeeds.
        async with websocket(strict_server, sid=session.sid) as probe:
            await upgrade(strict_server, session, probe)
            await probe.echo("4upgraded")
            await probe.close()
    assert await close_reason(strict_server, session.sid) == "transport close"


# -- a second WebSocket is refused, and nothing else changes -----------------------------


async def assert_refused(server: ServerProcess, sid: str) -> None:
    before = await state(server)
    async with websocket(server, sid=sid) as second:
        assert await second.closed() == refused_code(server)
    after = await state(server)
    assert after["sessions"] == before["sessions"]
    assert after["closed"] == before["closed"]


async def test_second_websocket_unknown_sid(protocol_server: ServerProcess) -> None:
    await assert_refused(protocol_server, "AAAAAAAAAAAAAAAAAAAA")


@pytest.mark.parametrize("stage", ["probing", "upgrading"])
async def test_second_websocket_while_upgrading(
    protocol_server: ServerProcess, client: httpx.AsyncClient, stage: str
) -> None:
    async with upgrading(protocol_server, client) as (session, probe):
        pending = await waiting_get(session)
        if stage == "upgrading":
            await ping_probe(probe)
            assert await released_get(session, pending) == ["6"]
        await assert_refused(protocol_server, session.sid)
        if stage == "probing":
            # The polling transport still works, and the first probe goes on.
            await session.send("4polling")
            assert await released_get(session, pending) == ["4polling"]
            await upgrade(protocol_server, session, probe)
        else:
            await probe.send("5")
        await probe.echo("4first probe won")


async def test_second_websocket_after_upgrade(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    async with upgrading(protocol_server, client) as (session, probe):
        await upgrade(protocol_server, session, probe)
        await assert_refused(protocol_server, session.sid)
        await probe.echo("4still upgraded")


async def test_second_websocket_for_websocket_session(protocol_server: ServerProcess) -> None:
    async with websocket_session(protocol_server) as (sock, handshake):
        await assert_refused(protocol_server, handshake["sid"])
        await sock.echo("4still here")
        await sock.close()
    assert await close_reason(protocol_server, handshake["sid"]) == "transport close"
