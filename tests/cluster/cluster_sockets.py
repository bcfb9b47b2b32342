"""Test-only Socket.IO handlers of the cluster suite, on the namespace ``/cluster``.

Every handler answers through its acknowledgement, so a client on any node can drive the
cross-node operations of the server it is connected to and see their outcome:

``cast``            a broadcast through an operator built from a spec (to / except / local),
                    with bytes if asked, then ``flush`` to every socket if asked (:func:`cast`)
``ask-all``         a broadcast with acknowledgements (clients answer ``question`` with their name)
``fetch``           fetch_sockets, each socket described with the node that holds it
``remote``          emit / join / leave / disconnect on one socket found by fetch_sockets
``sockets-join``, ``sockets-leave``, ``disconnect-sockets``
``server-emit``     server_side_emit, or server_side_emit_with_ack
``node``            this process's node: id, peers, messages sent on the channel layer
``measure``         channel-layer messages sent by each of several broadcasts

A socket connected with ``{"announce": true}`` in its auth has its disconnect broadcast to the
room "watchers" as ``left``. ``cluster-news`` sent by server_side_emit runs :func:`on_news` on
the OTHER nodes, which tell their own clients with a local ``server-news`` broadcast.
"""

from __future__ import annotations

from typing import Any

from channels_sio import AckTimeoutError, Socket, sio
from channels_sio.cluster import get_node
from channels_sio.socketio import BroadcastOperator
from channels_sio.socketio.bus import RemoteSocket

NSP = "/cluster"


