"""Background tasks that an object owns: kept while they run, their failures logged, cancelled
when their owner stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterator
from typing import Any

__all__ = ["OwnedTasks"]


class OwnedTasks:
    """The tasks one owner started (a server, a session, a cluster node).

    Each is kept until it ends (the event loop keeps only weak references to tasks), and one
    that fails is logged on ``logger`` with ``message % args`` (``exc_info`` its exception).
    Iteration gives them in the order they were started.
    """

    __slots__ = ("_args", "_logger", "_message", "_tasks")

    def __init__(self, logger: logging.Logger, message: str, *args: object) -> None:
        self._logger = logger
        self._message = message
        self._args = args
        self._tasks: dict[asyncio.Task[Any], None] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(list(self._tasks))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as an owned task on the running loop."""
        task = asyncio.get_running_loop().create_task(coro)
        self.own(task)
        return task

    def own(self, task: asyncio.Task[Any]) -> None:
        """Keep ``task`` until it ends."""
        self._tasks[task] = None
        task.add_done_callback(self.ended)

    def ended(self, task: asyncio.Task[Any]) -> None:
        """Let ``task`` go, logging its exception if it failed (called when it is done)."""
        self._tasks.pop(task, None)
        if not task.cancelled():
            exc = task.exception()
            if exc is not None:
                self.failed(exc)

    def failed(self, exc: BaseException) -> None:
        """Log ``exc`` as an owned task's failure."""
        self._logger.error(self._message, *self._args, exc_info=exc)

    def cancel(self) -> list[asyncio.Task[Any]]:
        """Cancel every task but the current one (closing from inside one of them); the
        tasks cancelled, to wait for as the owner sees fit."""
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        return tasks
