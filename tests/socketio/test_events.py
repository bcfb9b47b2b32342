"""Events between the official client and the feature handlers: plain ``def`` handlers, errors in
handlers, catch-all and class-based handlers, and emits with invalid event names."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.socketio.raw_client import SioPolling
from tests.socketio.sio import TRANSPORTS, scenario
from tests.support.servers import ServerProcess

node = pytest.mark.node


@node
@pytest.mark.parametrize("transports", TRANSPORTS)
def test_plain_def_handler_runs_off_the_event_loop(
    features_server: ServerProcess, transports: str
) -> None:
    result = scenario("sio_events.js", features_server, "sync-handler", transports=transports)
    assert result["answer"] == {
        "args": ["a", 2, {"c": [3]}],
        "on_loop": False,
        "sid": result["sid"],
    }


@node
def test_raising_handler_or_unsendable_result_is_logged_and_the_connection_carries_on(
    features_server: ServerProcess,
) -> None:
    result = scenario("sio_events.js", features_server, "raising")
    assert result["boom"] == {"timeout": 800}  # no acknowledgement
    assert result["boom_later"] == {"timeout": 800}
    assert result["bad_ack"] == {"timeout": 800}
    assert result["bad_ack_later"] == {"timeout": 800}
    assert result["unhandled"] == {"timeout": 500}  # no handler, no catch-all: no ack either
    assert result["after"] == ["after"]
    assert result["connected"] is True
    log = features_server.log()
    assert "handler for 'boom' failed" in log
    assert "RuntimeError: boom on purpose" in log
    assert "handler for 'boom-later' failed" in log
    assert "RuntimeError: boom later on purpose" in log
    assert "handler for 'bad-ack' returned what cannot be sent as an acknowledgement" in log
    assert "Object of type object is not JSON serializable" in log
    assert "handler for 'bad-ack-later' returned what cannot be sent" in log
    assert "Out of range float values are not JSON compliant" in log


@node
@pytest.mark.parametrize("transports", TRANSPORTS)
def test_a_handler_that_cannot_wait_runs_at_once_but_never_overtakes(
    features_server: ServerProcess, transports: str
) -> None:
    """``at-once`` (no await) answers before ``waits-first``, sent just before it, finishes,
    but only after that one has started; context variables a handler sets stay its own."""
    result = scenario("sio_events.js", features_server, "order", transports=transports)
    assert result["b"] == ["a started", "b"]
    assert result["a"] == ["a started", "b", "a finished"]
    assert result["acks"] == ["b", "a"]
    assert result["contexts"] == [None, None]


@node
def test_catch_all_gets_events_without_a_handler_of_their_own(
    features_server: ServerProcess,
) -> None:
    result = scenario("sio_events.js", features_server, "catch-all")
    assert result["caught"] == {"caught": "anything", "args": [1, "two", {"three": 3}]}
    assert result["caught_bare"] == {"caught": "bare", "args": []}
    assert result["known"] == {"known": [3]}


@node
@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_class_based_namespace_handler(features_server: ServerProcess, transports: str) -> None:
    result = scenario("sio_events.js", features_server, "class-based", transports=transports)
    assert result["welcome"] == [
        [{"nsp": "/class", "auth": {"who": "one"}}],
        [{"nsp": "/class", "auth": {}}],
    ]
    assert result["echo"] == [1, {"a": 2}, "three"]
    assert result["add"] == {"sum": 5, "on_loop": False}
    assert result["shouted"] == "shouted"
    assert result["heard"] == [["HEY"], ["HEY"]]
    # Each got welcome and exactly one shout.
    assert result["events"] == [
        [["welcome", {"nsp": "/class", "auth": {"who": "one"}}], ["shout", "HEY"]],
        [["welcome", {"nsp": "/class", "auth": {}}], ["shout", "HEY"]],
    ]


PATHS = [
    "socket.emit",
    "socket.emit_with_ack",
    "socket.broadcast.emit",
    "namespace.emit",
    "to.emit",
    "timeout.emit_with_ack",
    "socket.volatile.emit",
    "sio.emit",
]


@node
@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_emit_with_an_invalid_event_name_raises_before_sending(
    features_server: ServerProcess, transports: str
) -> None:
    reserved = [
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "newListener",
        "removeListener",
    ]
    names = [*reserved, 42, None, ["list"]]
    result = scenario(
        "sio_events.js", features_server, "bad-emit", {"names": names}, transports=transports
    )
    expected = [
        *(dict.fromkeys(PATHS, f"'{name}' is a reserved event name") for name in reserved),
        dict.fromkeys(PATHS, "event names must be strings, not int"),
        dict.fromkeys(PATHS, "event names must be strings, not NoneType"),
        dict.fromkeys(PATHS, "event names must be strings, not list"),
    ]
    assert result["errors"] == expected
    assert result["received"] == []


async def test_volatile_emit_validates_the_name_even_when_it_would_drop(
    features_server: ServerProcess,
) -> None:
    """With no poll waiting, a volatile emit would be dropped: its name is checked anyway."""
    async with httpx.AsyncClient(timeout=5) as http:
        client = SioPolling(features_server, http)
        await client.open()
        await client.send("40/features,")
        [reply] = await client.receive(1)
        assert reply.startswith("40/features,{")
        await client.send('42/features,1["bad-emit","disconnect"]')
        await asyncio.sleep(0.1)  # the handler runs while no GET waits
        [ack] = await client.receive(1)
        assert ack.startswith("43/features,1[")
        errors = json.loads(ack.removeprefix("43/features,1"))[0]
        assert errors == dict.fromkeys(PATHS, "'disconnect' is a reserved event name")
        await client.send("1")
