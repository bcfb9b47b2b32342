"""max_payload holds on the decompressed size of a permessage-deflate frame.

uvicorn negotiates permessage-deflate (websockets' client asks for it by default) and hands the
application the decompressed message, which the transport measures: a frame of a few kilobytes
on the wire that inflates past max_payload closes its session like any frame over it. daphne
negotiates no extension, so no compressed frame can reach it (a frame with RSV1 set is a
protocol error there: tests/transports/test_bad_frames.py).
"""

from __future__ import annotations

from tests.support.eio import close_reason, websocket_session
from tests.support.servers import ServerProcess

MAX_PAYLOAD = 1_000_000  # settings_protocol's


def compressed(sock: object) -> bool:
    return bool(sock.ws.protocol.extensions)  # type: ignore[attr-defined]


async def test_a_compressed_frame_is_measured_decompressed(protocol_server: ServerProcess) -> None:
    if protocol_server.kind != "uvicorn":
        async with websocket_session(protocol_server) as (sock, _):
            assert not compressed(sock), "daphne negotiated an extension: test it here"
            await sock.close()
        return
    async with (
        websocket_session(protocol_server) as (big, big_handshake),
        websocket_session(protocol_server) as (good, good_handshake),
    ):
        assert compressed(big)
        # Deflated, this is about 2 kB; inflated, twice max_payload.
        await big.send("4" + "a" * (2 * MAX_PAYLOAD))
        assert await big.closed() == 1009
        assert await close_reason(protocol_server, big_handshake["sid"]) == "transport error"
        await good.echo("4still")
        await good.close()
    assert await close_reason(protocol_server, good_handshake["sid"]) == "transport close"


async def test_a_compressed_frame_at_max_payload_is_accepted(
    protocol_server: ServerProcess,
) -> None:
    async with websocket_session(protocol_server) as (sock, handshake):
        await sock.echo("4" + "a" * (MAX_PAYLOAD - 1))
        await sock.echo(b"\x00" * MAX_PAYLOAD)
        await sock.close()
    assert await close_reason(protocol_server, handshake["sid"]) == "transport close"
