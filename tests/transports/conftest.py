"""Fixtures of the raw-protocol tests: an HTTP client, and a second server configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.support.eio import TIMEOUT, strict_server_process
from tests.support.servers import SERVER_KINDS, ServerProcess


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        yield http


@pytest.fixture(scope="session")
def _strict_servers() -> Iterator[dict[str, ServerProcess]]:
    started: dict[str, ServerProcess] = {}
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture(params=SERVER_KINDS)
def strict_server(
    request: pytest.FixtureRequest, _strict_servers: dict[str, ServerProcess]
) -> Iterator[ServerProcess]:
    """settings_strict (same-origin CORS, short upgrade timeout) under each ASGI server."""
    kind = request.param
    server = _strict_servers.get(kind)
    if server is None or server.proc is None or server.proc.poll() is not None:
        server = strict_server_process(kind)
        server.start()
        _strict_servers[kind] = server
    yield server
    state = server.wait_idle()
    assert not state["sessions"], f"sessions left open on {kind}: {state['sessions']}"
    assert not state["tasks"], f"channels_sio tasks left on {kind}: {state['tasks']}"
