"""A small run of bench/inprocess.py (the in-process tuning tool), so that it cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

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
