"""The database store's grouped packet writes on PostgreSQL, made on the event loop: one
psycopg 3 async connection per loop, opened with the Django database's own settings.

The store's other statements run through the ORM, in its database thread. The grouped INSERT of
recorded packets is on the per-message path, and there the thread cost more than the statement:
a hand-off each way per batch and, while the loop was busy, a wait for the GIL after every
network read (up to the interpreter's switch interval, 5 ms), which set the latency of every
recorded emit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import Any

import psycopg
from django.db import connections
from psycopg import sql

from ..dbthread import ended_while_idle

__all__ = ["PostgresLink"]


class PostgresLink:
    """An autocommit connection to Django database ``using`` (PostgreSQL, psycopg 3), opened
    on first use and again on the first use after it broke. Statements run one at a time (the
    store's writes are grouped, one in flight per loop); their errors are Django's
    ``DatabaseError`` family, as the ORM raises them.

    It belongs to the event loop :meth:`start` runs on, and closes when that loop finalizes
    its async generators (``asyncio.run`` does as it ends): a short-lived loop's connection
    closes with it rather than leaking.
    """

    def __init__(self, using: str, forget: Callable[[PostgresLink], None]) -> None:
        self.using = using
        self._forget = forget
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._opening = asyncio.Lock()
        self._closer = self._close_at_end()

    async def start(self) -> None:
        """Tie the link to the running loop's end."""
        await anext(self._closer)

    async def fetch_column(self, statement: str, params: list[Any]) -> list[Any]:
        """The first column of the rows ``statement`` returns."""
        # Django maps the driver's errors to its own here, as for ORM calls.
        with connections[self.using].wrap_database_errors:
            connection = self._connection
            if connection is None or connection.closed or ended_while_idle(connection):
                # Never made, broken, or ended by the server since the last write (a restart
                # while no packet was recorded): connect again before sending, not after a
                # failed write.
                connection = await self._connect()
            try:
                cursor = connection.cursor()
                await cursor.execute(statement, params)
                rows = await cursor.fetchall()
            except psycopg.Error:
                if connection.broken or connection.closed:
                    # The next call connects again (a restarted server, a killed backend).
                    self._connection = None
                    await connection.close()
                raise
        return [row[0] for row in rows]

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        async with self._opening:
            connection = self._connection
            if connection is not None and not connection.closed:
                if not ended_while_idle(connection):
                    return connection  # made by a concurrent caller
                await connection.close()
            connection = self._connection = await self._open()
        return connection

    async def _open(self) -> psycopg.AsyncConnection[Any]:
        wrapper = connections[self.using]
        params = wrapper.get_connection_params()
        # Django's cursor class is a synchronous one: psycopg's async default is wanted here.
        params.pop("cursor_factory", None)
        connection = await psycopg.AsyncConnection.connect(**params, autocommit=True)
        role = wrapper.settings_dict["OPTIONS"].get("assume_role")
        if role:
            # As Django does on its own connections: the rows are written as that role.
            await connection.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        return connection

    async def close(self) -> None:
        """Close the connection now (on its own loop)."""
        await self._closer.aclose()

    async def _close_at_end(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            self._forget(self)
            connection, self._connection = self._connection, None
            if connection is not None:
                await connection.close()
