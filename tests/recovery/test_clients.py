"""Recovery with what clients do beyond the happy path: python-socketio's client (which has no
recovery) connects cleanly, and a client whose offset was trimmed out of the log gets a fresh
socket."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio

from tests.support.driver import Driver
from tests.support.servers import ServerProcess

NSP = "/recovery"


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]], ids=["websocket", "polling"])
async def test_python_socketio_connects_and_gets_events_with_their_offset(
    recovery_server: ServerProcess, transports: list[str]
) -> None:
    client = socketio.AsyncClient(reconnection=False)
    got: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    async def on_m(*args: Any) -> None:
        await got.put(args)

    client.on("m", on_m, namespace=NSP)
    await client.connect(
        recovery_server.url, namespaces=[NSP], transports=transports, wait_timeout=5
    )
    try:
        info = await client.call("info", namespace=NSP, timeout=5)
        assert info["recovered"] is False
        assert await client.call("cast", {"event": "m", "args": [1]}, namespace=NSP, timeout=5)
        args = await asyncio.wait_for(got.get(), 5)
        # The offset comes as one more argument, which clients without recovery ignore.
        assert args[0] == 1
        assert len(args) == 2
        assert isinstance(args[1], str)
        assert await client.call("self", {"event": "m", "args": [2]}, namespace=NSP, timeout=5)
        assert (await asyncio.wait_for(got.get(), 5))[0] == 2
    finally:
        await client.disconnect()


@pytest.mark.node
def test_an_offset_trimmed_out_of_the_log_gives_a_fresh_socket(
    capped_server: ServerProcess, driver: Driver
) -> None:
    url = capped_server.url
    a = driver("open", name="A", url=url, nsp=NSP, transports="websocket")
    driver("open", name="B", url=url, nsp=NSP, transports="websocket")
    assert driver("call", name="B", event="cast", args=[{"event": "m", "args": [0]}]) is True
    driver("wait", name="A", event="m")
    driver("drop", name="A")
    # Six more packets: the log keeps five, so one A missed is gone.
    assert driver("call", name="B", event="burst", args=[{"count": 6}]) is True
    back = driver("reconnect", name="A", clear=True)
    assert back["recovered"] is False
    assert back["id"] != a["id"]
    assert driver("events", name="A", event="seq") == []  # nothing replayed
    # Fewer missed packets than the log keeps: recovered.
    driver("drop", name="A")
    assert driver("call", name="B", event="burst", args=[{"start": 6, "count": 3}]) is True
    again = driver("reconnect", name="A")
    assert again["recovered"] is True
    seqs = [event[1] for event in driver("wait", name="A", event="seq", count=3)]
    assert seqs == [6, 7, 8]
