"""A small run of the benchmark harness (bench/run.py), so that it cannot rot.

Tiny counts, one round, echo and fan-out, polling over each of the load generator's polling
implementations, channels_sio and python-socketio under uvicorn, the cluster scenario (two
processes of each on Redis), the recovery scenarios (recovery off, and on with the memory
store, the database store on SQLite, the Redis store; Node's socket.io without and with
connectionStateRecovery): the numbers mean nothing here, only that the harness produces
well-formed results. tests/bench/test_restore_smoke.py does the same for bench/restore.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.run import default_redis_url
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


def _smoke_run(
    out: Path,
    *scenarios: str,
    extra_apps: tuple[str, ...] = (),
    settings: tuple[str, ...] = (),
    apps: tuple[str, ...] = ("channels_sio", "python-socketio"),
    options: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        str(RUN),
        "--rounds",
        "1",
        "--preset",
        "smoke",
        "--scenarios",
        *scenarios,
        "--apps",
        *apps,
        *extra_apps,
        "--asgi",
        "uvicorn",
        "--out",
        str(out),
        *(arg for setting in settings for arg in ("--set", setting)),
        *options,
    ]
    proc = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=55, check=False
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def test_smoke_run_produces_well_formed_results(tmp_path: Path) -> None:
    _require_client()
    out = tmp_path / "results.json"
    proc = _smoke_run(out, "echo", "fanout", extra_apps=("socket.io",))
    document = json.loads(out.read_text())

    meta = document["meta"]
    assert meta["rounds"] == 1
    assert meta["machine"]["nproc"] >= 1
    assert meta["machine"]["packages"]["python-socketio"]
    assert meta["machine"]["packages"]["socket.io (npm)"] == "4.8.1"

    runs = document["runs"]
    expected = {
        (scenario, app)
        for scenario in ("echo", "fanout")
        for app in ("channels_sio", "python-socketio", "socket.io")
    }
    assert {(r["scenario"], r["app"]) for r in runs} == expected
    for run in runs:
        where = f"{run['scenario']} {run['app']}"
        assert run["ok"], f"{where}: {run}"
        assert run["asgi"] == ("node" if run["app"] == "socket.io" else "uvicorn")
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
        assert set(servers) == {
            "channels_sio@uvicorn",
            "python-socketio@uvicorn",
            "socket.io@node",
        }
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


@pytest.mark.parametrize("impl", ["http", "xhr"])
def test_smoke_polling_run_with_each_polling_implementation(tmp_path: Path, impl: str) -> None:
    """The load generator's own polling transport (the preset's) and the client's default."""
    _require_client()
    out = tmp_path / "results.json"
    _smoke_run(out, "polling", settings=(f"polling.polling-impl={impl}",))
    runs = json.loads(out.read_text())["runs"]
    assert {r["app"] for r in runs} == {"channels_sio", "python-socketio"}
    for run in runs:
        assert run["ok"], f"{run['app']}: {run}"
        assert run["scenario"] == "polling"
        assert run["units"] == run["expected"] > 0
        assert run["errors"] == []


@pytest.mark.redis
def test_smoke_cluster_run_counts_redis_commands(tmp_path: Path) -> None:
    _require_client()
    _require_redis()
    out = tmp_path / "results.json"
    proc = _smoke_run(out, "cluster")
    document = json.loads(out.read_text())
    assert document["meta"]["cluster"]["redis_url"] == default_redis_url()

    runs = document["runs"]
    assert {r["app"] for r in runs} == {"channels_sio", "python-socketio"}
    for run in runs:
        where = run["app"]
        assert run["ok"], f"{where}: {run}"
        assert run["scenario"] == "cluster"
        assert run["asgi"] == "uvicorn"
        assert run["workers"] == run["processes"] == 2, where
        assert run["unit"] == "delivery"
        assert run["units"] == run["expected"] > 0, where
        assert run["broadcasts"] > 0, where
        assert run["server_cpu_s"] is not None, where
        assert 0 < run["p50_ms"] <= run["p99_ms"] <= run["max_ms"], where
        assert run["redis_cpu_s"] >= 0, where
        # Every broadcast crosses Redis: at least one message (ZCOUNT / PUBLISH) each. More
        # would be nodes' heartbeats in the window, or another user of that Redis.
        assert run["layer_messages_per_broadcast"] >= 1, where
        assert run["redis_commands_per_broadcast"] >= run["layer_messages_per_broadcast"], where
        assert "info" not in run["redis_commands"], where

    ratio = document["summary"]["ratios"]["cluster"]["uvicorn"]
    assert len(ratio["throughput_ratio_per_round"]) == 1
    assert "### cluster" in proc.stdout
    assert "Redis commands / broadcast" in proc.stdout


