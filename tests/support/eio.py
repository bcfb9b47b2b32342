"""Raw Engine.IO v4 clients for the transport tests: polling over httpx, WebSocket over websockets.

Nothing here interprets the protocol beyond what a test needs to stay connected: pings ("2")
are answered with pongs ("3") unless a test turns that off, and every other packet is handed
to the test exactly as it came off the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .servers import ServerProcess

#: settings_strict: the reference configuration with same-origin CORS, short upgrade timeout.
STRICT_SETTINGS = "tests.transports.settings_strict"
REPO_DIR = Path(__file__).resolve().parents[2]
#: How a settings_strict server finds it: the repository on PYTHONPATH.
STRICT_ENV = {"PYTHONPATH": str(REPO_DIR)}
PATH = "/engine.io/"
SEP = "\x1e"
#: Bound on every single wait of a test (a response, a frame, a close).
TIMEOUT = 5.0
SID = re.compile(r"^[A-Za-z0-9_-]{20,}$")
HANDSHAKE_KEYS = ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]


def strict_server_process(kind: str) -> ServerProcess:
    """A server of settings_strict (not started)."""
    return ServerProcess(kind, STRICT_SETTINGS, env=STRICT_ENV)


def error_json(code: int, message: str) -> bytes:
    """The exact body of an Engine.IO HTTP error."""
    return json.dumps({"code": code, "message": message}, separators=(",", ":")).encode()


def polling_url(server: ServerProcess, **params: str) -> str:
    query = {"EIO": "4", "transport": "polling", **params}
    return f"{server.url}{PATH}?{urlencode(query)}"


def websocket_url(server: ServerProcess, **params: str) -> str:
    query = {"EIO": "4", "transport": "websocket", **params}
    return f"ws{server.url.removeprefix('http')}{PATH}?{urlencode(query)}"


def parse_open(packet: str) -> dict[str, Any]:
    """The handshake of an open packet, checked to be compact JSON with the v4 keys in order."""
    assert packet.startswith("0{"), packet
    handshake = json.loads(packet[1:])
    assert isinstance(handshake, dict)
    assert list(handshake) == HANDSHAKE_KEYS, packet
    assert packet[1:] == json.dumps(handshake, separators=(",", ":")), "not compact JSON"
    assert SID.match(handshake["sid"]), handshake["sid"]
    return handshake


async def close_reason(server: ServerProcess, sid: str) -> str | None:
    """The reason the server gave for closing ``sid`` (waits for it, off the event loop)."""
    return await asyncio.to_thread(server.close_reason, sid)


async def state(server: ServerProcess) -> dict[str, Any]:
    return await asyncio.to_thread(server.state)


async def session_state(server: ServerProcess, sid: str) -> dict[str, str] | None:
    sessions = (await state(server))["sessions"]
    assert isinstance(sessions, dict)
    return sessions.get(sid)


class Polling:
    """One long-polling session driven by hand.

    ``get``/``post`` are single raw requests. ``start`` runs a poller in the background that
    answers pings and queues every other packet (and the final ``1``) for ``recv``.
    """

    def __init__(self, server: ServerProcess, client: httpx.AsyncClient) -> None:
        self.server = server
        self.client = client
        self.sid = ""
        self.handshake: dict[str, Any] = {}
        self.pings = 0
        self._post_lock = asyncio.Lock()
        self._queue: asyncio.Queue[str | httpx.Response | httpx.TransportError] = asyncio.Queue()
        self._poller: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return polling_url(self.server, sid=self.sid)

    async def open(self, headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = await self.client.get(polling_url(self.server), headers=headers)
        assert response.status_code == 200, (response.status_code, response.content)
        self.handshake = parse_open(response.text)
        self.sid = self.handshake["sid"]
        return self.handshake

    async def get(self) -> httpx.Response:
        return await self.client.get(self.url)

    async def post(self, body: str | bytes) -> httpx.Response:
        # One POST at a time: a second concurrent one would close the session.
        async with self._post_lock:
            return await self.client.post(self.url, content=body)

    async def send(self, *packets: str) -> None:
        response = await self.post(SEP.join(packets))
        assert response.status_code == 200, (response.status_code, response.content)
        assert response.content == b"ok"

    async def poll(self) -> list[str]:
        """One GET; pings are answered and left out of the result."""
        response = await self.get()
        assert response.status_code == 200, (response.status_code, response.content)
        assert response.headers["content-type"] == "text/plain; charset=UTF-8"
        packets = response.text.split(SEP)
        pings = packets.count("2")
        self.pings += pings
        if pings:
            await self.send("3")
        return [p for p in packets if p != "2"]

    async def receive(self, count: int) -> list[str]:
        """Poll until ``count`` packets other than pings arrived; exactly that many."""
        packets: list[str] = []
        async with asyncio.timeout(TIMEOUT):
            while len(packets) < count:
                packets += await self.poll()
        assert len(packets) == count, packets
        return packets

    # -- background polling ---------------------------------------------------------------

    async def start(self) -> None:
        """Start the background poller; return once its GET waits on the server."""
        self._poller = asyncio.create_task(self._poll_forever())
        await self.get_waiting()

    async def get_waiting(self) -> None:
        """Wait until a GET of this session waits on the server for packets."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                if ((await session_state(self.server, self.sid)) or {}).get("get_waiting"):
                    return
                await asyncio.sleep(0.01)

    async def _poll_forever(self) -> None:
        try:
            await self._poll_until_closed()
        except httpx.TransportError as exc:
            # The server went away (a test stopped it): recv() reports it.
            self._queue.put_nowait(exc)

    async def _poll_until_closed(self) -> None:
        while True:
            response = await self.get()
            if response.status_code != 200:
                self._queue.put_nowait(response)
                return
            packets = response.text.split(SEP)
            for packet in packets:
                if packet != "2":
                    self._queue.put_nowait(packet)
            if "1" in packets:
                return
            if "2" in packets:
                self.pings += packets.count("2")
                # Not checked: a session the server closed meanwhile answers 400 here, and
                # the next poll reports that.
                await self.post("3")

    async def recv(self) -> str:
        """The next packet the background poller got (``1`` when the server closed)."""
        item = await self.recv_any()
        if isinstance(item, httpx.Response):
            raise AssertionError(f"poll failed: {item.status_code} {item.content!r}")
        assert isinstance(item, str), item
        return item

    async def recv_any(self) -> str | httpx.Response | httpx.TransportError:
        """The next packet, or the failed response or connection error that ended polling."""
        return await asyncio.wait_for(self._queue.get(), TIMEOUT)

    async def finished(self) -> None:
        """Wait for the background poller to end (after the server sent ``1``)."""
        assert self._poller is not None
        await asyncio.wait_for(self._poller, TIMEOUT)

    async def close(self) -> None:
        """Close from the client side ("1"), as engine.io-client does."""
        await self.send("1")
        if self._poller is not None:
            await self.finished()

    async def abort(self) -> None:
        if self._poller is not None and not self._poller.done():
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await self._poller


