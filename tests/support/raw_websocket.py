"""A WebSocket client written by hand on a bare TCP connection: frames as a test wants them,
valid or not, and a connection the test can drop or reset at any moment."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
from urllib.parse import urlsplit

from .eio import TIMEOUT
from .servers import ServerProcess

TEXT, BINARY, PING = 0x1, 0x2, 0x9


def drop(writer: asyncio.StreamWriter, *, reset: bool) -> None:
    """Close a client connection at once: a FIN, or (``reset``) an RST as a vanished client's.
    A connection the server closed first is only let go."""
    sock = writer.get_extra_info("socket")
    if reset and sock is not None and sock.fileno() != -1:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


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