def _check_recovery_run(run: dict[str, Any]) -> None:
    """A run of a recovery scenario: complete, and every measured unit recorded (an offset as
    its last argument) exactly when recovery is on."""
    where = f"{run['scenario']} {run['app']}"
    assert run["ok"], f"{where}: {run}"
    assert run["units"] == run["expected"] > 0, where
    assert run["server_cpu_s"] is not None, where
    assert 0 < run["p50_ms"] <= run["p99_ms"] <= run["max_ms"], where
    assert run["errors"] == [], where
    assert run["unit"] == ("msg" if run["scenario"] == "recovery-echo" else "delivery"), where
    assert run["client_scenario"] == (
        "echo-emit" if run["scenario"] == "recovery-echo" else "fanout"
    ), where
    recording = "+" in run["app"]
    assert run["offsets"] == (run["units"] if recording else 0), where
    assert bool(run.get("recovery_store")) == recording, where


def test_smoke_recovery_run_records_with_each_store(tmp_path: Path) -> None:
    """Recovery off and on (memory; the database store on SQLite), python-socketio, and Node's
    socket.io without and with connectionStateRecovery: the rows, the summary's comparisons
    and the table."""
    _require_client()
    out = tmp_path / "results.json"
    apps = (
        "channels_sio",
        "channels_sio+memory",
        "channels_sio+database",
        "python-socketio",
        "socket.io",
        "socket.io+recovery",
    )
    proc = _smoke_run(
        out,
        "recovery-echo",
        "recovery-fanout",
        apps=apps,
        options=("--recovery-database", "sqlite"),
    )
    document = json.loads(out.read_text())
    assert document["meta"]["recovery"]["database"].startswith("SQLite")

    runs = document["runs"]
    assert {(r["scenario"], r["app"]) for r in runs} == {
        (scenario, app) for scenario in ("recovery-echo", "recovery-fanout") for app in apps
    }
    for run in runs:
        _check_recovery_run(run)
    stores = {r["app"]: r.get("recovery_store") for r in runs}
    assert stores == {
        "channels_sio": None,
        "channels_sio+memory": "memory",
        "channels_sio+database": "sqlite",
        "python-socketio": None,
        "socket.io": None,
        "socket.io+recovery": "node-memory",
    }

    summary = document["summary"]
    for scenario in ("recovery-echo", "recovery-fanout"):
        assert len(summary["servers"][scenario]) == len(apps)
        # Recovery off against python-socketio, as in every scenario.
        assert len(summary["ratios"][scenario]["uvicorn"]["throughput_ratio_per_round"]) == 1
        recovery = summary["recovery"][scenario]
        assert set(recovery) == {"uvicorn", "node"}
        assert set(recovery["uvicorn"]) == {"channels_sio+memory", "channels_sio+database"}
        memory = recovery["uvicorn"]["channels_sio+memory"]
        assert memory["recovery_store"] == "memory"
        assert memory["cost"]["target"] == 1.15
        assert len(memory["cost"]["throughput_ratio_per_round"]) == 1
        assert memory["cost"]["met_per_core"] is None  # one round: no verdict
        assert memory["vs_python_socketio"]["target"] == 2.5
        # The database store's target is PostgreSQL's: none on SQLite.
        assert recovery["uvicorn"]["channels_sio+database"]["cost"]["target"] is None
        node = recovery["node"]["socket.io+recovery"]
        assert node["cost"]["target"] is None
        assert "vs_python_socketio" not in node
        assert len(node["cost"]["throughput_ratio_per_round"]) == 1
    assert "### recovery-echo" in proc.stdout
    assert "### connection state recovery" in proc.stdout
    assert "channels_sio+database@uvicorn (sqlite)" in proc.stdout


@pytest.mark.redis
def test_smoke_recovery_run_with_the_redis_store(tmp_path: Path) -> None:
    """The Redis store's rows record in the bench's own Redis database."""
    _require_client()
    _require_redis()
    out = tmp_path / "results.json"
    _smoke_run(out, "recovery-echo", apps=("channels_sio", "channels_sio+redis"))
    document = json.loads(out.read_text())
    assert document["meta"]["redis"]["url"] == default_redis_url()
    runs = document["runs"]
    assert {r["app"] for r in runs} == {"channels_sio", "channels_sio+redis"}
    for run in runs:
        _check_recovery_run(run)
    entry = document["summary"]["recovery"]["recovery-echo"]["uvicorn"]["channels_sio+redis"]
    assert entry["recovery_store"] == "redis"
    assert entry["cost"]["target"] == 1.3
