"""ORM calls off the event loop, in one thread of their own that keeps its database connection
from one call to the next: what the database recovery store and the monitoring registry run
their statements in."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import DatabaseError, connections, reset_queries

__all__ = ["DatabaseThread", "ended_while_idle"]

logger = logging.getLogger("channels_sio")

T = TypeVar("T")

#: How long a call waits for a table locked by another connection of SQLite's shared cache
#: (seconds: Django's default SQLite busy timeout).
LOCK_WAIT = 5.0


def _table_locked(error: DatabaseError) -> bool:
    """Whether SQLite refused a table that another connection of its shared cache locks: the
    in-memory test databases answer SQLITE_LOCKED at once rather than waiting."""
    code = getattr(error.__cause__, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == 6


def ended_while_idle(raw: Any) -> bool:
    """Whether the server sent something on driver connection ``raw`` while no statement was
    in flight: the farewell of a server that ended it (``pg_ctl restart``, a terminated
    backend), or else a notice, which a reconnection costs nothing to lose. A connection
    without a socket (SQLite) never does."""
    fileno = getattr(raw, "fileno", None)
    if fileno is None:
        return False
    try:
        readable, _, _ = select.select([fileno()], [], [], 0)
    except Exception:  # no socket any more (the driver's error, or the system's)
        return True
    return bool(readable)


class DatabaseThread:
    """Runs functions that use the ORM on database ``using``, one at a time, in a thread of
    their own (``name``), made on first use and again after :meth:`close`.

    After a database error the thread's connection is closed, so that the next call connects
    again (a restarted server, a killed backend). A call refused because SQLite's shared cache
    locked a table is tried again: the refused statement had no effect, and the transaction it
    was in was rolled back.

    With ``DEBUG`` on, Django keeps a connection's last 9,000 statements until a request starts;
    no request starts in this thread, so it forgets them after every call: with the registry's
    flushes, the log grew the 10-minute churn soak's process by about 20 MB
    (docs/reliability.md).
    """

    def __init__(self, using: str, name: str) -> None:
        self.using = using
        self.name = name
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in the thread; its result, or its exception."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=self.name)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, function, *args)

    def _guarded(self, function: Callable[..., T], *args: Any) -> T:
        connection = connections[self.using]
        raw = connection.connection
        if raw is not None and ended_while_idle(raw):
            # Closed by the server since the last call (a restart): connect again now, rather
            # than failing this call on the dead connection.
            self._disconnect()
        try:
            return self._retried(function, *args)
        finally:
            reset_queries()

    def _retried(self, function: Callable[..., T], *args: Any) -> T:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                return function(*args)
            except DatabaseError as exc:
                if _table_locked(exc) and time.monotonic() < deadline:
                    time.sleep(0.005)
                    continue
                self._disconnect()
                raise

    def _disconnect(self) -> None:
        with contextlib.suppress(DatabaseError):
            connections[self.using].close()

    async def close(self, timeout: float | None = None) -> None:
        """Close the thread's connection and end the thread, after the calls in flight (for
        at most ``timeout`` seconds: a dead database does not hold a stop)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.run_in_executor(executor, self._disconnect), timeout)
        except TimeoutError:
            logger.warning("%s: the database did not answer within %ss", self.name, timeout)
        finally:
            executor.shutdown(wait=False)
