"""This process's start and stop around the ASGI server: the node joins the cluster when the
server starts, and sessions close cleanly when it stops. The ASGI lifespan handler does both,
and daphne, which runs no lifespan, gets reactor hooks that do the same."""

from __future__ import annotations

import asyncio
import sys
from functools import cache
from typing import Any

from .cluster import get_node
from .engineio import EngineIOServer
from .socketio import SocketIOServer
from .transports import consumer_tasks

__all__ = ["follow_reactor", "lifespan", "shutdown", "startup"]

# How long a shutdown under daphne waits for the consumers to finish before cancelling them.
_DRAIN_TIMEOUT = 1.0


async def startup() -> None:
    """Join this process's node to the cluster, before the first request is served: the
    process then receives every broadcast from the start."""
    await get_node().start()


async def shutdown() -> None:
    """Close every session of this process with ``server shutting down``; stop the node."""
    for server in SocketIOServer.running():
        await server.shutdown()
    for engine in EngineIOServer.running():
        await engine.shutdown()
    # The node goes last: broadcasts from disconnect handlers still reach the other processes,
    # and polls that other nodes forwarded here get their answer (the close packet) rather
    # than waiting out the forwarding limit.
    await get_node().stop()


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI lifespan: start the node on startup; on shutdown, close every session with
    ``server shutting down``."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await startup()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _shutdown_and_drain() -> None:
    await shutdown()
    # Let the consumers finish while the reactor still runs, so close frames and the answers
    # to pending polls go out; then cancel the rest, as daphne's own trigger would have.
    tasks = set(consumer_tasks)
    pending: set[asyncio.Task[Any]] = set()
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=_DRAIN_TIMEOUT)
    # Every other task too, as asyncio.run does at exit: the project's own consumers (a
    # Channels WebSocket consumer waiting for its next message) are left suspended when
    # daphne's trigger fails, and finalizing them at exit can crash CPython 3.11.
    pending |= asyncio.all_tasks() - {asyncio.current_task()}
    for task in pending:
        task.cancel()
    if pending:
        # Bounded: a task that ignores its cancellation must not hold the reactor's shutdown.
        await asyncio.wait(pending, timeout=_DRAIN_TIMEOUT)


@cache
def follow_reactor() -> None:
    """Under daphne, which runs no ASGI lifespan, start the node when its reactor starts and
    call ``shutdown`` when it stops.

    daphne's own shutdown only cancels the consumers, which reaches no polling session between
    two requests, and it fails outright (KeyError in ``Server.kill_all_applications``, daphne
    4.2) while any connection has no application instance, as every connection has for about
    a second after its request or its WebSocket handshake: the consumers are then left
    suspended, and CPython 3.11 can crash finalizing them at exit. A Twisted trigger of our
    own does not depend on it, and runs before it (daphne adds its trigger when it starts).
    """
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None:
        return  # Twisted was never imported: not under daphne.
    from twisted.internet.defer import Deferred

    def close_sessions() -> Deferred[None]:
        return Deferred.fromFuture(asyncio.ensure_future(_shutdown_and_drain()))

    # Startup triggers fire before the reactor runs its asyncio loop: the node starts on the
    # loop's first turn.
    reactor.callWhenRunning(reactor.callLater, 0, get_node().ensure_started)
    reactor.addSystemEventTrigger("before", "shutdown", close_sessions)