class WebSocket:
    """One WebSocket: a reader in the background answers pings and queues every other frame."""

    def __init__(self, ws: ClientConnection, *, pong: bool = True) -> None:
        self.ws = ws
        self.pong = pong
        self.ping_times: list[float] = []
        #: Set at every ping from the server.
        self.pinged = asyncio.Event()
        self._queue: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                if frame == "2":
                    self.ping_times.append(time.monotonic())
                    self.pinged.set()
                    if self.pong:
                        await self.ws.send("3")
                    continue
                self._queue.put_nowait(frame)
        except ConnectionClosed:
            pass
        finally:
            self._queue.put_nowait(None)

    async def recv(self) -> str | bytes:
        frame = await asyncio.wait_for(self._queue.get(), TIMEOUT)
        assert frame is not None, f"socket closed: {self.ws.close_code} {self.ws.close_reason}"
        return frame

    async def recv_or_closed(self) -> str | bytes | None:
        """The next frame, or None once the server closed the socket (read it only once)."""
        return await asyncio.wait_for(self._queue.get(), TIMEOUT)

    async def send(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def echo(self, frame: str | bytes) -> None:
        """Send a message packet and expect it back unchanged."""
        await self.send(frame)
        assert await self.recv() == frame

    async def closed(self) -> int | None:
        """Wait until the server closed the socket; its close code. Frames left are an error."""
        frame = await asyncio.wait_for(self._queue.get(), TIMEOUT)
        assert frame is None, f"expected the socket to close, got {frame!r}"
        await asyncio.wait_for(self._reader, TIMEOUT)
        await asyncio.wait_for(self.ws.wait_closed(), TIMEOUT)
        return self.ws.close_code

    async def close(self) -> None:
        await asyncio.wait_for(self.ws.close(), TIMEOUT)
        await asyncio.wait_for(self._reader, TIMEOUT)


@contextlib.asynccontextmanager
async def websocket(
    server: ServerProcess, *, pong: bool = True, **params: str
) -> AsyncIterator[WebSocket]:
    """A WebSocket to the Engine.IO endpoint (``sid=...`` for an upgrade probe), closed after."""
    ws = await asyncio.wait_for(connect(websocket_url(server, **params)), TIMEOUT)
    sock = WebSocket(ws, pong=pong)
    try:
        yield sock
    finally:
        sock._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sock._reader
        await asyncio.wait_for(ws.close(), TIMEOUT)


@contextlib.asynccontextmanager
async def websocket_session(
    server: ServerProcess, *, pong: bool = True
) -> AsyncIterator[tuple[WebSocket, dict[str, Any]]]:
    """A direct WebSocket session and its handshake."""
    async with websocket(server, pong=pong) as sock:
        first = await sock.recv()
        assert isinstance(first, str)
        yield sock, parse_open(first)


@contextlib.asynccontextmanager
async def polling_session(
    server: ServerProcess, client: httpx.AsyncClient, *, background: bool = False
) -> AsyncIterator[Polling]:
    """An open polling session; with ``background``, its poller runs. Aborted after."""
    session = Polling(server, client)
    await session.open()
    if background:
        await session.start()
    try:
        yield session
    finally:
        await session.abort()
