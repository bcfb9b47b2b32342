"""Direct WebSocket sessions on the wire: handshake, echo, malformed and oversized frames, close."""

from __future__ import annotations

import pytest

from tests.support.eio import close_reason, session_state, websocket_session
from tests.support.servers import ServerProcess

CLOSE_NORMAL = 1000
CLOSE_MESSAGE_TOO_BIG = 1009


def too_big_code(server: ServerProcess) -> int:
    # daphne (autobahn) cannot send 1009 from the application: the socket closes with 1000.
    return CLOSE_MESSAGE_TOO_BIG if server.kind == "uvicorn" else CLOSE_NORMAL


async def test_handshake(protocol_server: ServerProcess) -> None:
    sids = set()
    for _ in range(3):
        async with websocket_session(protocol_server) as (sock, handshake):
            assert handshake == {
                "sid": handshake["sid"],
                "upgrades": [],
                "pingInterval": 300,
                "pingTimeout": 200,
                "maxPayload": 1_000_000,
            }
            assert await session_state(protocol_server, handshake["sid"]) == {
                "state": "open",
                "transport": "websocket",
                "upgrade": "none",
                "get_waiting": False,
            }
            sids.add(handshake["sid"])
            await sock.close()
        assert await close_reason(protocol_server, handshake["sid"]) == "transport close"
    assert len(sids) == 3


async def test_text_and_binary_echo(protocol_server: ServerProcess) -> None:
    async with websocket_session(protocol_server) as (sock, handshake):
        for frame in ["4hello", "4", "4héllo wörld ✓", bytes(range(256)), b"\x00", "4" * 70_000]:
            await sock.echo(frame)
        # A text frame "b" + base64 is a binary message too; it comes back as a binary frame.
        await sock.send("bAAEC")
        assert await sock.recv() == b"\x00\x01\x02"
        # Noop and pong frames from the client are accepted silently.
        await sock.send("6")
        await sock.send("3")
        await sock.echo("4after")
        await sock.close()
    assert await close_reason(protocol_server, handshake["sid"]) == "transport close"


async def test_frame_at_max_payload_accepted(protocol_server: ServerProcess) -> None:
    async with websocket_session(protocol_server) as (sock, handshake):
        await sock.echo("4" + "x" * (1_000_000 - 1))
        await sock.echo(b"\xff" * 1_000_000)
        await sock.close()
    assert await close_reason(protocol_server, handshake["sid"]) == "transport close"


@pytest.mark.parametrize(
    "frame",
    ["7hello", "", "b!!not base64!!", "x"],
    ids=["unknown-type", "empty", "bad-base64", "not-a-digit"],
)
async def test_malformed_frame_closes_only_that_session(
    protocol_server: ServerProcess, frame: str
) -> None:
    async with (
        websocket_session(protocol_server) as (bad, bad_handshake),
        websocket_session(protocol_server) as (good, good_handshake),
    ):
        await bad.send(frame)
        assert await bad.closed() == CLOSE_NORMAL
        assert await close_reason(protocol_server, bad_handshake["sid"]) == "parse error"
        await good.echo("4still")
        async with websocket_session(protocol_server) as (third, third_handshake):
            await third.echo("4new")
            await third.close()
        await good.close()
    assert await close_reason(protocol_server, good_handshake["sid"]) == "transport close"
    assert await close_reason(protocol_server, third_handshake["sid"]) == "transport close"


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
async def test_frame_over_max_payload(protocol_server: ServerProcess, binary: bool) -> None:
    frame: str | bytes = b"\xff" * 1_000_001 if binary else "4" + "é" * 500_000
    async with (
        websocket_session(protocol_server) as (big, big_handshake),
        websocket_session(protocol_server) as (good, good_handshake),
    ):
        await big.send(frame)
        assert await big.closed() == too_big_code(protocol_server)
        assert await close_reason(protocol_server, big_handshake["sid"]) == "transport error"
        await good.echo("4still")
        await good.close()
    assert await close_reason(protocol_server, good_handshake["sid"]) == "transport close"


async def test_unexpected_packet_type_from_client(protocol_server: ServerProcess) -> None:
    for frame in ["0", "2", "2probe", "5"]:
        async with websocket_session(protocol_server) as (sock, handshake):
            await sock.send(frame)
            assert await sock.closed() == CLOSE_NORMAL
        assert await close_reason(protocol_server, handshake["sid"]) == "transport error"


async def test_close_packet_from_client(protocol_server: ServerProcess) -> None:
    async with websocket_session(protocol_server) as (sock, handshake):
        await sock.send("1")
        assert await sock.closed() == CLOSE_NORMAL
    assert await close_reason(protocol_server, handshake["sid"]) == "transport close"


async def test_client_closes_socket(protocol_server: ServerProcess) -> None:
    async with websocket_session(protocol_server) as (sock, handshake):
        await sock.echo("4bye")
        await sock.close()
    assert await close_reason(protocol_server, handshake["sid"]) == "transport close"


async def test_client_closing_while_the_server_writes(protocol_server: ServerProcess) -> None:
    # A message and the close frame in one TCP segment: the ASGI server takes the close before
    # the application answers the message, so the answer is written to a closing socket (daphne
    # raises autobahn's Disconnected there, uvicorn an OSError). That closes this one session,
    # with nothing logged as an error: as the client's close if it is handled first, else as
    # a failed write (engine.io's reason too when ws refuses a send on a closing socket).
    for _ in range(5):
        offset = protocol_server.log_offset()
        async with websocket_session(protocol_server) as (sock, handshake):
            protocol = sock.ws.protocol
            protocol.send_text(b"4" + b"x" * 10_000)
            protocol.send_close(CLOSE_NORMAL)
            sock.ws.transport.write(b"".join(protocol.data_to_send()))
            await sock.recv_or_closed()
        reason = await close_reason(protocol_server, handshake["sid"])
        assert reason in {"transport close", "transport error"}
        assert protocol_server.errors_logged(offset) == []
