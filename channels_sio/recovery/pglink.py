"""The database store's grouped packet writes on PostgreSQL, made on the event loop: one
connection per loop, opened with the Django database's own settings.

The store's other statements run through the ORM, in its database thread. The grouped INSERT of
recorded packets is on the per-message path, and there the thread cost more than the statement:
a hand-off each way per batch and, while the loop was busy, a wait for the GIL after every
network read (up to the interpreter's switch interval, 5 ms), which set the latency of every
recorded emit.

psycopg 3 opens the connection (its settings, authentication and TLS as Django's), and the
statements go straight through its libpq connection, parameters and results as text: psycopg's
asyncio cursor spent about 45 µs of CPU per statement over libpq's own work (measured with
``SELECT 1`` on the benchmark machine), as much again as the round trip itself.

Statements are prepared on the server as Django's own connections prepare theirs: only when the
database's ``OPTIONS`` set ``prepare_threshold`` (Django leaves it unset, for connection
poolers), after that many runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from django.db import connections
from psycopg import pq, sql

from ..dbthread import ended_while_idle

__all__ = ["PostgresLink"]

_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_COMMAND_OK = pq.ExecStatus.COMMAND_OK


class PostgresLink:
    """An autocommit connection to Django database ``using`` (PostgreSQL, psycopg 3), opened
    on first use and again on the first use after it was lost. Statements run one at a time
    (the store's writes are grouped, one in flight per loop); their errors are Django's
    ``DatabaseError`` family, as the ORM raises them.

    It belongs to the event loop it is first used on (:class:`.perloop.PerLoop`).
    """

    def __init__(self, using: str) -> None:
        self.using = using
        self._connection: psycopg.AsyncConnection[Any] | None = None
        # Taken once: on the event loop, each task context gets a DatabaseWrapper of its own
        # from ``connections``, a heap of reference cycles left to the garbage collector.
        self._database_errors = connections[using].wrap_database_errors
        # On the current connection: the statements prepared (by name), and how often each
        # other statement ran.
        self._prepared: dict[bytes, bytes] = {}
        self._runs: dict[bytes, int] = {}
        self._named = 0

    async def fetch_column(self, statement: bytes, params: Sequence[bytes]) -> list[bytes]:
        """The first column of the rows ``statement`` returns, as text (its parameters,
        ``$1`` and on, as text too)."""
        # Django maps the driver's errors to its own here, as for ORM calls.
        with self._database_errors:
            connection = self._connection
            if connection is None or connection.closed or ended_while_idle(connection):
                # Never made, lost, or ended by the server since the last write (a restart
                # while nothing was recorded): connect again before sending, rather than
                # fail this write.
                connection = await self._reconnect()
            pgconn = connection.pgconn
            try:
                name = self._prepared.get(statement)
                if name is None and connection.prepare_threshold is not None:
                    name = await self._prepare(pgconn, statement, connection.prepare_threshold)
                if name is not None:
                    try:
                        return await _fetch_column(pgconn, statement, params, name)
                    except psycopg.errors.InvalidSqlStatementName:
                        # Deallocated behind our back (DISCARD ALL, a pooler): nothing ran.
                        self._prepared.clear()
                return await _fetch_column(pgconn, statement, params)
            except BaseException as exc:
                if not isinstance(exc, psycopg.errors.DatabaseError) or (
                    connection.pgconn.status != pq.ConnStatus.OK
                ):
                    # Lost, or left with a statement in flight (cancelled): not sent again,
                    # as it may have been written; the next call connects again. An error
                    # the server answered with leaves the connection as it was.
                    self._connection = None
                    await connection.close()
                raise

    async def _prepare(
        self, pgconn: pq.abc.PGconn, statement: bytes, threshold: int
    ) -> bytes | None:
        """The name ``statement`` is prepared under, once it ran ``threshold`` times on this
        connection (its ``prepare_threshold``); None until then."""
        runs = self._runs.get(statement, 0)
        if runs < threshold:
            self._runs[statement] = runs + 1
            return None
        # Never reused: a name deallocated behind our back may or may not be free again.
        self._named += 1
        name = b"channels_sio_%d" % self._named
        pgconn.send_prepare(name, statement)
        await _results(pgconn)
        self._prepared[statement] = name
        return name

    async def _reconnect(self) -> psycopg.AsyncConnection[Any]:
        old, self._connection = self._connection, None
        if old is not None:
            await old.close()
        wrapper = connections[self.using]
        params = wrapper.get_connection_params()
        # Django's cursor class is a synchronous one, and no cursor is made here.
        params.pop("cursor_factory", None)
        connection = await psycopg.AsyncConnection.connect(**params, autocommit=True)
        role = wrapper.settings_dict["OPTIONS"].get("assume_role")
        if role:
            # As Django does on its own connections: the rows are written as that role.
            await connection.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        # Sends never block the loop: what the socket does not take waits for it to drain.
        connection.pgconn.nonblocking = 1
        self._connection = connection
        self._prepared, self._runs = {}, {}
        return connection

    async def close(self) -> None:
        """Close the connection (on its own loop); a later call opens another."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()


async def _fetch_column(
    pgconn: pq.abc.PGconn,
    statement: bytes,
    params: Sequence[bytes],
    prepared: bytes | None = None,
) -> list[bytes]:
    """Run ``statement`` (the one prepared as ``prepared``, if given) on the idle connection
    ``pgconn`` (nonblocking), waiting on the running loop; the first column of its rows."""
    if prepared is None:
        pgconn.send_query_params(statement, params)
    else:
        pgconn.send_query_prepared(prepared, params)
    return await _results(pgconn)


async def _results(pgconn: pq.abc.PGconn) -> list[bytes]:
    """Send what was queued on ``pgconn`` and read its results to their end; the first column
    of the rows, or the first error raised."""
    loop = asyncio.get_running_loop()
    while pgconn.flush():
        await _ready(loop, pgconn.socket, loop.add_writer, loop.remove_writer)
    values: list[bytes] = []
    error: psycopg.Error | None = None
    while True:
        if pgconn.is_busy():
            await _ready(loop, pgconn.socket, loop.add_reader, loop.remove_reader)
            pgconn.consume_input()
            continue
        result = pgconn.get_result()
        if result is None:  # the statement's end
            break
        status = result.status
        if status == _TUPLES_OK:
            values += [result.get_value(row, 0) or b"" for row in range(result.ntuples)]
        elif status != _COMMAND_OK and error is None:
            # Read on to the statement's end, which leaves the connection usable.
            error = psycopg.errors.error_from_result(result)
    if error is not None:
        raise error
    return values


async def _ready(
    loop: asyncio.AbstractEventLoop,
    fd: int,
    watch: Callable[..., None],
    unwatch: Callable[[int], Any],
) -> None:
    ready: asyncio.Future[None] = loop.create_future()
    watch(fd, _wake, ready)
    try:
        await ready
    finally:
        unwatch(fd)


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)
