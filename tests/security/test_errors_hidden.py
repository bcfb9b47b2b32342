"""No exception text or stack trace reaches a client: a raising event handler sends nothing,
a raising connect handler is refused with a fixed message; both are logged with their event."""

from __future__ import annotations

import asyncio

import httpx

from tests.security.security_sockets import SECRET
from tests.socketio.raw_client import SioPolling
from tests.support.eio import SEP, TIMEOUT
from tests.support.servers import ServerProcess

LEAKS = (SECRET, "Traceback", "RuntimeError", "security_sockets")


async def test_handler_errors_stay_in_the_log(security_server: ServerProcess) -> None:
    offset = security_server.log_offset()
    wire: list[str] = []
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        session = SioPolling(security_server, client)
        await session.open()
        await session.send("40/me,", "40/failing,", "40")
        wire += await session.receive(5)
        assert wire[0].startswith("40/me,{")
        assert wire[1].startswith('42/me,["me",null,')  # the recovery offset last
        assert wire[2] == '44/failing,{"message":"Internal server error"}'
        # An event that asks for an acknowledgement and raises, then one that is answered.
        await session.send('42/me,1["boom","x"]', '422["message-with-ack","after"]')
        async with asyncio.timeout(TIMEOUT):
            while '432["after"]' not in wire:
                wire += await session.poll()
        await session.send("1")
        # "boom" is answered with nothing: no acknowledgement, no error.
        assert not any(packet.startswith("43/me,") for packet in wire), wire
    every_byte = SEP.join(wire)
    assert not [leak for leak in LEAKS if leak in every_byte], every_byte
    await asyncio.sleep(0.2)  # the log line of the connect refusal is written after its answer
    log = security_server.log_since(offset)
    assert "handler for 'boom' failed" in log
    assert f"RuntimeError: {SECRET} in an event handler" in log
    assert "connect handler or middleware failed on /failing" in log
    assert f"RuntimeError: {SECRET} in a connect handler" in log
