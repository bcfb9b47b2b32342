"""Fixtures of the raw-protocol tests: an HTTP client, and a second server configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.eio import STRICT_ENV, STRICT_SETTINGS, TIMEOUT
from tests.support.servers import server_fixture


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        yield http


strict_server = server_fixture(
    STRICT_SETTINGS,
    "settings_strict (same-origin CORS, short upgrade timeout) under each ASGI server, checked "
    "for leaks after.",
    STRICT_ENV,
)
