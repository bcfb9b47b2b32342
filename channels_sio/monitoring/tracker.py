"""What this process knows of its own sessions, kept by lifecycle observers and read, every
flush, as plain rows: the registry writer stores them, the leak rules read them.

Nothing here runs per packet: the counters live on the Engine.IO session (``packets_in``,
``rtt`` ...), and are read when a snapshot is taken. Pure Python: no Django.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..engineio import CloseReason, EngineObserver, HttpRequest, Session
from ..socketio import SocketIOServer, SocketObserver
from ..socketio.client import Client
from .audit import audit

__all__ = ["Event", "NodeReport", "SessionRow", "Snapshot", "SocketRow", "Tracker"]

#: Close reasons and refusals the storm and slow-consumer rules count, by address.
_COUNTED_CLOSES = {CloseReason.PARSE_ERROR: "parse error", CloseReason.SEND_QUEUE_FULL: "slow"}
#: Events kept for the rules' windows (the oldest go first).
MAX_EVENTS = 10_000


@dataclass(frozen=True)
class SocketRow:
    """A socket of a live session."""

    id: str
    namespace: str
    rooms: tuple[str, ...]
    pid: str | None
    recovered: bool
    connected_at: float  # seconds since the epoch


@dataclass(frozen=True)
class SessionRow:
    """A live Engine.IO session as the registry stores it. Times are seconds since the epoch;
    ``rtt`` is in seconds."""

    sid: str
    transport: str
    upgrade: str
    address: str
    user_agent: str
    user_id: str | None
    username: str
    connected_at: float
    last_pong_at: float | None
    rtt: float | None
    packets_in: int
    packets_out: int
    bytes_in: int
    bytes_out: int
    queued: int
    sockets: tuple[SocketRow, ...]
    fingerprint: str
    handshake: dict[str, Any] = field(compare=False)


@dataclass(frozen=True)
class Event:
    """Something the rules count over a window: a close by ``parse error``, a refused handshake
    or CONNECT, a session closed for its full send queue."""

    at: float
    kind: str  # "parse error", "refused" or "slow"
    address: str
    sid: str | None


@dataclass
class NodeReport:
    """What the node says of itself at a flush, besides its sessions."""

    sessions: int
    sockets: int
    packets_in: int
    packets_out: int
    #: Close reasons since the process started, and how often.
    closes: dict[str, int]
    #: Events of the last window (the rules sum them across nodes).
    events: list[Event]
    #: What its consistency audit found (monitoring/audit.py).
    orphans: list[dict[str, Any]]


@dataclass
class Snapshot:
    """One flush's worth: the sessions that changed or appeared, those that closed since the
    last snapshot, and the node's report."""

    changed: list[SessionRow]
    closed: list[str]
    report: NodeReport


def _header(session: Session, name: bytes) -> str:
    scope = session.context
    if not isinstance(scope, dict):
        return ""
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


