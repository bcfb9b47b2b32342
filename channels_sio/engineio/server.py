"""The Engine.IO server: handshakes, request routing to sessions, and the application handlers."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import secrets
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ..tasks import OwnedTasks
from .config import EngineIOConfig
from .errors import CloseReason, ErrorCode
from .handover import RemoteOwner, RemoteProbe
from .http import HttpRequest, HttpResponse, error_response
from .packet import Packet, PacketType
from .polling import PollingTransport, Receive
from .ratelimit import HandshakeLimiter
from .session import Handover, Session, Transport
from .websocket import CLOSE_POLICY_VIOLATION, WebSocketSink, WebSocketTransport

__all__ = [
    "ConnectHandler",
    "DisconnectHandler",
    "EngineIOServer",
    "EngineObserver",
    "MessageHandler",
]

logger = logging.getLogger("channels_sio.engineio")

ConnectHandler = Callable[[Session], Awaitable[bool | None]]
MessageHandler = Callable[[Session, str | bytes], Awaitable[None]]
DisconnectHandler = Callable[[Session, CloseReason], Awaitable[None]]
Forwarder = Callable[[HttpRequest, Receive], Awaitable[HttpResponse | None]]
H = TypeVar("H", bound=Callable[..., Awaitable[Any]])

_PREFLIGHT_METHODS = b"GET, POST, OPTIONS"
#: Random bytes in a sid (after the cluster node's prefix): 128 bits, never guessed.
SID_BYTES = 16


class EngineObserver:
    """Watches an Engine.IO server's sessions without taking part (monitoring).

    Subclass it and override what you need; register with ``server.observers.append``. The
    methods run inline, on the event loop: keep them quick, and never raise.
    """

    def session_opened(self, session: Session) -> None:
        """A handshake succeeded: ``session`` is open."""

    def session_closed(self, session: Session, reason: CloseReason) -> None:
        """``session`` closed for ``reason`` (its disconnect handler has run)."""

    def handshake_refused(self, request: HttpRequest, status: int) -> None:
        """A request that would have opened a session was answered ``status`` instead."""

    def session_moved(self, session: Session) -> None:
        """``session`` left this process, before its connect handler ran: its client
        completed a WebSocket upgrade in another process, which took it over."""


def _require_async(handler: H) -> H:
    is_async = inspect.iscoroutinefunction(handler)  # a bool, so mypy keeps the type H
    if not is_async:
        raise TypeError(f"Engine.IO handlers must be 'async def' functions, not {handler!r}")
    return handler


class EngineIOServer:
    """An Engine.IO v4 server, usable on its own or under the Socket.IO layer.

    Register handlers with the decorators::

        eio = EngineIOServer(EngineIOConfig(ping_interval=25_000))

        @eio.on_message
        async def echo(session, data):
            await session.send(data)

    ``on_connect`` may return ``False`` to refuse the handshake (answered as Forbidden).
    Handlers run inline on the session's receive path: long work belongs in a task of yours.
    """

    _running: weakref.WeakSet[EngineIOServer] = weakref.WeakSet()

    def __init__(self, config: EngineIOConfig | None = None) -> None:
        self.config = config or EngineIOConfig()
        self._extra_headers = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in self.config.extra_headers
        ]
        self.sessions: dict[str, Session] = {}
        self._connect: ConnectHandler | None = None
        self._message: MessageHandler | None = None
        self._disconnect: DisconnectHandler | None = None
        #: Starts every sid this server issues: the cluster uses it to find a sid's owner.
        self.sid_prefix = ""
        #: Answers a polling request whose sid this server does not hold (another process
        #: may own it); without it such requests get "Session ID unknown".
        self.forward: Forwarder | None = None
        self._draining: dict[str, PollingTransport] = {}
        #: Seconds a new long-polling session waits for its client's WebSocket upgrade before
        #: the connect handler runs, so that another process the upgrade reaches can take the
        #: session over (``Session.hold``); None or 0: the handler runs at the handshake.
        self.upgrade_window: Callable[[], float] | None = None
        #: Reaches the processes that own the sessions this one does not hold, for WebSocket
        #: upgrades that land here (the cluster sets it); None refuses such upgrades.
        self.remote_owner: RemoteOwner | None = None
        #: Told of every session opened and closed, and of refused handshakes.
        self.observers: list[EngineObserver] = []
        limit = self.config.handshake_rate_limit
        self._limiter = HandshakeLimiter(*limit) if limit is not None else None
        self._tasks = OwnedTasks(logger, "Engine.IO task failed")
        EngineIOServer._running.add(self)

    @classmethod
    def running(cls) -> list[EngineIOServer]:
        """Every server alive in this process (used to close them all on shutdown)."""
        return list(cls._running)

    # -- handlers -------------------------------------------------------------------------

    def on_connect(self, handler: H) -> H:
        """Register ``async def handler(session) -> bool | None``."""
        self._connect = _require_async(handler)
        return handler

    def on_message(self, handler: H) -> H:
        """Register ``async def handler(session, data)``; data is ``str`` or ``bytes``."""
        self._message = _require_async(handler)
        return handler

    def on_disconnect(self, handler: H) -> H:
        """Register ``async def handler(session, reason)``."""
        self._disconnect = _require_async(handler)
        return handler

    async def accepts(self, session: Session) -> bool:
        """Run the connect handler for ``session``: False if it refused or failed."""
        if self._connect is None:
            return True
        try:
            return await self._connect(session) is not False
        except Exception:
            logger.exception("Engine.IO connect handler failed; refusing session %s", session.sid)
            return False

    async def dispatch_message(self, session: Session, data: str | bytes) -> None:
        if self._message is not None:
            try:
                await self._message(session, data)
            except Exception:
                logger.exception("Engine.IO message handler failed (session %s)", session.sid)

    async def dispatch_disconnect(self, session: Session, reason: CloseReason) -> None:
        if self._disconnect is not None:
            try:
                await self._disconnect(session, reason)
            except Exception:
                logger.exception("Engine.IO disconnect handler failed (session %s)", session.sid)

    # -- observers ------------------------------------------------------------------------

    def notify_closed(self, session: Session, reason: CloseReason) -> None:
        """``session`` closed (called once, by the session)."""
        for observer in self.observers:
            try:
                observer.session_closed(session, reason)
            except Exception:
                logger.exception("Engine.IO observer %r failed", observer)

    def notify_moved(self, session: Session) -> None:
        """``session`` was handed over to another process (called once, by the session)."""
        for observer in self.observers:
            try:
                observer.session_moved(session)
            except Exception:
                logger.exception("Engine.IO observer %r failed", observer)

    def _notify_opened(self, session: Session) -> None:
        for observer in self.observers:
            try:
                observer.session_opened(session)
            except Exception:
                logger.exception("Engine.IO observer %r failed", observer)

    def _notify_refused(self, request: HttpRequest, status: int) -> None:
        for observer in self.observers:
            try:
                observer.handshake_refused(request, status)
            except Exception:
                logger.exception("Engine.IO observer %r failed", observer)

    # -- session table --------------------------------------------------------------------

    def forget(self, session: Session) -> None:
        """Drop a closing session from the table, so its sid is unknown from now on."""
        if self.sessions.get(session.sid) is session:
            del self.sessions[session.sid]

    def drain(self, sid: str, transport: PollingTransport) -> None:
        """Keep a closed session's polling transport reachable until its client polled the
        last packets and the CLOSE (or for one heartbeat period, whichever comes first)."""
        self._draining[sid] = transport
        limit = (self.config.ping_interval + self.config.ping_timeout) / 1000
        asyncio.get_running_loop().call_later(limit, self.drained, sid)

    def drained(self, sid: str) -> None:
        self._draining.pop(sid, None)

    def _new_sid(self) -> str:
        while True:
            sid = self.sid_prefix + secrets.token_urlsafe(SID_BYTES)
            if sid not in self.sessions:
                return sid

    async def _open_session(self, transport: Transport, request: HttpRequest) -> Session | None:
        """Create and register a session whose open packet is queued; None if refused."""
        config = self.config
        upgrades = config.upgrades if transport.name == "polling" else []
        session = Session(self, self._new_sid(), transport, request.context)
        transport.session = session
        handshake = {
            "sid": session.sid,
            "upgrades": upgrades,
            "pingInterval": config.ping_interval,
            "pingTimeout": config.ping_timeout,
            "maxPayload": config.max_payload,
        }
        await transport.write(
            [Packet(PacketType.OPEN, json.dumps(handshake, separators=(",", ":")))]
        )
        self.sessions[session.sid] = session
        window = self.upgrade_window() if upgrades and self.upgrade_window is not None else 0.0
        if window > 0:
            session.start()
            self._notify_opened(session)
            session.hold(window)
            return session
        if not await self.accepts(session):
            await session.close(CloseReason.FORCED_CLOSE)
            return None
        session.start()
        self._notify_opened(session)
        return session

    async def adopt(
        self, sid: str, transport: WebSocketTransport, request: HttpRequest, handover: Handover
    ) -> Session | None:
        """Take over a session another process held, whose client completed its WebSocket
        upgrade on ``transport``: it goes on here, as if it had been opened here."""
        session = Session(self, sid, transport, request.context, upgraded=True)
        session.connected_at = handover.connected_at
        transport.session = session
        self.sessions[sid] = session
        if not await self.accepts(session):
            await session.close(CloseReason.FORCED_CLOSE)
            return None
        session.start()
        self._notify_opened(session)
        if handover.leftovers:
            await transport.write(handover.leftovers)
        await session.replay(handover.messages)
        return session

    async def shutdown(self) -> None:
        """Close every session with ``server shutting down``, then cancel owned tasks."""
        for session in list(self.sessions.values()):
            await session.close(CloseReason.SERVER_SHUTTING_DOWN)
        await asyncio.gather(*self._tasks.cancel(), return_exceptions=True)

    # -- owned tasks ----------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` as a task this server owns (cancelled by :meth:`shutdown`)."""
        self._tasks.spawn(coro)

    # -- origin / CORS --------------------------------------------------------------------

    def _origin_allowed(self, request: HttpRequest) -> bool:
        origin = request.headers.get("origin")
        if origin is None:
            return True
        allowed = self.config.cors_allowed_origins
        if allowed == "*":
            return True
        if allowed is None:
            own_origin = self.config.own_origin
            own = (
                own_origin(request)
                if own_origin is not None
                else f"{request.scheme}://{request.headers.get('host', '')}"
            )
            return own is not None and origin == own
        return origin in allowed

    def _rate_limited(self, request: HttpRequest) -> float:
        """0.0, or the seconds until this request's address may open a session again."""
        if self._limiter is None or request.client is None:
            return 0.0
        return self._limiter.take(request.client)

    def _cors_headers(self, request: HttpRequest) -> list[tuple[bytes, bytes]]:
        origin = request.headers.get("origin")
        if origin is None:
            return []
        headers = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
        if self.config.cors_credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers

    def _preflight(self, request: HttpRequest) -> HttpResponse:
        headers = [(b"access-control-allow-methods", _PREFLIGHT_METHODS)]
        asked = request.headers.get("access-control-request-headers")
        if asked:
            headers.append((b"access-control-allow-headers", asked.encode("latin-1")))
        return HttpResponse(204, b"", headers=headers)

    # -- HTTP (long-polling) --------------------------------------------------------------

    async def handle_http(self, request: HttpRequest, receive: Receive) -> HttpResponse | None:
        """Answer one polling request; None when the client left before an answer existed."""
        if not self._origin_allowed(request):
            # No CORS headers: a foreign origin learns nothing from the answer.
            if "sid" not in request.query:
                self._notify_refused(request, 403)
            return error_response(ErrorCode.FORBIDDEN)
        if "sid" not in request.query and request.method == "GET":
            wait = self._rate_limited(request)
            if wait:
                self._notify_refused(request, 429)
                return _too_many_handshakes(wait)
        response = await self._route_http(request, receive)
        if (
            response is not None
            and response.status >= 400
            and request.method != "OPTIONS"
            and "sid" not in request.query
        ):
            self._notify_refused(request, response.status)
        if response is not None:
            response.headers.extend(self._cors_headers(request))
            response.headers.extend(self._extra_headers)
        return response

    async def _route_http(self, request: HttpRequest, receive: Receive) -> HttpResponse | None:
        if request.method == "OPTIONS":
            return self._preflight(request)
        query = request.query
        if query.get("EIO") != "4":
            return error_response(ErrorCode.UNSUPPORTED_PROTOCOL_VERSION)
        transport = query.get("transport")
        if transport not in self.config.transports:
            return error_response(ErrorCode.UNKNOWN_TRANSPORT)
        if transport != "polling":
            # A WebSocket handshake that arrived as a plain HTTP request.
            return error_response(ErrorCode.BAD_REQUEST)
        sid = query.get("sid")
        if sid is None:
            if request.method != "GET":
                return error_response(ErrorCode.BAD_HANDSHAKE_METHOD)
            polling = PollingTransport(self.config.max_queued_packets)
            session = await self._open_session(polling, request)
            if session is None:
                return error_response(ErrorCode.FORBIDDEN)
            return await polling.handle_get(receive)
        session = self.sessions.get(sid)
        if session is None:
            draining = self._draining.get(sid)
            if draining is not None and request.method == "GET":
                return await draining.handle_get(receive)
            if self.forward is not None:
                return await self.forward(request, receive)
            return error_response(ErrorCode.UNKNOWN_SID)
        current = session.transport
        if not isinstance(current, PollingTransport):
            return error_response(ErrorCode.BAD_REQUEST)
        if request.body_too_large:
            logger.info("session %s: POST over max_payload", sid)
            await session.close(CloseReason.TRANSPORT_ERROR)
            return HttpResponse(413, b"Payload Too Large")
        if request.method == "GET":
            return await current.handle_get(receive)
        if request.method == "POST":
            return await current.handle_post(request.body)
        return error_response(ErrorCode.BAD_REQUEST)

    # -- WebSocket ------------------------------------------------------------------------

    async def open_websocket(
        self, request: HttpRequest, sink: WebSocketSink
    ) -> WebSocketTransport | None:
        """Handle a WebSocket handshake: a new session, or a probe to upgrade a polling one.

        Returns the transport that will receive this socket's frames, or None when the socket
        was refused (closed before accept) or accepted and closed at once.
        """
        query = request.query
        if (
            not self._origin_allowed(request)
            or query.get("EIO") != "4"
            or query.get("transport") != "websocket"
            or "websocket" not in self.config.transports
        ):
            # Closing before accept makes the ASGI server answer the handshake with 403.
            await sink.close_socket(CLOSE_POLICY_VIOLATION)
            if "sid" not in query:
                self._notify_refused(request, 403)
            return None
        sid = query.get("sid")
        if sid is None and self._rate_limited(request):
            await sink.close_socket(CLOSE_POLICY_VIOLATION)
            self._notify_refused(request, 429)
            return None
        transport = WebSocketTransport(
            sink, self.config.max_payload, self.config.max_queued_packets
        )
        if sid is None:
            session = await self._open_session(transport, request)
            if session is None:
                await sink.close_socket(CLOSE_POLICY_VIOLATION)
                self._notify_refused(request, 403)
                return None
            await sink.accept()
            await transport.start_writing()
            return transport
        await sink.accept()
        session = self.sessions.get(sid)
        if session is None and self.remote_owner is not None and self.remote_owner.owns(sid):
            # Another process owns it: it may hand the session over (see RemoteProbe).
            transport.remote = RemoteProbe(self, self.remote_owner, sid, transport, request)
            await transport.start_writing()
            return transport
        if session is None or not session.can_upgrade:
            # Unknown sid, or a session already upgrading or upgraded: this socket alone goes.
            await sink.close_socket(CLOSE_POLICY_VIOLATION)
            return None
        transport.session = session
        session.begin_probe(transport)
        await transport.start_writing()
        return transport


def _too_many_handshakes(wait: float) -> HttpResponse:
    """429 with engine.io's "Bad request" body (clients read only the status) and when to retry."""
    response = error_response(ErrorCode.BAD_REQUEST)
    response.status = 429
    response.headers.append((b"retry-after", str(max(1, math.ceil(wait))).encode()))
    return response