def _rooms(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _operator(spec: dict[str, Any]) -> BroadcastOperator:
    op = sio.of(NSP).operator
    for room in _rooms(spec.get("to")):
        op = op.to(room)
    for room in _rooms(spec.get("except")):
        op = op.except_(room)
    if spec.get("local"):
        op = op.local
    if "timeout" in spec:
        op = op.timeout(spec["timeout"])
    return op


def _node_of(socket: Socket | RemoteSocket) -> str:
    return socket.snapshot.node if isinstance(socket, RemoteSocket) else get_node().id


def _describe(socket: Socket | RemoteSocket) -> dict[str, Any]:
    handshake = socket.handshake
    return {
        "id": socket.id,
        "node": _node_of(socket),
        "remote": isinstance(socket, RemoteSocket),
        "rooms": sorted(socket.rooms),
        "data": socket.data,
        "handshake": {
            "auth": handshake.auth,
            "query": {k: v for k, v in handshake.query.items() if k not in ("EIO", "t", "sid")},
            "x-cluster": handshake.headers.get("x-cluster"),
            "address": handshake.address,
        },
    }


async def connect(socket: Socket, auth: dict[str, Any]) -> None:
    socket.data.update(auth.get("data") or {})
    socket.join(*_rooms(auth.get("rooms")))


async def disconnect(socket: Socket, reason: str) -> None:
    """A socket connected with ``auth.announce`` tells room "watchers" (on every node) that it
    left, and why."""
    if (socket.handshake.auth or {}).get("announce"):
        await sio.of(NSP).to("watchers").emit("left", socket.data.get("name"), reason)


async def cast(socket: Socket, spec: dict[str, Any]) -> str:
    """Broadcast ``spec["event"]``; with ``spec["flush"]``, then ``flush`` to every socket of
    every node: a client that got the flush got the broadcast before it, if it was to get it
    (each node's channel delivers this node's messages in order)."""
    args = list(spec.get("args", []))
    if "binary" in spec:  # hex: sent as bytes, so binary attachments cross the bus too
        args.append({"bytes": bytes.fromhex(spec["binary"])})
    await _operator(spec).emit(spec["event"], *args)
    if spec.get("flush"):
        await sio.of(NSP).emit("flush", spec["flush"])
    return get_node().id


async def ask_all(socket: Socket, spec: dict[str, Any]) -> dict[str, Any]:
    try:
        responses = await _operator(spec).emit_with_ack("question", *spec.get("args", []))
    except AckTimeoutError as exc:
        return {"error": "AckTimeoutError", "responses": sorted(exc.responses)}
    return {"responses": sorted(responses)}


async def fetch(socket: Socket, spec: dict[str, Any]) -> list[dict[str, Any]]:
    found = await _operator(spec).fetch_sockets()
    return sorted((_describe(s) for s in found), key=lambda s: s["id"])


async def remote(socket: Socket, spec: dict[str, Any]) -> dict[str, Any]:
    """Find ``spec["target"]`` with fetch_sockets and run ``spec["command"]`` on it."""
    found = {s.id: s for s in await sio.of(NSP).fetch_sockets()}
    target = found.get(spec["target"])
    if target is None:
        return {"found": False}
    command, args = spec["command"], spec.get("args", [])
    if command == "emit":
        await target.emit(*args)
    elif command == "join":
        target.join(*args)
    elif command == "leave":
        target.leave(args[0])
    elif command == "disconnect":
        await target.disconnect(bool(args and args[0]))
    return {"found": True, "remote": isinstance(target, RemoteSocket), "node": _node_of(target)}


async def sockets_join(socket: Socket, spec: dict[str, Any]) -> str:
    await _operator(spec).sockets_join(*spec["rooms"])
    return "joined"


async def sockets_leave(socket: Socket, spec: dict[str, Any]) -> str:
    await _operator(spec).sockets_leave(*spec["rooms"])
    return "left"


async def disconnect_sockets(socket: Socket, spec: dict[str, Any]) -> str:
    await _operator(spec).disconnect_sockets(bool(spec.get("close")))
    return "disconnected"


async def server_emit(socket: Socket, spec: dict[str, Any]) -> dict[str, Any]:
    event, args = spec["event"], spec.get("args", [])
    if not spec.get("ack"):
        await sio.server_side_emit(event, *args)
        return {"node": get_node().id}
    try:
        answers = await sio.server_side_emit_with_ack(
            event, *args, timeout=spec.get("timeout", 3000) / 1000
        )
    except AckTimeoutError as exc:
        return {"error": "AckTimeoutError", "answers": exc.responses}
    return {"node": get_node().id, "answers": sorted(answers, key=lambda a: a["node"])}


async def on_news(*args: Any) -> dict[str, Any]:
    """A server-side event from another node: tell this node's clients, answer who got it."""
    node = get_node().id
    await sio.of(NSP).local.emit("server-news", {"node": node, "args": list(args)})
    return {"node": node, "args": list(args)}


def node_info() -> dict[str, Any]:
    node = get_node()
    return {
        "id": node.id,
        "started": node.started,
        "peers": sorted(node.peers),
        "messages_sent": node.messages_sent,
        "sockets": len(sio.of(NSP).sockets),
    }


async def node(socket: Socket) -> dict[str, Any]:
    return node_info()


async def measure(socket: Socket, spec: dict[str, Any]) -> dict[str, Any]:
    """Channel-layer messages this node sent for each of ``spec["count"]`` broadcasts (the
    heartbeat may add one to a measure now and then: the caller takes the median)."""
    node = get_node()
    op = _operator(spec)
    deltas = []
    for i in range(spec.get("count", 5)):
        before = node.messages_sent
        await op.emit("measured", i)
        deltas.append(node.messages_sent - before)
    return {"deltas": deltas, "peers": len(node.peers), "node": node.id}


for _event, _handler in {
    "connect": connect,
    "disconnect": disconnect,
    "cast": cast,
    "ask-all": ask_all,
    "fetch": fetch,
    "remote": remote,
    "sockets-join": sockets_join,
    "sockets-leave": sockets_leave,
    "disconnect-sockets": disconnect_sockets,
    "server-emit": server_emit,
    "node": node,
    "measure": measure,
}.items():
    sio.on(_event, _handler, namespace=NSP)

sio.on_server_event("cluster-news", on_news)
