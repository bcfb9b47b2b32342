"""SIGTERM closes every session with "server shutting down", under each ASGI server.

The reasons are read from the process log ("engineio closed <sid>: <reason>", written by the
echo server's disconnect handler), since the state view is gone with the process.

uvicorn drains connections first (WebSockets get a 1012 disconnect, and a waiting GET is
answered by the next ping), then runs the ASGI lifespan shutdown, which closes the sessions
left. daphne runs no lifespan: channels_sio closes the sessions from a Twisted shutdown trigger.

The server runs settings_strict (pingInterval 2 s, pingTimeout 1.5 s): with the reference 300 /
200 ms, a polling session whose GET uvicorn's drain waits for could time out (200 ms after the
ping that answers the GET) before the lifespan shutdown, which follows up to 100 ms later.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Iterator

import httpx
import pytest

from tests.support.eio import TIMEOUT, polling_session, strict_server_process, websocket_session
from tests.support.servers import SERVER_KINDS, ServerProcess

CLOSED_LINE = re.compile(r"^engineio closed (\S+): (.+)$", re.MULTILINE)
# What the client sees: uvicorn closes with 1012 (service restart) itself; under daphne the
# session closes the socket normally.
CLOSE_CODE = {"uvicorn": 1012, "daphne": 1000}


@pytest.fixture(params=SERVER_KINDS)
def own_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """A server for this test alone: the test stops it."""
    server = strict_server_process(request.param)
    server.start()
    yield server
    server.stop()


def close_reasons(server: ServerProcess) -> dict[str, str]:
    return dict(CLOSED_LINE.findall(server.log_path.read_text(errors="replace")))


async def test_sigterm_closes_every_session(own_server: ServerProcess) -> None:
    kind = own_server.kind
    async with (
        httpx.AsyncClient(timeout=TIMEOUT) as client,
        websocket_session(own_server) as (sock, handshake),
        polling_session(own_server, client, background=True) as waiting,
        polling_session(own_server, client) as idle,
    ):
        await sock.echo("4before")
        await waiting.send("4before")
        assert await waiting.recv() == "4before"
        await waiting.get_waiting()
        # The idle session makes no request from now on.
        exit_code = await asyncio.to_thread(own_server.stop)

        # A clean exit (uvicorn re-raises the SIGTERM it handled).
        assert exit_code in (0, -signal.SIGTERM), own_server.log()
        assert await sock.closed() == CLOSE_CODE[kind]
        if kind == "daphne":
            # The waiting GET is answered with the close packet.
            assert await waiting.recv() == "1"
        else:
            # The waiting GET is answered by the next ping; the pong finds the server gone.
            assert isinstance(await waiting.recv_any(), httpx.ConnectError)
            assert waiting.pings == 1
    assert close_reasons(own_server) == {
        handshake["sid"]: "server shutting down",
        waiting.sid: "server shutting down",
        idle.sid: "server shutting down",
    }, own_server.log()
