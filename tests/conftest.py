"""Shared fixtures: example-project servers under uvicorn and daphne."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import SERVER_KINDS, ServerProcess

PROTOCOL_SETTINGS = "example_project.settings_protocol"


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