class Tracker(EngineObserver, SocketObserver):
    """Observes one Socket.IO server (and its Engine.IO server) for the registry.

    ``trusted_proxy_header`` (lower case, e.g. ``x-forwarded-for``) names the header whose
    first address is the client's, when a trusted proxy sets it; the peer address otherwise.
    ``fingerprint`` lists what identifies one client, in order of preference: ``pid``
    (connection state recovery), ``user`` (Django user + user agent), ``address`` (address +
    user agent).
    """

    def __init__(
        self,
        server: SocketIOServer,
        *,
        trusted_proxy_header: str | None = None,
        fingerprint: Iterable[str] = ("pid", "user", "address"),
        window: float = 300.0,
    ) -> None:
        self.server = server
        self._proxy_header = trusted_proxy_header.lower().encode() if trusted_proxy_header else None
        self._fingerprint = tuple(fingerprint)
        self.window = window
        self.sessions: dict[str, Session] = {}
        self.closes: dict[str, int] = {}
        self.events: deque[Event] = deque(maxlen=MAX_EVENTS)
        self._closed: list[str] = []
        self._written: dict[str, tuple[Any, ...]] = {}

    def attach(self) -> None:
        """Start observing (the server's Engine.IO server is made if it was not yet)."""
        engine = self.server.engine
        if self not in engine.observers:
            engine.observers.append(self)
        if self not in self.server.observers:
            self.server.observers.append(self)
        for session in engine.sessions.values():
            self.sessions.setdefault(session.sid, session)

    def detach(self) -> None:
        engine = self.server.engine
        if self in engine.observers:
            engine.observers.remove(self)
        if self in self.server.observers:
            self.server.observers.remove(self)

    # -- observing ------------------------------------------------------------------------

    def session_opened(self, session: Session) -> None:
        self.sessions[session.sid] = session

    def session_closed(self, session: Session, reason: CloseReason) -> None:
        if self.sessions.pop(session.sid, None) is not None:
            self._closed.append(session.sid)
        self.closes[str(reason)] = self.closes.get(str(reason), 0) + 1
        kind = _COUNTED_CLOSES.get(reason)
        if kind is not None:
            self.events.append(Event(time.time(), kind, self.address_of(session), session.sid))

    def session_moved(self, session: Session) -> None:
        # Its row goes; the node that took it over writes its own.
        if self.sessions.pop(session.sid, None) is not None:
            self._closed.append(session.sid)

    def handshake_refused(self, request: HttpRequest, status: int) -> None:
        scope = request.context if isinstance(request.context, dict) else {}
        address = self._address(scope, request.headers.get)
        self.events.append(Event(time.time(), "refused", address, None))

    def connect_refused(self, client: Client, namespace: str, payload: dict[str, Any]) -> None:
        session = client.session
        self.events.append(Event(time.time(), "refused", self.address_of(session), session.sid))

    # -- reading --------------------------------------------------------------------------

    def address_of(self, session: Session) -> str:
        scope = session.context if isinstance(session.context, dict) else {}

        def header(name: str) -> str | None:
            return _header(session, name.encode()) or None

        return self._address(scope, header)

    def _address(self, scope: dict[str, Any], header: Any) -> str:
        if self._proxy_header is not None:
            forwarded = header(self._proxy_header.decode())
            if forwarded:
                return str(forwarded).split(",")[0].strip()
        client = scope.get("client")
        return str(client[0]) if client else ""

    def snapshot(self) -> Snapshot:
        """The sessions that changed since the last snapshot, those that closed, and the
        node's report; events older than ``window`` are dropped."""
        now = time.time()
        monotonic_now = time.monotonic()
        clients = self.server.clients
        changed = []
        sockets_total = packets_in = packets_out = 0
        for sid, session in self.sessions.items():
            client = clients.get(sid)
            sockets = tuple(self._socket_rows(client)) if client is not None else ()
            sockets_total += len(sockets)
            packets_in += session.packets_in
            packets_out += session.packets_out
            state = (
                session.transport.name,
                session.upgrade_state.value,
                session.packets_in,
                session.packets_out,
                session.transport.queued,
                session.last_pong,
                sockets,
            )
            if self._written.get(sid) == state:
                continue
            self._written[sid] = state
            changed.append(self._row(session, sockets, now, monotonic_now))
        closed, self._closed = self._closed, []
        for sid in closed:
            self._written.pop(sid, None)
        horizon = now - self.window
        while self.events and self.events[0].at < horizon:
            self.events.popleft()
        report = NodeReport(
            sessions=len(self.sessions),
            sockets=sockets_total,
            packets_in=packets_in,
            packets_out=packets_out,
            closes=dict(self.closes),
            events=list(self.events),
            orphans=audit(self.server),
        )
        return Snapshot(changed, closed, report)

    def _socket_rows(self, client: Client) -> Iterable[SocketRow]:
        for socket in client.sockets.values():
            if socket.connected:
                yield SocketRow(
                    id=socket.id,
                    namespace=socket.nsp.name,
                    rooms=tuple(sorted(socket.rooms)),
                    pid=socket.pid,
                    recovered=socket.recovered,
                    connected_at=socket.handshake.issued / 1000,
                )

    def _row(
        self, session: Session, sockets: tuple[SocketRow, ...], now: float, monotonic_now: float
    ) -> SessionRow:
        scope = session.context if isinstance(session.context, dict) else {}
        user = scope.get("user")
        user_id = None
        username = ""
        if user is not None and getattr(user, "is_authenticated", False):
            user_id = str(user.pk)
            username = str(user.get_username())
        address = self.address_of(session)
        user_agent = _header(session, b"user-agent")
        # Monotonic times of the session, as wall-clock times for the database.
        last_pong = now - (monotonic_now - session.last_pong) if session.last_ping else None
        return SessionRow(
            sid=session.sid,
            transport=session.transport.name,
            upgrade=session.upgrade_state.value,
            address=address,
            user_agent=user_agent,
            user_id=user_id,
            username=username,
            connected_at=session.connected_at,
            last_pong_at=last_pong,
            rtt=session.rtt,
            packets_in=session.packets_in,
            packets_out=session.packets_out,
            bytes_in=session.bytes_in,
            bytes_out=session.bytes_out,
            queued=session.transport.queued,
            sockets=sockets,
            fingerprint=self._fingerprint_of(sockets, user_id, address, user_agent),
            handshake=self._handshake(scope, address),
        )

    def _fingerprint_of(
        self, sockets: tuple[SocketRow, ...], user_id: str | None, address: str, agent: str
    ) -> str:
        for kind in self._fingerprint:
            if kind == "pid":
                pids = sorted(row.pid for row in sockets if row.pid)
                if pids:
                    return f"pid:{pids[0]}"
            elif kind == "user" and user_id is not None:
                return f"user:{user_id}|{agent}"
            elif kind == "address" and address:
                return f"address:{address}|{agent}"
        return ""

    @staticmethod
    def _handshake(scope: dict[str, Any], address: str) -> dict[str, Any]:
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", ())
            if name != b"cookie"  # the session cookie stays out of the admin
        }
        return {
            "path": scope.get("path", ""),
            "query": scope.get("query_string", b"").decode("latin-1"),
            "headers": headers,
            "address": address,
            "scheme": scope.get("scheme", ""),
        }
