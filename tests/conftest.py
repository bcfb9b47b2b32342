"""Shared fixtures: example-project servers under uvicorn and daphne."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import ServerProcess, server_fixture


@pytest.fixture(scope="session")
def _servers() -> Iterator[dict[tuple[str, str], ServerProcess]]:
    """The servers of ``server_fixture`` fixtures, by (settings module, kind)."""
    started: dict[tuple[str, str], ServerProcess] = {}
    yield started
    for server in started.values():
        server.stop()


protocol_server = server_fixture(
    "example_project.settings_protocol",
    "The protocol reference configuration under each ASGI server, checked for leaks after.",
)
features_server = server_fixture(
    "tests.socketio.settings_features",
    "The reference configuration plus the Socket.IO feature handlers (tests/socketio), under "
    "each ASGI server, checked after each test for leaked sessions, sockets and tasks.",
)
