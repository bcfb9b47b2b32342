"""What the consumers share: how they find their Engine.IO server, and their running tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..engineio import EngineIOServer

__all__ = [
    "EngineSource",
    "consumer_tasks",
    "resolve_engine",
    "track_consumer_task",
    "untrack_consumer_task",
]

#: The tasks running this process's consumers, so that a shutdown without ASGI lifespan
#: (daphne's) can let them finish (see ``channels_sio.lifecycle``). A plain set, not a WeakSet:
#: a consumer removes its task when it returns, and a WeakSet costs a weakref per request.
consumer_tasks: set[asyncio.Task[Any]] = set()

#: A server, or a zero-argument callable returning one (so settings are read lazily, per
#: connection, rather than when the routing module is imported).
EngineSource = EngineIOServer | Callable[[], EngineIOServer]


def resolve_engine(source: EngineSource) -> EngineIOServer:
    return source if isinstance(source, EngineIOServer) else source()


def track_consumer_task() -> asyncio.Task[Any] | None:
    """Add the running consumer's task to ``consumer_tasks``; untrack it when it returns."""
    task = asyncio.current_task()
    if task is not None:
        consumer_tasks.add(task)
    return task


def untrack_consumer_task(task: asyncio.Task[Any] | None) -> None:
    consumer_tasks.discard(task)
