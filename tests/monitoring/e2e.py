"""What the end-to-end scenarios share: servers of settings_monitoring on a database of their
own, the registry read from the test process, and raw Engine.IO clients of the Socket.IO
endpoint that behave as the failures they reproduce.

Every client says where it comes from with ``X-Forwarded-For`` (the trusted proxy header of
settings_monitoring), so that each scenario's clients have addresses and fingerprints of
their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support import servers
from tests.support.driver import wait_for
from tests.support.eio import TIMEOUT, parse_open
from tests.support.servers import ServerProcess

SETTINGS = "tests.monitoring.settings_monitoring"
PATH = "/socket.io/"
SEP = "\x1e"
TABLES = {
    "node": "channels_sio_node",
    "session": "channels_sio_livesession",
    "socket": "channels_sio_livesocket",
    "alarm": "channels_sio_alarm",
    "lease": "channels_sio_lease",
    "sample": "channels_sio_nodesample",
}
#: The JSON columns of each table (SQLite gives them as text).
_JSON_COLUMNS = {
    "node": {"report"},
    "session": {"handshake"},
    "socket": {"rooms"},
    "alarm": {"sids", "details"},
}


def manage(
    env: dict[str, str], *args: str, expect: int | None = 0
) -> subprocess.CompletedProcess[str]:
    """``manage.py`` of the example project with settings_monitoring and ``env``."""
    return servers.manage(SETTINGS, env, *args, expect=expect)


# -- the registry, read from here ---------------------------------------------------------


class Registry:
    """The registry's tables, read with a connection of the test's own (never the ORM: the
    test process's Django has a database of its own)."""

    def __init__(self, connect: Callable[[], Any], placeholder: str) -> None:
        self._connect = connect
        self._placeholder = placeholder

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """``sql`` with ``?`` placeholders; rows as dicts."""
        connection = self._connect()
        try:
            cursor = connection.cursor()
            cursor.execute(sql.replace("?", self._placeholder), params)
            names = [column[0] for column in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            connection.close()
        return rows

    def table(self, name: str, where: str = "", *params: Any) -> list[dict[str, Any]]:
        """The rows of table ``name`` (``where`` with ``?`` placeholders), JSON decoded."""
        clause = f" WHERE {where}" if where else ""
        rows = self.query(f"SELECT * FROM {TABLES[name]}{clause}", *params)
        for row in rows:
            for column in _JSON_COLUMNS.get(name, ()):
                if isinstance(row[column], str):
                    row[column] = json.loads(row[column])
        return rows

    def nodes(self) -> list[dict[str, Any]]:
        return self.table("node")

    def node(self, pid: int) -> dict[str, Any] | None:
        found = self.table("node", "pid = ?", pid)
        return found[0] if found else None

    def sessions(self, where: str = "", *params: Any) -> list[dict[str, Any]]:
        return self.table("session", where, *params)

    def session(self, sid: str) -> dict[str, Any] | None:
        found = self.sessions("sid = ?", sid)
        return found[0] if found else None

    def alarms(self, kind: str | None = None, *, open_only: bool = False) -> list[dict[str, Any]]:
        where, params = [], []
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if open_only:
            where.append("resolved_at IS NULL")
        return self.table("alarm", " AND ".join(where), *params)

    def wait(self, probe: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
        return wait_for(probe, timeout, what, interval=0.1)

    def wait_alarm(self, kind: str, fingerprint: str, timeout: float = 15.0) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            rows = [a for a in self.alarms(kind, open_only=True) if a["fingerprint"] == fingerprint]
            return rows[0] if rows else None

        alarm: dict[str, Any] = self.wait(found, f"an open {kind} alarm for {fingerprint}", timeout)
        return alarm


def sqlite_registry(path: Path) -> Registry:
    return Registry(lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10), "?")


def postgres_registry(url: str) -> Registry:
    import psycopg

    return Registry(lambda: psycopg.connect(url), "%s")


# -- servers ------------------------------------------------------------------------------


class Monitored:
    """A server process of settings_monitoring and the registry it writes to."""

    def __init__(self, process: ServerProcess, registry: Registry) -> None:
        self.process = process
        self.registry = registry

    @property
    def pid(self) -> int:
        assert self.process.proc is not None
        return self.process.proc.pid

    def node(self) -> dict[str, Any]:
        """This server's node row (waits for its first flush)."""
        row: dict[str, Any] = self.registry.wait(
            lambda: self.registry.node(self.pid), f"the node row of {self.process.url}"
        )
        return row

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace")

    def stop_cleanly(self) -> None:
        """SIGTERM; then its rows say goodbye: no session left, the node marked gone."""
        node_id = self.node()["id"]
        self.process.stop()
        node = self.registry.table("node", "id = ?", node_id)[0]
        assert node["gone_at"] is not None, "a clean stop marks the node gone"
        assert self.registry.sessions("node_id = ?", node_id) == []
        assert "Traceback" not in self.log(), self.log()[-6000:]


def start(kind: str, env: dict[str, str], registry: Registry) -> Monitored:
    process = ServerProcess(kind, SETTINGS, env)
    process.start()
    server = Monitored(process, registry)
    server.node()
    return server


@contextlib.contextmanager
def running(kind: str, env: dict[str, str], registry: Registry) -> Iterator[Monitored]:
    """A started server, stopped cleanly afterwards (killed if the test failed first)."""
    server = start(kind, env, registry)
    try:
        yield server
    except BaseException:
        server.process.stop()
        raise
    if server.process.proc is not None and server.process.proc.poll() is None:
        server.stop_cleanly()


# -- raw clients --------------------------------------------------------------------------


def headers(address: str, agent: str) -> dict[str, str]:
    return {"X-Forwarded-For": address, "User-Agent": agent}


def websocket_url(server: ServerProcess, **params: str) -> str:
    query = urlencode({"EIO": "4", "transport": "websocket", **params})
    return f"ws{server.url.removeprefix('http')}{PATH}?{query}"


def polling_url(server: ServerProcess, **params: str) -> str:
    query = urlencode({"EIO": "4", "transport": "polling", **params})
    return f"{server.url}{PATH}?{query}"


class RawClient:
    """An Engine.IO WebSocket to the Socket.IO endpoint, from ``address`` as ``agent``.
    Pings are answered unless ``pong`` is off (then they are ignored: the TCP connection
    stays open, the client says nothing); ``open`` joins "/" unless told not to."""

    def __init__(
        self, server: ServerProcess, address: str, agent: str, *, pong: bool = True
    ) -> None:
        self.server = server
        self.address = address
        self.agent = agent
        self.pong = pong
        self.sid = ""
        self.ws: ClientConnection | None = None
        self._frames: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def open(self, *, join: bool = True, sid: str | None = None) -> RawClient:
        """Open a session (joined to "/" when ``join``), or the WebSocket of an upgrade when
        ``sid`` is given."""
        params = {"sid": sid} if sid else {}
        self.ws = await asyncio.wait_for(
            connect(
                websocket_url(self.server, **params),
                additional_headers={"X-Forwarded-For": self.address},
                user_agent_header=self.agent,
                proxy=None,
            ),
            TIMEOUT,
        )
        self._reader = asyncio.create_task(self._read(self.ws))
        if sid:
            self.sid = sid
            return self
        first = await self.recv()
        assert isinstance(first, str)
        self.sid = parse_open(first)["sid"]
        if join:
            await self.send("40")
            assert (await self.recv_until("40")).startswith("40{")
        return self

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                if frame == "2":
                    if self.pong:
                        await ws.send("3")
                    continue
                self._frames.put_nowait(frame)
        except ConnectionClosed:
            pass
        finally:
            self._frames.put_nowait(None)

    async def recv(self) -> str | bytes:
        frame = await asyncio.wait_for(self._frames.get(), TIMEOUT)
        assert frame is not None, "the server closed the socket"
        return frame

    async def recv_until(self, prefix: str) -> str:
        """The next text frame starting with ``prefix`` (others are skipped)."""
        while True:
            frame = await self.recv()
            if isinstance(frame, str) and frame.startswith(prefix):
                return frame

    async def send(self, frame: str) -> None:
        assert self.ws is not None
        await self.ws.send(frame)

    async def closed_by_server(self) -> list[str | bytes]:
        """Wait until the server closed the socket; the frames that came before."""
        assert self.ws is not None
        frames = []
        async with asyncio.timeout(TIMEOUT):
            while (frame := await self._frames.get()) is not None:
                frames.append(frame)
            await self.ws.wait_closed()
        return frames

    async def close(self) -> None:
        ws, reader, self.ws, self._reader = self.ws, self._reader, None, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if ws is not None:
            await asyncio.wait_for(ws.close(), TIMEOUT)


async def polling_handshake(
    client: httpx.AsyncClient, server: ServerProcess, address: str, agent: str
) -> str:
    """Open a long-polling session; its sid."""
    response = await client.get(polling_url(server), headers=headers(address, agent))
    assert response.status_code == 200, response.text
    sid: str = parse_open(response.text)["sid"]
    return sid
