"""``manage.py socketio_status``: the live-session registry at a glance, from any process that
reaches the database (a deploy script, a cron job, a health check).

Prints the nodes, the live sessions and the open alarms; ``--json`` prints the same as one
JSON object. Exit status: 0; 2 with ``--fail-on warning|critical`` when an open alarm of at
least that severity exists; 1 when the registry cannot be read (tables not migrated, database
unreachable).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, router
from django.utils import timezone

from channels_sio.models import Alarm, LiveSession, Node
from channels_sio.monitoring.alarms import describe
from channels_sio.monitoring.registry import missing_tables
from channels_sio.monitoring.rules import Thresholds

#: The exit status when ``--fail-on`` finds an alarm.
ALARM_STATUS = 2
_AT_LEAST = {"warning": ["warning", "critical"], "critical": ["critical"]}
_SEVERITY_ORDER = {"critical": 0, "warning": 1}


def _age(moment: datetime | None, now: datetime) -> str:
    """``moment`` as a short age: 4s, 3m05s, 2h10m, 3d04h."""
    if moment is None:
        return "-"
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in (headers, *rows)
    ]


def _node_state(node: Node, silent_after: timedelta, now: datetime) -> str:
    if node.gone_at is not None:
        return "gone"
    # Not marked gone yet (the rules do that), but it stopped heartbeating.
    return "silent" if now - node.last_heartbeat > silent_after else "live"


def collect(using: str, limit: int) -> dict[str, Any]:
    """The registry's nodes, live sessions (``limit`` at most, newest first; 0: all) and
    open alarms (critical first), as JSON-ready values."""
    now = timezone.now()
    silent_after = Thresholds.from_settings().node_gone_after
    nodes = [
        {
            "id": node.id,
            "host": node.host,
            "pid": node.pid,
            "state": _node_state(node, silent_after, now),
            "started_at": node.started_at,
            "last_heartbeat": node.last_heartbeat,
            "gone_at": node.gone_at,
            "sessions": node.sessions,
            "sockets": node.sockets,
            "packets_in_per_s": node.packets_in_per_s,
            "packets_out_per_s": node.packets_out_per_s,
        }
        for node in Node.objects.using(using).order_by("started_at", "id")
    ]
    rows = LiveSession.objects.using(using).order_by("-connected_at", "sid")
    total = rows.count()
    listed = rows[:limit] if limit > 0 else rows
    sessions = [
        {
            "sid": row.sid,
            "node": row.node_id,
            "state": row.state,
            "transport": row.transport,
            "upgrade": row.upgrade,
            "address": row.address,
            "user_agent": row.user_agent,
            "user_id": row.user_id,
            "username": row.username,
            "namespaces": row.namespaces.split("\n") if row.namespaces else [],
            "connected_at": row.connected_at,
            "last_pong_at": row.last_pong_at,
            "rtt_ms": row.rtt_ms,
            "fingerprint": row.fingerprint,
        }
        for row in listed
    ]
    open_alarms = sorted(
        Alarm.objects.using(using).filter(resolved_at__isnull=True).order_by("first_seen", "id"),
        key=lambda alarm: _SEVERITY_ORDER.get(alarm.severity, 2),
    )
    alarms = [
        {
            "id": alarm.pk,
            "kind": alarm.kind,
            "severity": alarm.severity,
            "fingerprint": alarm.fingerprint,
            "node": alarm.node,
            "sids": alarm.sids,
            "details": alarm.details,
            "first_seen": alarm.first_seen,
            "last_seen": alarm.last_seen,
            "count": alarm.count,
            "summary": describe(alarm),
        }
        for alarm in open_alarms
    ]
    return {
        "at": now,
        "nodes": nodes,
        "sessions": sessions,
        "sessions_total": total,
        "alarms": alarms,
    }


class Command(BaseCommand):
    help = (
        "Show the nodes, the live sessions and the open leak alarms of the Socket.IO "
        "registry. Exits with status 2 when --fail-on is given and an open alarm of at least "
        "that severity exists, 1 when the registry cannot be read."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fail-on",
            choices=sorted(_AT_LEAST),
            help="Exit with status 2 when an open alarm of at least this severity exists.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON object instead of tables."
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=100,
            help="Live sessions listed at most, newest first (default 100; 0: all).",
        )
        parser.add_argument(
            "--database", help="The database alias (default: where the registry is written)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        using = options["database"] or router.db_for_read(LiveSession)
        try:
            missing = missing_tables(using)
            if missing:
                raise CommandError(
                    f"The registry's tables ({', '.join(missing)}) are not in database "
                    f"{using!r}: run `manage.py migrate channels_sio`."
                )
            status = collect(using, options["limit"])
        except DatabaseError as exc:
            raise CommandError(f"The registry cannot be read: {exc}") from exc
        if options["json"]:
            self.stdout.write(json.dumps(status, indent=2, default=_json_default))
        else:
            self._print(status)
        fail_on = options["fail_on"]
        if fail_on:
            found = [a for a in status["alarms"] if a["severity"] in _AT_LEAST[fail_on]]
            if found:
                raise CommandError(
                    f"{len(found)} open alarm(s) of severity {fail_on} or worse.",
                    returncode=ALARM_STATUS,
                )

    def _print(self, status: dict[str, Any]) -> None:
        now: datetime = status["at"]
        self._print_nodes(status["nodes"], now)
        self._print_sessions(status["sessions"], status["sessions_total"], now)
        self._print_alarms(status["alarms"], now)

    def _print_nodes(self, nodes: list[dict[str, Any]], now: datetime) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"Nodes ({len(nodes)})"))
        if not nodes:
            return
        headers = (
            "NODE",
            "HOST",
            "PID",
            "STATE",
            "UP",
            "HEARTBEAT",
            "SESSIONS",
            "SOCKETS",
            "IN/S",
            "OUT/S",
        )
        rows = [
            (
                node["id"],
                node["host"],
                str(node["pid"]),
                node["state"],
                _age(node["started_at"], node["gone_at"] or now),
                _age(node["last_heartbeat"], now) + " ago",
                str(node["sessions"]),
                str(node["sockets"]),
                f"{node['packets_in_per_s']:g}",
                f"{node['packets_out_per_s']:g}",
            )
            for node in nodes
        ]
        for line in _table(headers, rows):
            self.stdout.write("  " + line)

    def _print_sessions(self, sessions: list[dict[str, Any]], total: int, now: datetime) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"Live sessions ({len(sessions)} of {total})"))
        if not sessions:
            return
        headers = (
            "SID",
            "NODE",
            "STATE",
            "TRANSPORT",
            "ADDRESS",
            "USER",
            "NAMESPACES",
            "CONNECTED",
            "RTT",
        )
        rows = [
            (
                session["sid"],
                session["node"],
                session["state"],
                session["transport"],
                session["address"] or "-",
                session["username"] or "-",
                ",".join(session["namespaces"]) or "-",
                _age(session["connected_at"], now),
                "-" if session["rtt_ms"] is None else f"{session['rtt_ms']:.0f}ms",
            )
            for session in sessions
        ]
        for line in _table(headers, rows):
            self.stdout.write("  " + line)

    def _print_alarms(self, alarms: list[dict[str, Any]], now: datetime) -> None:
        heading = f"Open alarms ({len(alarms)})"
        self.stdout.write(
            self.style.ERROR(heading) if alarms else self.style.MIGRATE_HEADING(heading)
        )
        for alarm in alarms:
            style = self.style.ERROR if alarm["severity"] == "critical" else self.style.WARNING
            self.stdout.write(
                "  "
                + style(alarm["summary"])
                + f"  [first seen {_age(alarm['first_seen'], now)} ago, "
                f"last {_age(alarm['last_seen'], now)} ago, seen {alarm['count']} times]"
            )


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")
