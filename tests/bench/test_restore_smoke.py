"""A small run of bench/restore.py (connection state recovery: one client's restore, per
store), so that it cannot rot: one restore of 20 missed packets per store, the memory store and
the database store on SQLite (in the server's process: timed only), and the Redis store (timed,
and through the proxy that counts its round trips). The numbers mean nothing here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.run import default_redis_url
from tests.support.ci import require

ROOT = Path(__file__).resolve().parents[2]
RESTORE = ROOT / "bench" / "restore.py"

pytestmark = pytest.mark.timeout(90)


def _require_redis() -> None:
    import redis

    client = redis.Redis.from_url(default_redis_url(), socket_timeout=2, socket_connect_timeout=2)
    try:
        reachable = bool(client.ping())
    except redis.RedisError:
        reachable = False
    finally:
        client.close()
    require(reachable, f"Redis at {default_redis_url()}")


def _restore_run(out: Path, *options: str) -> dict[str, Any]:
    command = [
        sys.executable,
        str(RESTORE),
        "--repeat",
        "1",
        "--packets",
        "20",
        "--settle-ms",
        "50",
        "--out",
        str(out),
        *options,
    ]
    proc = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=55, check=False
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "### restore of 20 missed packets" in proc.stdout
    document: dict[str, Any] = json.loads(out.read_text())
    assert document["meta"]["packets"] == 20
    for result in document["results"]:
        where = f"{result['store']} counted={result['counted']}"
        assert result["ok"], f"{where}: {result}"
        [restore] = result["restores"]
        assert restore["recovered"], where
        assert restore["replayed"] == 20, where
        assert restore["in_order"], where
        assert 0 < restore["restore_ms"] <= restore["reconnect_ms"], where
        assert restore["restore_ms"] <= restore["complete_ms"], where
        assert (restore["exchanges"] is None) != result["counted"], where
    return document


def test_smoke_restore_memory_and_sqlite(tmp_path: Path) -> None:
    """The restore measurement, with the stores that live in the server's process: timed, no
    round trip to count."""
    document = _restore_run(
        tmp_path / "restore.json", "--stores", "memory", "database", "--recovery-database", "sqlite"
    )
    summary = document["summary"]
    assert set(summary) == {"memory", "database"}
    assert summary["database"]["backend"] == "sqlite"
    for entry in summary.values():
        assert entry["ok"]
        assert entry["all_replayed_in_order"]
        assert entry["restore_ms"]["median"] > 0
        assert entry["round_trips_per_restore"] is None
        assert entry["target_met"] is None


@pytest.mark.redis
def test_smoke_restore_counts_redis_round_trips(tmp_path: Path) -> None:
    """The Redis store, timed and through the counting proxy: its round trips, each with the
    commands it carried."""
    _require_redis()
    document = _restore_run(tmp_path / "restore.json", "--stores", "redis")
    assert [r["counted"] for r in document["results"]] == [False, True]
    entry = document["summary"]["redis"]
    assert entry["ok"]
    [trips] = entry["round_trips_per_restore"]
    assert trips >= 1
    assert len(entry["round_trips"]) == trips
    assert all(isinstance(sent, str) and sent for sent in entry["round_trips"])
    assert isinstance(entry["target_met"], bool)


@pytest.mark.postgres
def test_smoke_restore_on_postgres_counts_statements(tmp_path: Path) -> None:
    """The database store on PostgreSQL: the run's own database (created, migrated, dropped),
    and the round trips with the statements they carried."""
    from tests.support.services import POSTGRES_URL, postgres_reachable

    require(postgres_reachable(), f"PostgreSQL at {POSTGRES_URL}")
    document = _restore_run(
        tmp_path / "restore.json", "--stores", "database", "--postgres-url", POSTGRES_URL
    )
    entry = document["summary"]["database"]
    assert entry["backend"] == "postgresql"
    [trips] = entry["round_trips_per_restore"]
    assert trips >= 1
    assert any("channels_sio_recoverypacket" in sent for sent in entry["round_trips"])

    import psycopg

    name = re.search(r"database (csio_bench_\w+)", entry["about"])
    assert name, entry["about"]
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as connection:
        left = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name[1]]
        ).fetchall()
    assert left == [], "the run drops its database"
