"""A small run of bench/inprocess.py (the in-process tuning tool), so that it cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bench.run import default_postgres_url
from tests.support.database import require_postgres

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "inprocess.py"


def _short_run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--count", "50"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("scenario", ["echo", "polling"])
def test_a_short_run_reports_the_time_per_round_trip(scenario: str) -> None:
    output = _short_run(scenario)
    assert re.fullmatch(rf"{scenario}: \d+\.\d µs wall per round trip \(50\)\n", output)


def test_the_floor_runs_the_echo_harness_alone() -> None:
    # The harness checks every answer, so a floor app that answered wrongly would fail here.
    output = _short_run("echo", "--floor")
    assert re.fullmatch(r"echo: \d+\.\d µs wall per round trip \(50\)\n", output)


def bench_databases() -> set[str]:
    with psycopg.connect(default_postgres_url(), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'csio_bench_%'"
        ).fetchall()
    return {name for (name,) in rows}


@pytest.mark.postgres
def test_the_database_store_runs_on_a_database_of_its_own_dropped_after() -> None:
    require_postgres()
    before = bench_databases()
    output = _short_run("echo-emit", "--recovery", "database", "--clients", "5")
    assert re.fullmatch(r"echo-emit: \d+\.\d µs wall per round trip \(50\)\n", output)
    assert bench_databases() <= before
