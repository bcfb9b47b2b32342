"""A small run of the benchmark harness (bench/run.py), so that it cannot rot.

Tiny counts, one round, echo and fan-out, channels_sio and python-socketio under uvicorn:
the numbers mean nothing here, only that the harness produces well-formed results.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ci import require

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "bench" / "run.py"
CLIENT_DIR = ROOT / "bench" / "client"

pytestmark = [pytest.mark.node, pytest.mark.timeout(90)]


def _require_client() -> None:
    require(shutil.which("node") is not None, "Node.js")
    if not (CLIENT_DIR / "node_modules" / "socket.io-client").is_dir():
        require(shutil.which("npm") is not None, "npm (to install bench/client)")
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CLIENT_DIR,
            check=True,
            timeout=120,
        )


def test_smoke_run_produces_well_formed_results(tmp_path: Path) -> None:
    _require_client()
    out = tmp_path / "results.json"
    command = [
        sys.executable,
        str(RUN),
        "--rounds",
        "1",
        "--preset",
        "smoke",
        "--scenarios",
        "echo",
        "fanout",
        "--apps",
        "channels_sio",
        "python-socketio",
        "--asgi",
        "uvicorn",
        "--out",
        str(out),
    ]
    proc = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=55, check=False
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    document = json.loads(out.read_text())

    meta = document["meta"]
    assert meta["rounds"] == 1
    assert meta["machine"]["nproc"] >= 1
    assert meta["machine"]["packages"]["python-socketio"]

    runs = document["runs"]
    expected = {
        (scenario, app)
        for scenario in ("echo", "fanout")
        for app in ("channels_sio", "python-socketio")
    }
    assert {(r["scenario"], r["app"]) for r in runs} == expected
    for run in runs:
        where = f"{run['scenario']} {run['app']}"
        assert run["ok"], f"{where}: {run}"
        assert run["asgi"] == "uvicorn"
        assert run["round"] == 1
        assert run["units"] == run["expected"] > 0, where
        assert run["throughput"] > 0, where
        assert run["elapsed_s"] > 0, where
        assert run["server_cpu_s"] is not None, where
        assert run["server_cpu_s"] >= 0, where
        assert run["server_rss_kb"] > 0, where
        assert 0 < run["p50_ms"] <= run["p99_ms"] <= run["max_ms"], where
        assert run["errors"] == [], where
        assert run["unit"] == ("msg" if run["scenario"] == "echo" else "delivery")

    summary = document["summary"]
    for scenario in ("echo", "fanout"):
        servers = summary["servers"][scenario]
        assert set(servers) == {"channels_sio@uvicorn", "python-socketio@uvicorn"}
        for entry in servers.values():
            assert entry["failed"] == 0
            assert entry["throughput"]["n"] == 1
        ratio = summary["ratios"][scenario]["uvicorn"]
        assert len(ratio["throughput_ratio_per_round"]) == 1
        assert ratio["throughput_ratio_per_round"][0] > 0
    # The table printed at the end names every scenario and the ratios.
    assert "### echo" in proc.stdout
    assert "### fanout" in proc.stdout
    assert "channels_sio / python-socketio" in proc.stdout
