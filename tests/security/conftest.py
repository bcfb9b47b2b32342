"""Servers of the security tests, under uvicorn and daphne, checked for leaks after each test."""

from __future__ import annotations

from tests.support.eio import STRICT_ENV
from tests.support.servers import server_fixture

SECURITY_SETTINGS = "tests.security.settings_security"

security_server = server_fixture(
    SECURITY_SETTINGS,
    "settings_security (same origin by ALLOWED_HOSTS, recovery in memory, the handlers of "
    "security_sockets) under each ASGI server.",
    STRICT_ENV,
)

ratelimit_server = server_fixture(
    "tests.security.settings_ratelimit",
    "settings_ratelimit (5 handshakes per address per 5 s) under each ASGI server.",
    STRICT_ENV,
)
