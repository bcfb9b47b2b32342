"""Test-only Socket.IO handlers: every server feature, driven by the official client.

Loaded by ``tests.socketio.settings_features`` next to ``example_project.protocol_sockets``
(which keeps ``/`` and ``/custom`` as the reference configuration). Namespaces:

``/features``
    rooms, broadcasts (every operator flag), server->client acks, broadcast acks, fetch_sockets,
    sockets_join / sockets_leave / disconnect_sockets, socket.disconnect, binary, plain ``def``
    handlers, handlers that raise or return what JSON cannot hold (at once, and after a wait),
    the order of handlers that wait
    and handlers that cannot, context variables in handlers, emits with invalid event names,
    and ``report``.
``/guarded``
    two middlewares (async, then plain ``def``) and a connect handler that may refuse.
``/refuse``
    a plain ``def`` connect handler returning False.
``/dyn-<digits>`` (regex), ``/fn-sync-*`` and ``/fn-async-*`` (callables)
    dynamic namespaces.
``/class``
    a class-based :class:`channels_sio.NamespaceHandler`.
``/catchall``
    a catch-all ``*`` handler beside one named handler.
``/reentrant``
    closes asked for while a close runs: in the disconnect handler (as the socket, as the
    server and as the Engine.IO session), in a handler that then raises, in a middleware and
    a connect handler that refuse.

What happens out of sight of a client (disconnect reasons, results of acks the server waited
for) is put in ``RECORDS``; the ``report`` event (on ``/`` and ``/features``) waits for the
asked keys and acknowledges them.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
from typing import Any

from channels_sio import (
    AckTimeoutError,
    ConnectionRefusedError,
    DisconnectedError,
    NamespaceHandler,
    Socket,
    sio,
)
from channels_sio.socketio import BroadcastOperator

NSP = "/features"

#: ``disconnect:<socket id>`` -> reason, ``disconnects:<socket id>`` -> how many times the
#: disconnect handler ran, ``ask:<socket id>`` -> what a server-side acknowledgement gave.
RECORDS: dict[str, Any] = {}
_RECORDS_KEPT = 10_000
_REPORT_WAIT = 3.0  # seconds, below the scripts' 4 s bound on an acknowledgement


_recorded: set[asyncio.Future[None]] = set()  # reports waiting for the next record


def record(key: str, value: Any) -> None:
    RECORDS[key] = value
    while len(RECORDS) > _RECORDS_KEPT:
        del RECORDS[next(iter(RECORDS))]
    for waiter in _recorded:
        if not waiter.done():
            waiter.set_result(None)


def on_loop() -> bool:
    """Whether the caller runs on the event loop (plain ``def`` handlers must not)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def report(socket: Socket, keys: list[str], wait: float = _REPORT_WAIT) -> dict[str, Any]:
    """Acknowledge the records asked for, once all exist (missing ones as null after ``wait``
    seconds, 3 at most)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(wait, _REPORT_WAIT)
    while not all(key in RECORDS for key in keys) and loop.time() < deadline:
        waiter: asyncio.Future[None] = loop.create_future()
        _recorded.add(waiter)
        try:
            await asyncio.wait({waiter}, timeout=deadline - loop.time())
        finally:
            _recorded.discard(waiter)
    return {key: RECORDS.get(key) for key in keys}


async def record_disconnect(socket: Socket, reason: str) -> None:
    record(f"disconnect:{socket.id}", reason)
    record(f"disconnects:{socket.id}", RECORDS.get(f"disconnects:{socket.id}", 0) + 1)


def _rooms(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _operator(socket: Socket, spec: dict[str, Any]) -> BroadcastOperator:
    """A broadcast operator built as ``spec`` says: where it starts, then each flag."""
    source = spec.get("from", "namespace")
    if source == "namespace":
        op = sio.of(spec.get("namespace", NSP)).operator
    elif source == "socket":
        op = socket.broadcast
    elif source == "socket.to":
        op = socket.to(*_rooms(spec.pop("to")))
    elif source == "sio.to":  # the server's shortcuts, on "/"
        op = sio.to(*_rooms(spec.pop("to")))
    else:
        raise ValueError(f"unknown operator source {source!r}")
    for room in _rooms(spec.get("to")):
        op = op.to(room)
    if spec.get("to_many"):
        op = op.to(spec["to_many"])  # one iterable of rooms
    for room in _rooms(spec.get("except")):
        op = op.except_(room)
    if spec.get("volatile"):
        op = op.volatile
    if spec.get("local"):
        op = op.local
    if "compress" in spec:
        op = op.compress(spec["compress"])
    if "timeout" in spec:
        op = op.timeout(spec["timeout"])
    return op


def _describe(socket: Socket) -> dict[str, Any]:
    handshake = socket.handshake
    return {
        "id": socket.id,
        "nsp": socket.nsp.name,
        "rooms": sorted(socket.rooms),
        "data": socket.data,
        "connected": socket.connected,
        "recovered": socket.recovered,
        "handshake": {
            "auth": handshake.auth,
            "query": handshake.query,
            "x-feature": handshake.headers.get("x-feature"),
            "address": handshake.address,
            "url": handshake.url,
            "secure": handshake.secure,
            "issued_positive": handshake.issued > 0,
            "time_gmt": handshake.time.endswith(" GMT"),
        },
    }


# -- /features --------------------------------------------------------------------------------


async def features_connect(socket: Socket, auth: dict[str, Any]) -> None:
    socket.data.update(auth.get("data") or {})
    socket.join(*_rooms(auth.get("rooms")))


async def join(socket: Socket, rooms: list[str]) -> list[str]:
    socket.join(rooms)
    return sorted(socket.rooms - {socket.id})


async def leave(socket: Socket, room: str) -> list[str]:
    socket.leave(room)
    return sorted(socket.rooms - {socket.id})


async def cast(socket: Socket, spec: dict[str, Any]) -> str:
    """Broadcast ``spec["event"]`` with ``spec["args"]`` through the operator ``spec`` names."""
    await _operator(socket, spec).emit(spec["event"], *spec.get("args", []))
    return "sent"


async def flush(socket: Socket, namespaces: list[str]) -> str:
    """Send ``flush`` to every socket of these namespaces: on each connection it comes after
    everything sent before it, so a client that got it has got every earlier broadcast."""
    for name in namespaces:
        await sio.of(name).emit("flush")
    return "flushed"


async def ask(socket: Socket, spec: dict[str, Any]) -> dict[str, Any]:
    """Emit to this client with an acknowledgement, as ``spec["mode"]`` says; ack the outcome
    (also recorded as ``ask:<socket id>``, for clients that go away meanwhile)."""
    event, args, mode = spec["event"], spec.get("args", []), spec["mode"]
    outcome: dict[str, Any]
    if mode == "with_ack":
        try:
            result = await socket.emit_with_ack(event, *args, timeout=spec.get("timeout"))
        except AckTimeoutError as exc:
            outcome = {"error": "AckTimeoutError", "message": str(exc)}
        except DisconnectedError as exc:
            outcome = {"error": "DisconnectedError", "message": str(exc)}
        else:
            outcome = {"result": result}
    else:
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[dict[str, Any]] = loop.create_future()
        if mode == "callback":

            async def callback(*ack_args: Any) -> None:
                answered.set_result({"callback": list(ack_args), "on_loop": on_loop()})

            await socket.emit(event, *args, callback=callback)
        else:  # "sync_callback": a plain def, run off the loop

            def sync_callback(*ack_args: Any) -> None:
                result = {"callback": list(ack_args), "on_loop": on_loop()}
                loop.call_soon_threadsafe(answered.set_result, result)

            await socket.emit(event, *args, callback=sync_callback)
        try:
            outcome = await asyncio.wait_for(answered, spec.get("timeout", 5))
        except TimeoutError:
            outcome = {"error": "no callback"}
    record(f"ask:{socket.id}", outcome)
    return outcome


async def ask_all(socket: Socket, spec: dict[str, Any]) -> dict[str, Any]:
    """A broadcast with acknowledgements; ack every response (sorted) or the timeout."""
    event, args = spec.pop("event"), spec.pop("args", [])
    try:
        responses = await _operator(socket, spec).emit_with_ack(event, *args)
    except AckTimeoutError as exc:
        return {"error": "AckTimeoutError", "message": str(exc), "responses": exc.responses}
    except ValueError as exc:
        return {"error": "ValueError", "message": str(exc)}
    return {"responses": responses}


async def fetch(socket: Socket, spec: dict[str, Any]) -> list[dict[str, Any]]:
    sockets = await _operator(socket, spec).fetch_sockets()
    return sorted((_describe(found) for found in sockets), key=lambda found: found["id"])


async def sockets_join(socket: Socket, spec: dict[str, Any]) -> str:
    rooms = spec.pop("rooms")
    await _operator(socket, spec).sockets_join(*rooms)
    return "joined"


async def sockets_leave(socket: Socket, spec: dict[str, Any]) -> str:
    rooms = spec.pop("rooms")
    await _operator(socket, spec).sockets_leave(*rooms)
    return "left"


async def disconnect_sockets(socket: Socket, spec: dict[str, Any]) -> str:
    close = spec.pop("close", False)
    await _operator(socket, spec).disconnect_sockets(close)
    return "disconnected"


async def disconnect_me(socket: Socket, close: bool) -> str:
    """``socket.disconnect(close)``; the acknowledgement is never sent (the socket is gone)."""
    await socket.disconnect(close=close)
    return "still here"


async def boom(socket: Socket, *args: Any) -> str:
    raise RuntimeError("boom on purpose")


async def boom_later(socket: Socket, *args: Any) -> str:
    await asyncio.sleep(0)
    raise RuntimeError("boom later on purpose")


async def bad_ack(socket: Socket) -> dict[str, Any]:
    return {"not json": object()}


async def bad_ack_later(socket: Socket) -> float:
    await asyncio.sleep(0)
    return float("nan")


async def waits_first(socket: Socket, tag: str) -> list[str]:
    """Waits, so it runs in a task: what it appends shows when that task started."""
    order = socket.data.setdefault("order", [])
    order.append(f"{tag} started")
    await asyncio.sleep(0.05)
    order.append(f"{tag} finished")
    return list(order)


async def at_once(socket: Socket, tag: str) -> list[str]:
    """Cannot wait (no await), so it runs as its event is read."""
    order = socket.data.setdefault("order", [])
    order.append(tag)
    return list(order)


HANDLER_CONTEXT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "handler_context", default=None
)


async def set_context(socket: Socket, value: str) -> str | None:
    """Sets a context variable and returns what it was: each event sees its own context."""
    previous = HANDLER_CONTEXT.get()
    HANDLER_CONTEXT.set(value)
    return previous


def sync_echo(socket: Socket, *args: Any) -> dict[str, Any]:
    """A plain ``def`` handler: runs in a worker thread, off the event loop."""
    return {"args": list(args), "on_loop": on_loop(), "sid": socket.id}


async def bad_emit(socket: Socket, name: Any) -> dict[str, str | None]:
    """Try to emit ``name`` every way there is; each must raise ValueError before sending."""
    attempts = {
        "socket.emit": lambda: socket.emit(name, "x"),
        "socket.emit_with_ack": lambda: socket.emit_with_ack(name, "x", timeout=1),
        "socket.broadcast.emit": lambda: socket.broadcast.emit(name, "x"),
        "namespace.emit": lambda: sio.of(NSP).emit(name, "x"),
        "to.emit": lambda: sio.of(NSP).to(socket.id).emit(name, "x"),
        "timeout.emit_with_ack": lambda: sio.of(NSP).timeout(500).emit_with_ack(name, "x"),
        "socket.volatile.emit": lambda: socket.volatile.emit(name, "x"),
        "sio.emit": lambda: sio.emit(name, "x", namespace=NSP),
    }
    errors: dict[str, str | None] = {}
    for path, attempt in attempts.items():
        try:
            await attempt()
        except ValueError as exc:
            errors[path] = str(exc)
        else:
            errors[path] = None
    return errors


BINARY_SAMPLE = {
    "one": b"\x00\x01\x02",
    "nested": [b"\xff" * 3, {"deep": b"xyz", "text": "not binary"}],
    "number": 7,
}


async def binary_echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
    """Emit ``binary-back`` with the arguments as received (bytes included), and ack them."""
    await socket.emit("binary-back", *args)
    return args


async def binary_make(socket: Socket) -> tuple[Any, ...]:
    """Bytes made on the server: emitted as ``binary-made`` and acknowledged, two arguments."""
    await socket.emit("binary-made", BINARY_SAMPLE, b"\x10\x20")
    return BINARY_SAMPLE, b"\x10\x20"


async def binary_types(socket: Socket, *args: Any) -> list[str]:
    """The Python types of the arguments, as received (bytes must arrive as bytes)."""

    def kind(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: kind(item) for key, item in value.items()}
        if isinstance(value, list):
            return [kind(item) for item in value]
        return type(value).__name__

    return [kind(arg) for arg in args]


for _event, _handler in {
    "connect": features_connect,
    "disconnect": record_disconnect,
    "report": report,
    "join": join,
    "leave": leave,
    "cast": cast,
    "flush": flush,
    "ask": ask,
    "ask-all": ask_all,
    "fetch": fetch,
    "sockets-join": sockets_join,
    "sockets-leave": sockets_leave,
    "disconnect-sockets": disconnect_sockets,
    "disconnect-me": disconnect_me,
    "boom": boom,
    "boom-later": boom_later,
    "bad-ack": bad_ack,
    "bad-ack-later": bad_ack_later,
    "waits-first": waits_first,
    "at-once": at_once,
    "set-context": set_context,
    "sync-echo": sync_echo,
    "bad-emit": bad_emit,
    "binary-echo": binary_echo,
    "binary-make": binary_make,
    "binary-types": binary_types,
}.items():
    sio.on(_event, _handler, namespace=NSP)

# "/" keeps protocol_sockets' connect / message / message-with-ack; these come on top.
sio.on("disconnect", record_disconnect)
sio.on("report", report)
sio.on("join", join)
sio.on("flush", flush)


# -- /guarded: middlewares ----------------------------------------------------------------------


async def require_token(socket: Socket, auth: dict[str, Any]) -> None:
    socket.data.setdefault("middlewares", []).append("require_token")
    if auth.get("token") != "secret":
        raise ConnectionRefusedError(
            "unauthorized", {"reason": "bad token", "token": auth.get("token")}
        )


def tag_sync(socket: Socket, auth: dict[str, Any]) -> bool:
    """A plain ``def`` middleware, second in line; returning False refuses."""
    socket.data["middlewares"].append("tag_sync")
    socket.data["middleware_on_loop"] = on_loop()
    return not auth.get("block")


async def guarded_connect(socket: Socket, auth: dict[str, Any]) -> None:
    if auth.get("refuse_in_connect"):
        raise ConnectionRefusedError("refused in connect")
    # Emitted before the CONNECT reply exists: the client must get it right after "connect".
    await socket.emit("ready", socket.data)


sio.use(require_token, namespace="/guarded")
sio.use(tag_sync, namespace="/guarded")
sio.on("connect", guarded_connect, namespace="/guarded")
sio.on("disconnect", record_disconnect, namespace="/guarded")


def refuse_connect(socket: Socket, auth: dict[str, Any]) -> bool:
    return False


sio.on("connect", refuse_connect, namespace="/refuse")


# -- dynamic namespaces -------------------------------------------------------------------------

DYNAMIC = re.compile(r"/dyn-\d+")


def allow_sync(name: str, auth: dict[str, Any]) -> bool:
    return name.startswith("/fn-sync-") and auth.get("ok") is True


async def allow_async(name: str, auth: dict[str, Any]) -> bool:
    await asyncio.sleep(0)
    return name.startswith("/fn-async-")


async def dynamic_connect(socket: Socket, auth: dict[str, Any]) -> None:
    await socket.emit("hello", socket.nsp.name, socket.nsp.parent is not None)


async def whoami(socket: Socket) -> str:
    return socket.nsp.name


def family_broadcast(matcher: Any) -> Any:
    async def family(socket: Socket, text: str) -> str:
        """Emit on the parent: every child namespace of the family gets it."""
        await sio.of(matcher).emit("family-news", text)
        return "sent"

    return family


for _matcher in (DYNAMIC, allow_sync, allow_async):
    sio.on("connect", dynamic_connect, namespace=_matcher)
    sio.on("disconnect", record_disconnect, namespace=_matcher)
    sio.on("whoami", whoami, namespace=_matcher)
    sio.on("family", family_broadcast(_matcher), namespace=_matcher)


# -- /class: class-based handlers ---------------------------------------------------------------


class ClassNamespace(NamespaceHandler):
    namespace = "/class"

    async def on_connect(self, socket: Socket, auth: dict[str, Any]) -> None:
        await socket.emit("welcome", {"nsp": self.nsp.name, "auth": auth})

    async def on_disconnect(self, socket: Socket, reason: str) -> None:
        record(f"disconnect:{socket.id}", reason)

    async def on_echo(self, socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    def on_sync_add(self, socket: Socket, a: int, b: int) -> dict[str, Any]:
        return {"sum": a + b, "on_loop": on_loop()}

    async def on_shout(self, socket: Socket, text: str) -> str:
        await self.nsp.emit("shout", text.upper())
        return "shouted"


sio.register(ClassNamespace())


# -- /catchall ----------------------------------------------------------------------------------


async def catch_all(socket: Socket, event: str, *args: Any) -> dict[str, Any]:
    return {"caught": event, "args": list(args)}


async def known(socket: Socket, *args: Any) -> dict[str, Any]:
    return {"known": list(args)}


sio.on("*", catch_all, namespace="/catchall")
sio.on("known", known, namespace="/catchall")


# -- /reentrant: a close asked for while a close runs (socket.io#5194) ----------------------------

REENTRANT = "/reentrant"


async def reentrant_middleware(socket: Socket, auth: dict[str, Any]) -> None:
    """Record the socket id as ``socket:<auth["tag"]>``: a refused client never learns it."""
    record(f"socket:{auth.get('tag')}", socket.id)
    if auth.get("close_in") == "middleware":
        await socket.disconnect(close=True)
        raise ConnectionRefusedError("closed in a middleware")


async def reentrant_connect(socket: Socket, auth: dict[str, Any]) -> None:
    """``auth["close_in"]`` says where this socket closes its connection again."""
    socket.data["close_in"] = auth.get("close_in")
    if auth.get("close_in") == "connect":
        await socket.disconnect(close=True)
        raise ConnectionRefusedError("closed in connect")


async def reentrant_disconnect(socket: Socket, reason: str) -> None:
    """Record the disconnect, then ask for it again: as the socket, as the server, and as the
    Engine.IO session."""
    await record_disconnect(socket, reason)
    close_in = socket.data.get("close_in")
    if close_in == "disconnect":
        await socket.disconnect()
        await socket.disconnect(close=True)
    elif close_in == "disconnect-server":
        await sio.of(REENTRANT).to(socket.id).disconnect_sockets(close=True)
    elif close_in == "disconnect-engine":
        await socket.client.session.close()


async def close_then_raise(socket: Socket) -> None:
    await socket.disconnect(close=True)
    raise RuntimeError("raised after closing, on purpose")


sio.use(reentrant_middleware, namespace=REENTRANT)
sio.on("connect", reentrant_connect, namespace=REENTRANT)
sio.on("disconnect", reentrant_disconnect, namespace=REENTRANT)
sio.on("disconnect-me", disconnect_me, namespace=REENTRANT)
sio.on("close-then-raise", close_then_raise, namespace=REENTRANT)
