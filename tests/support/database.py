"""Fixtures for code that runs SQL: the databases under test (SQLite, and PostgreSQL when it
answers: the ``postgres`` alias of tests/settings.py), and a spy on every statement."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.conf import settings
from django.db.backends.utils import CursorWrapper

from .ci import require

__all__ = ["require_postgres", "statements", "using"]


def require_postgres() -> None:
    require("postgres" in settings.DATABASES, "PostgreSQL (CSIO_POSTGRES_URL)")


@pytest.fixture(params=["default", "postgres"], ids=["sqlite", "postgres"])
def using(request: pytest.FixtureRequest) -> str:
    """The alias of the database under test."""
    alias: str = request.param
    if alias == "postgres":
        require_postgres()
    return alias


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Every SQL statement run while the test runs, with the thread that ran it."""
    ran: list[tuple[int, str]] = []
    execute, executemany = CursorWrapper.execute, CursorWrapper.executemany

    def spy_execute(self: CursorWrapper, sql: str, params: Any = None) -> Any:
        ran.append((threading.get_ident(), sql))
        return execute(self, sql, params)

    def spy_executemany(self: CursorWrapper, sql: str, param_list: Any) -> Any:
        ran.append((threading.get_ident(), sql))
        return executemany(self, sql, param_list)

    monkeypatch.setattr(CursorWrapper, "execute", spy_execute)
    monkeypatch.setattr(CursorWrapper, "executemany", spy_executemany)

    # The database store's INSERT on PostgreSQL from its thread goes through a plain psycopg
    # cursor, not Django's (whose own cursor class is a subclass: not counted twice)...
    import psycopg

    driver_execute = psycopg.Cursor.execute

    def spy_driver(self: psycopg.Cursor[Any], query: Any, params: Any = None, **kw: Any) -> Any:
        if type(self) is psycopg.Cursor:
            ran.append((threading.get_ident(), str(query)))
        return driver_execute(self, query, params, **kw)

    monkeypatch.setattr(psycopg.Cursor, "execute", spy_driver)

    # ... and straight through libpq, on the event loop (recovery/pglink.py).
    from channels_sio.recovery import pglink

    fetch_column = pglink._fetch_column

    async def spy_link(pgconn: Any, statement: bytes, *args: Any) -> list[bytes]:
        ran.append((threading.get_ident(), statement.decode()))
        return await fetch_column(pgconn, statement, *args)

    monkeypatch.setattr(pglink, "_fetch_column", spy_link)
    return ran
