"""Fixtures of the monitoring suites: the database under test (SQLite, and PostgreSQL when it
answers), registry rows made by hand, and thresholds with round numbers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from channels_sio.models import LiveSession, LiveSocket, Node
from channels_sio.monitoring.rules import Thresholds
from tests.support.database import require_postgres, statements, using

__all__ = ["require_postgres", "statements", "using"]


#: The thresholds of the rule tests (ms), chosen so that each boundary is far from the others.
THRESHOLDS_MS: dict[str, int] = {
    "ping_interval": 1000,
    "ping_timeout": 500,
    "upgrade_timeout": 1000,
    "connect_timeout": 1000,
    "node_timeout": 2000,
    "flush_interval": 200,
    "zombie_grace": 1000,  # a zombie after 2.5 s of silence
    "duplicate_grace": 1000,
    "storm_window": 10_000,
    "stuck_grace": 500,  # stuck after 1.5 s
    "slow_consumer_window": 10_000,
    "retention": 60_000,
}


def thresholds(storm_threshold: int = 5, **ms: int) -> Thresholds:
    values = {**THRESHOLDS_MS, **ms}
    return Thresholds(
        storm_threshold=storm_threshold,
        **{name: timedelta(milliseconds=value) for name, value in values.items()},
    )


class Rows:
    """Registry rows on one database; times are given in seconds before ``now``."""

    def __init__(self, using: str, now: datetime) -> None:
        self.using = using
        self.now = now

    def ago(self, seconds: float | None) -> datetime | None:
        return None if seconds is None else self.now - timedelta(seconds=seconds)

    def node(
        self,
        node_id: str = "n1",
        *,
        heartbeat_ago: float = 0.0,
        gone_ago: float | None = None,
        report: dict[str, Any] | None = None,
    ) -> Node:
        return Node.objects.using(self.using).create(
            id=node_id,
            host="host",
            pid=1234,
            started_at=self.now - timedelta(hours=1),
            last_heartbeat=self.ago(heartbeat_ago),
            gone_at=self.ago(gone_ago),
            report=report or {},
        )

    def session(
        self,
        sid: str,
        node: str = "n1",
        *,
        connected_ago: float = 10.0,
        pong_ago: float | None = 0.5,
        namespaces: str = "/",
        fingerprint: str = "",
        upgrade: str = "none",
        state: str = LiveSession.State.LIVE,
        address: str = "10.0.0.1",
        sockets: int = 0,
    ) -> LiveSession:
        session = LiveSession.objects.using(self.using).create(
            sid=sid,
            node_id=node,
            state=state,
            transport="websocket",
            upgrade=upgrade,
            address=address,
            connected_at=self.ago(connected_ago),
            last_pong_at=self.ago(pong_ago),
            namespaces=namespaces,
            fingerprint=fingerprint,
            updated_at=self.now,
        )
        for n in range(sockets):
            LiveSocket.objects.using(self.using).create(
                id=f"{sid}-socket-{n}",
                session=session,
                namespace="/",
                connected_at=self.now,
            )
        return session


@pytest.fixture
def rows(using: str) -> Rows:
    return Rows(using, timezone.now())
