"""WebSocket frames that break RFC 6455 (a reserved bit set, a reserved opcode, an unmasked
client frame, text that is not UTF-8, a fragmented control frame), written on a raw TCP
connection: the ASGI server closes that socket, the session closes (with ``transport error``
under uvicorn, as engine.io's does when its ws library reports the error; daphne reports the
socket as closed abnormally, so ``transport close`` there), and the worker and the other
sessions carry on."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
from urllib.parse import urlsplit

import pytest

from tests.support.eio import TIMEOUT, close_reason, websocket_session
from tests.support.servers import ServerProcess

TEXT, BINARY, PING = 0x1, 0x2, 0x9


def frame(
    opcode: int, payload: bytes, *, rsv: int = 0, fin: bool = True, masked: bool = True
) -> bytes:
    """One client frame (payloads under 126 bytes)."""
    assert len(payload) < 126
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode, (0x80 if masked else 0) | len(payload)])
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


BAD_FRAMES = {
    "rsv1-without-extension": frame(TEXT, b"4hello", rsv=0b100),
    "rsv2": frame(TEXT, b"4hello", rsv=0b010),
    "rsv3": frame(BINARY, b"\x01\x02", rsv=0b001),
    "reserved-data-opcode": frame(0x3, b"4hello"),
    "reserved-control-opcode": frame(0xB, b""),
    "unmasked": frame(TEXT, b"4hello", masked=False),
    "text-not-utf8": frame(TEXT, b"4\xff\xfe"),
    "fragmented-ping": frame(PING, b"x", fin=False),
}


class RawWebSocket:
    """A WebSocket to the Engine.IO endpoint over a bare TCP connection, frames by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(
        cls, server: ServerProcess, path: str = "/engine.io/"
    ) -> tuple[RawWebSocket, str]:
        """Connect, upgrade, and read the open packet; the socket and its session id."""
        where = urlsplit(server.url)
        assert where.hostname is not None
        reader, writer = await asyncio.open_connection(where.hostname, where.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path}?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {where.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"HTTP/1.1 101"), head
        sock = cls(reader, writer)
        opcode, payload = await sock.read_frame()
        assert opcode == TEXT
        assert payload.startswith(b"0{"), payload
        return sock, json.loads(payload[1:])["sid"]

    async def read_frame(self) -> tuple[int, bytes]:
        first, second = await asyncio.wait_for(self.reader.readexactly(2), TIMEOUT)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(await self.reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await self.reader.readexactly(8), "big")
        return first & 0x0F, await self.reader.readexactly(length)

    async def closed_by_server(self) -> None:
        """Read (pings and the close frame included) until the server closed the connection
        (daphne resets it)."""
        async with asyncio.timeout(TIMEOUT):
            with contextlib.suppress(ConnectionResetError):
                while await self.reader.read(4096):
                    pass

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), TIMEOUT)


@pytest.mark.parametrize("bad", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
async def test_a_frame_that_breaks_rfc6455_closes_only_its_session(
    protocol_server: ServerProcess, bad: bytes
) -> None:
    async with websocket_session(protocol_server) as (other, _):
        sock, sid = await RawWebSocket.open(protocol_server)
        try:
            sock.writer.write(bad)
            await sock.writer.drain()
            await sock.closed_by_server()
        finally:
            await sock.close()
        # daphne reports such a socket as closed abnormally (1006), without its error code.
        expected = "transport close" if protocol_server.kind == "daphne" else "transport error"
        assert await close_reason(protocol_server, sid) == expected
        # The other session and the worker carry on, and new sessions open.
        await other.echo("4still here")
        fresh, fresh_sid = await RawWebSocket.open(protocol_server)
        await fresh.close()
        assert await close_reason(protocol_server, fresh_sid) == "transport close"
        await other.send("1")
