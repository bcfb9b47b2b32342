"""What the load runs read from a server (settings_load), and the one handler they add.

``GET /_load/stats/``:
The process's RSS, its event-loop lag, and the size of every table the Socket.IO server and
its cluster node keep (Engine.IO sessions, clients, sockets, rooms, acknowledgements awaited,
tasks, requests and polls waiting for another node, relayed upgrades), plus the monitoring
registry's rows when monitoring is on. Counts only, so that it stays cheap with thousands of
sessions open. bench/load.py and tests/reliability read it; it is no part of channels_sio.

The ``disconnect_all`` event disconnects every socket of ``/`` on every process
(``sio.disconnect_sockets(close=True)``): the server-side half of the mass disconnect.

The event-loop lag is measured from the first request on: a task sleeps 100 ms over and over
and records how late each wake-up is. ``?reset=1`` starts a new window of lag samples.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse

from channels_sio import Socket, conf, sio
from channels_sio.cluster.node import get_node

#: Seconds between the lag monitor's wake-ups.
TICK = 0.1


class LoopLag:
    """How late the event loop wakes a task that sleeps ``TICK`` at a time."""

    def __init__(self) -> None:
        # A 10-minute soak is 6,000 ticks: bounded anyway, a day's worth.
        self.samples: deque[float] = deque(maxlen=864_000)
        self.task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(TICK)
            self.samples.append(loop.time() - start - TICK)

    def summary(self) -> dict[str, float | int]:
        ordered = sorted(self.samples)
        if not ordered:
            return {"ticks": 0}

        def percentile(p: float) -> float:
            return round(ordered[min(len(ordered) - 1, math.ceil(p * len(ordered)) - 1)] * 1000, 1)

        return {
            "ticks": len(ordered),
            "p50_ms": percentile(0.50),
            "p99_ms": percentile(0.99),
            "max_ms": round(ordered[-1] * 1000, 1),
        }


LAG = LoopLag()


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _parked() -> int:
    """1 while Python 3.11's handler runner is parked (one task, there whenever a handler has
    run: not a leak), else 0."""
    return 0 if sio._eager.idle_task is None else 1


def tables() -> dict[str, int]:
    """The size of each table of the Socket.IO server and its node: all zero when idle."""
    engine = sio._engine
    namespaces = list(sio.namespaces.values())
    for _, parent in sio._dynamic:
        namespaces += parent.children.values()
    adapters = [nsp.adapter.local for nsp in namespaces]
    node = get_node()
    return {
        "engine_sessions": len(engine.sessions) if engine is not None else 0,
        "engine_draining": len(engine._draining) if engine is not None else 0,
        "clients": len(sio.clients),
        "sockets": sum(len(nsp.sockets) for nsp in namespaces),
        "adapter_sockets": sum(len(adapter.sockets) for adapter in adapters),
        "rooms": sum(len(adapter.index.rooms) for adapter in adapters),
        "room_entries": sum(sum(map(len, a.index.rooms.values())) for a in adapters),
        "socket_rooms": sum(len(adapter.index.sids) for adapter in adapters),
        "held_packets": sum(len(adapter._held) for adapter in adapters),
        "ack_waiters": sum(len(s.acks) for nsp in namespaces for s in nsp.sockets.values()),
        "server_tasks": len(sio._tasks) - _parked(),
        "node_tasks": len(node._tasks),
        "requests_waiting": len(node.requests._waiting),
        "polls_forwarded_waiting": len(node.forwarding._waiting),
        "polls_answering": len(node.forwarding._answering),
        "upgrades_waiting": len(node.upgrades._waiting),
        "upgrade_relays": len(node.upgrades.relays),
        "upgrade_pipes": len(node.upgrades.pipes),
    }


def registry_rows() -> dict[str, int]:
    from channels_sio.models import LiveSession, LiveSocket

    return {"sessions": LiveSession.objects.count(), "sockets": LiveSocket.objects.count()}


@sio.on("disconnect_all")
async def disconnect_all(socket: Socket) -> None:
    await sio.disconnect_sockets(close=True)


async def stats(request: HttpRequest) -> JsonResponse:
    """RSS, event-loop lag, the tables' sizes and the registry's rows, as JSON."""
    LAG.ensure_running()
    body: dict[str, Any] = {
        "rss_kb": rss_kb(),
        "loop_lag": LAG.summary(),
        "asyncio_tasks": len(asyncio.all_tasks()) - _parked(),
        "peers": len(get_node().peers),
        "tables": tables(),
        "registry": (
            await sync_to_async(registry_rows)() if conf.monitoring_settings() is not None else None
        ),
    }
    if request.GET.get("reset"):
        LAG.samples.clear()
    return JsonResponse(body)
