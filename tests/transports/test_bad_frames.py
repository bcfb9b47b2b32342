"""WebSocket frames that break RFC 6455 (a reserved bit set, a reserved opcode, an unmasked
client frame, text that is not UTF-8, a fragmented control frame), written on a raw TCP
connection: the ASGI server closes that socket, the session closes (with ``transport error``
under uvicorn, as engine.io's does when its ws library reports the error; daphne reports the
socket as closed abnormally, so ``transport close`` there), and the worker and the other
sessions carry on."""

from __future__ import annotations

import pytest

from tests.support.eio import close_reason, websocket_session
from tests.support.raw_websocket import BINARY, PING, TEXT, RawWebSocket, frame
from tests.support.servers import ServerProcess

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
