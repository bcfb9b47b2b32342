"""Servers of the protocol reference configuration (settings_protocol), and a state view."""

import asyncio
import logging
from functools import cache

from django.http import HttpRequest, JsonResponse

from channels_sio.conf import engineio_config
from channels_sio.engineio import CloseReason, EngineIOServer, Session

logger = logging.getLogger(__name__)

# Close reasons of recent sessions, oldest first, so tests can see why the server closed one.
CLOSED: dict[str, str] = {}
_CLOSED_KEPT = 1000
# The same for the Socket.IO server's sockets: socket id -> disconnect reason (protocol_sockets).
SOCKETIO_DISCONNECTED: dict[str, str] = {}


def remember(kept: dict[str, str], key: str, reason: str) -> None:
    """Keep ``key``'s reason, and the last ``_CLOSED_KEPT`` only."""
    kept[key] = reason
    while len(kept) > _CLOSED_KEPT:
        del kept[next(iter(kept))]


@cache
def engineio_echo() -> EngineIOServer:
    """Engine.IO server that sends every message back as it came, text or binary."""
    server = EngineIOServer(engineio_config())

    @server.on_message
    async def echo(session: Session, data: str | bytes) -> None:
        await session.send(data)

    @server.on_disconnect
    async def remember_close(session: Session, reason: CloseReason) -> None:
        remember(CLOSED, session.sid, str(reason))
        # Also logged: the reasons given at shutdown are only observable in the process log.
        logger.info("engineio closed %s: %s", session.sid, reason)

    return server


def _is_ours(task: "asyncio.Task[object]") -> bool:
    from channels_sio.server import sio

    if task is sio._eager.idle_task:
        return False  # Python 3.11's handler runner, parked until a handler suspends: no leak
    name = getattr(task.get_coro(), "__qualname__", "")
    if name in ("Node._receive", "Membership._heartbeat", "Monitor._run"):
        # The process's cluster listener and heartbeat live as long as the process: no leak.
        return False
    if name == "EndpointRouter.__call__":
        # daphne runs each connection's application as a task of its own: this request's.
        return False
    return "channels_sio" in getattr(task.get_coro(), "__qualname__", "") or "channels_sio" in (
        getattr(getattr(task.get_coro(), "cr_code", None), "co_filename", "")
    )


async def state(request: HttpRequest) -> JsonResponse:
    """What the protocol tests assert on: live sessions, recent close reasons, our tasks."""
    engine = engineio_echo()
    return JsonResponse(
        {
            "sessions": {
                sid: {
                    "state": s.state.value,
                    "transport": s.transport.name,
                    "upgrade": s.upgrade_state.value,
                    "get_waiting": getattr(s.transport, "get_waiting", False),
                }
                for sid, s in engine.sessions.items()
            },
            "closed": CLOSED,
            "tasks": [repr(t.get_coro()) for t in asyncio.all_tasks() if _is_ours(t)],
            "socketio": _socketio_state(),
            "socketio_disconnected": SOCKETIO_DISCONNECTED,
        }
    )


def _socketio_state() -> dict[str, object]:
    """The project's Socket.IO server: its Engine.IO sessions, clients, connected sockets, room
    entries and acknowledgements awaited, per namespace (only the non-empty: all empty when
    idle)."""
    from channels_sio.server import sio

    # sio.engine would create the engine (and read settings): only look if it exists.
    engine = sio._engine
    sockets: dict[str, list[str]] = {}
    rooms: dict[str, int] = {}
    acks: dict[str, int] = {}
    namespaces = list(sio.namespaces.values())
    for _, parent in sio._dynamic:
        namespaces += parent.children.values()
    for nsp in namespaces:
        if nsp.sockets:
            sockets[nsp.name] = sorted(nsp.sockets)
        entries = sum(len(members) for members in nsp.adapter.local.index.rooms.values())
        if entries:
            rooms[nsp.name] = entries
        waiting = sum(len(socket.acks) for socket in nsp.sockets.values())
        if waiting:
            acks[nsp.name] = waiting
    return {
        "sessions": {
            sid: {"state": s.state.value, "transport": s.transport.name}
            for sid, s in (engine.sessions.items() if engine is not None else ())
        },
        "clients": sorted(sio.clients),
        "sockets": sockets,
        "room_entries": rooms,
        "ack_waiters": acks,
    }
