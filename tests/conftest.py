"""Shared fixtures: example-project servers under uvicorn and daphne."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import SERVER_KINDS, ServerProcess, socketio_leftovers

PROTOCOL_SETTINGS = "example_project.settings_protocol"
FEATURES_SETTINGS = "tests.socketio.settings_features"


@pytest.fixture(scope="session")
def _protocol_servers() -> Iterator[dict[str, ServerProcess]]:
    started: dict[str, ServerProcess] = {}
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture(params=SERVER_KINDS)
def protocol_server(
    request: pytest.FixtureRequest, _protocol_servers: dict[str, ServerProcess]
) -> Iterator[ServerProcess]:
    """The protocol reference configuration under each ASGI server, checked for leaks after."""
    kind = request.param
    server = _protocol_servers.get(kind)
    if server is None or server.proc is None or server.proc.poll() is not None:
        server = ServerProcess(kind, PROTOCOL_SETTINGS)
        server.start()
        _protocol_servers[kind] = server
    yield server
    state = server.wait_idle()
    assert not state["sessions"], f"sessions left open on {kind}: {state['sessions']}"
    assert not state["tasks"], f"channels_sio tasks left on {kind}: {state['tasks']}"
    leftovers = socketio_leftovers(state)
    assert not leftovers, f"Socket.IO sessions or sockets left on {kind}: {leftovers}"


@pytest.fixture(scope="session")
def _features_servers() -> Iterator[dict[str, ServerProcess]]:
    started: dict[str, ServerProcess] = {}
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture(params=SERVER_KINDS)
def features_server(
    request: pytest.FixtureRequest, _features_servers: dict[str, ServerProcess]
) -> Iterator[ServerProcess]:
    """The reference configuration plus the Socket.IO feature handlers (tests/socketio), under
    each ASGI server, checked after each test for leaked sessions, sockets and tasks."""
    kind = request.param
    server = _features_servers.get(kind)
    if server is None or server.proc is None or server.proc.poll() is not None:
        server = ServerProcess(kind, FEATURES_SETTINGS)
        server.start()
        _features_servers[kind] = server
    yield server
    state = server.wait_idle()
    assert not state["sessions"], f"sessions left open on {kind}: {state['sessions']}"
    assert not state["tasks"], f"channels_sio tasks left on {kind}: {state['tasks']}"
    leftovers = socketio_leftovers(state)
    assert not leftovers, f"Socket.IO sessions or sockets left on {kind}: {leftovers}"
