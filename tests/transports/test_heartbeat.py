"""The server's heartbeat over WebSocket: pings every pingInterval, ping timeout without pongs."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from tests.support.eio import TIMEOUT, close_reason, websocket_session
from tests.support.servers import ServerProcess

CLOSE_NORMAL = 1000


async def test_pings_keep_an_answering_client_connected(protocol_server: ServerProcess) -> None:
    async with websocket_session(protocol_server) as (sock, handshake):
        opened = time.monotonic()
        await asyncio.sleep(3)
        await sock.echo("4still here")
        times = [opened, *sock.ping_times]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # One ping every pingInterval (300 ms) after the previous pong: about ten in 3 s.
        assert 8 <= len(sock.ping_times) <= 11, gaps
        assert all(0.25 <= gap <= 0.6 for gap in gaps), gaps
        await sock.close()
    assert await close_reason(protocol_server, handshake["sid"]) == "transport close"


async def test_ping_timeout_without_pong(protocol_server: ServerProcess) -> None:
    async with websocket_session(protocol_server, pong=False) as (silent, silent_handshake):
        # Timed from the silent session's opening: the other one may take a while to open.
        opened = time.monotonic()
        async with websocket_session(protocol_server) as (good, good_handshake):
            assert await silent.closed() == CLOSE_NORMAL
            elapsed = time.monotonic() - opened
            # pingInterval + pingTimeout = 500 ms, after exactly one ping.
            assert 0.4 <= elapsed <= 2.0
            assert len(silent.ping_times) == 1
            assert await close_reason(protocol_server, silent_handshake["sid"]) == "ping timeout"
            await good.echo("4still")
            await good.close()
    assert await close_reason(protocol_server, good_handshake["sid"]) == "transport close"


async def test_pong_late_by_less_than_timeout(protocol_server: ServerProcess) -> None:
    """A pong that comes within pingTimeout, even late, keeps the session."""
    async with websocket_session(protocol_server, pong=False) as (sock, handshake):
        for _ in range(3):
            await asyncio.wait_for(sock.pinged.wait(), TIMEOUT)
            sock.pinged.clear()
            await asyncio.sleep(0.1)
            await sock.send("3")
        await sock.echo("4alive")
        await sock.close()
    assert await close_reason(protocol_server, handshake["sid"]) == "transport close"


@pytest.mark.slow
@pytest.mark.wall_clock
@pytest.mark.timeout(150)
async def test_websocket_alive_for_100_seconds(protocol_server: ServerProcess) -> None:
    async with websocket_session(protocol_server) as (sock, handshake):
        opened = time.monotonic()
        for second in range(10, 101, 10):
            await asyncio.sleep(opened + second - time.monotonic())
            await sock.echo(f"4at {second} s")
        # One ping per pingInterval plus a round trip: about 330 in 100 s.
        assert len(sock.ping_times) >= 250
        await sock.echo(b"\x00binary at the end\xff")
        await sock.close()
    assert await close_reason(protocol_server, handshake["sid"]) == "transport close"
