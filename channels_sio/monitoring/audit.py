"""The node's consistency audit: what its tables hold that no open Engine.IO session backs.

Every socket, room entry, pending acknowledgement and Socket.IO client belongs to an open
session of this process; whatever does not is an orphan, a leak in the making (the orphan
rule raises an alarm for it). Pure Python: no Django.
"""

from __future__ import annotations

from typing import Any

from ..socketio import SocketIOServer
from ..socketio.adapter import LocalAdapter
from ..socketio.namespace import Namespace

__all__ = ["audit"]

#: Findings reported at most, so that a broken process does not flood its node row.
MAX_FINDINGS = 50


def _namespaces(server: SocketIOServer) -> list[Namespace]:
    found = list(server.namespaces.values())
    for _, parent in server._dynamic:
        found.extend(parent.children.values())
    return found


def audit(server: SocketIOServer) -> list[dict[str, Any]]:
    """Orphans in ``server``'s tables, each ``{"what", "id", "namespace", "sid"}``."""
    engine = server._engine
    sessions = engine.sessions if engine is not None else {}
    findings: list[dict[str, Any]] = []

    def orphan(what: str, ident: str, namespace: str = "", sid: str = "") -> None:
        if len(findings) < MAX_FINDINGS:
            findings.append({"what": what, "id": ident, "namespace": namespace, "sid": sid})

    for sid in server.clients:
        session = sessions.get(sid)
        if session is None or not session.is_open:
            orphan("client", sid, sid=sid)
    for nsp in _namespaces(server):
        if nsp._adapter is None:
            continue  # never used in this process
        local: LocalAdapter = nsp.adapter.local
        for socket_id, socket in local.sockets.items():
            sid = socket.client.session.sid
            live = sessions.get(sid)
            if live is None or not live.is_open or not socket.connected:
                # Its acknowledgement callbacks would wait forever too.
                orphan("pending ack" if socket.acks else "socket", socket_id, nsp.name, sid)
        held = local._held
        for socket_id in local.index.sids:
            if socket_id not in local.sockets and socket_id not in held:
                orphan("room entry", socket_id, nsp.name)
    return findings
