"""A small run of the benchmark harness (bench/run.py), so that it cannot rot.

Tiny counts, one round, echo and fan-out, polling over each of the load generator's polling
implementations, channels_sio and python-socketio under uvicorn, the cluster scenario (two
processes of each on Redis), the recovery scenarios (recovery off, and on with the memory
store, the database store on SQLite, the Redis store; Node's socket.io without and with
connectionStateRecovery), monitoring (channels_sio with it off, and the code of HEAD as a
baseline; a row fails unless the registry was written): the numbers mean nothing here, only
that the harness produces well-formed results. tests/bench/test_restore_smoke.py does the same
for bench/restore.py.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import run as bench_run
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
    timeout: float = 55,
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
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
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


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.timeout(150)
def test_smoke_recovery_run_with_a_baseline_of_each_store(tmp_path: Path) -> None:
    """--baseline in a recovery scenario: the code of HEAD with recovery off, the Redis store
    and the database store (in a PostgreSQL database of its own, migrated by HEAD, dropped at
    the end), each row compared with this code's row of the same store."""
    import psycopg

    from tests.support.services import POSTGRES_URL, postgres_reachable

    _require_client()
    _require_redis()
    require(postgres_reachable(), f"PostgreSQL at {POSTGRES_URL}")
    commit = _head()
    out = tmp_path / "results.json"
    apps = ("channels_sio", "channels_sio+database", "channels_sio+redis", "python-socketio")
    proc = _smoke_run(
        out,
        "recovery-echo",
        apps=apps,
        options=("--baseline", "HEAD", "--postgres-url", POSTGRES_URL),
        timeout=130,
    )
    document = json.loads(out.read_text())
    baseline = document["meta"]["baseline"]
    assert baseline["commit"] == commit
    assert baseline["apps"] == [
        "channels_sio@HEAD",
        "channels_sio+database@HEAD",
        "channels_sio+redis@HEAD",
    ]
    ours = re.search(r"database (csio_bench_\w+)", document["meta"]["recovery"]["database"])
    theirs = re.search(r"database (csio_bench_\w+)", baseline["database"])
    assert ours, document["meta"]["recovery"]["database"]
    assert theirs, baseline["database"]
    assert ours[1] != theirs[1]

    runs = document["runs"]
    assert [r["app"] for r in runs] == [
        "channels_sio",
        "channels_sio@HEAD",
        "channels_sio+database",
        "channels_sio+database@HEAD",
        "channels_sio+redis",
        "channels_sio+redis@HEAD",
        "python-socketio",
    ]
    for run in runs:
        _check_recovery_run(run)
    stores = {r["app"]: r.get("recovery_store") for r in runs}
    assert stores["channels_sio+database@HEAD"] == "postgresql"
    assert stores["channels_sio+redis@HEAD"] == "redis"

    summary = document["summary"]
    recovery = summary["recovery"]["recovery-echo"]["uvicorn"]
    for store, backend in (("database", "postgresql"), ("redis", "redis")):
        entry = recovery[f"channels_sio+{store}@HEAD"]
        # Its cost is over the baseline's own recovery off; its margin is python-socketio's.
        assert entry["recovery_store"] == backend
        assert len(entry["cost"]["throughput_ratio_per_round"]) == 1
        assert entry["vs_python_socketio"]["target"] == 2.5
    compared = summary["monitoring"]["recovery-echo"]["uvicorn"]
    assert list(compared) == [
        "channels_sio@HEAD",
        "channels_sio+database@HEAD",
        "channels_sio+redis@HEAD",
    ]
    for app, entry in compared.items():
        assert entry["comparison"] == "this code / baseline"
        assert entry["of"] == app.replace("@HEAD", "")
        assert len(entry["throughput_ratio_per_round"]) == 1
    assert (
        "| recovery-echo | uvicorn | this code / baseline | channels_sio+redis@HEAD |"
        in proc.stdout
    )
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as connection:
        left = connection.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s)", [[ours[1], theirs[1]]]
        ).fetchall()
    assert left == []


def _head() -> str:
    """HEAD's commit (skipped, or failed in CI, outside a git checkout)."""
    git = shutil.which("git")
    require(git is not None, "git")
    assert git is not None
    proc = subprocess.run(
        [git, "rev-parse", "--verify", "HEAD^{commit}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    require(proc.returncode == 0, "a git checkout with a HEAD commit")
    return proc.stdout.strip()


@pytest.mark.timeout(150)
def test_smoke_monitoring_run_with_monitoring_off_and_a_baseline(tmp_path: Path) -> None:
    """channels_sio (monitoring on, its registry in the run's migrated SQLite file), channels_sio
    with monitoring off and the code of HEAD (--baseline), in echo and connect: every row checked
    against the registry, and the summary's ratios against channels_sio."""
    _require_client()
    commit = _head()
    out = tmp_path / "results.json"
    apps = ("channels_sio", bench_run.NOMON, "python-socketio")
    proc = _smoke_run(
        out, "echo", "connect", apps=apps, options=("--baseline", "HEAD"), timeout=120
    )
    document = json.loads(out.read_text())
    meta = document["meta"]
    assert meta["monitoring"]["registry"].startswith("SQLite")
    assert meta["monitoring"]["cost_target"] == 1.03
    baseline = meta["baseline"]
    assert baseline["rev"] == "HEAD"
    assert baseline["commit"] == commit
    assert baseline["apps"] == ["channels_sio@HEAD"]
    # HEAD may or may not have monitoring's registry (its migrations say which).
    baseline_registry = baseline["has_registry"]
    assert baseline["registry"].startswith("SQLite")

    runs = document["runs"]
    # In the order of a round: channels_sio, its variants, then python-socketio.
    every = ("channels_sio", bench_run.NOMON, "channels_sio@HEAD", "python-socketio")
    assert [(r["scenario"], r["app"]) for r in runs] == [
        (scenario, app) for scenario in ("echo", "connect") for app in every
    ]
    for record in runs:
        where = f"{record['scenario']} {record['app']}"
        assert record["ok"], f"{where}: {record}"
        assert record["asgi"] == "uvicorn"
        assert record["units"] == record["expected"] > 0, where
        assert record["errors"] == [], where
        monitoring = {
            "channels_sio": True,
            bench_run.NOMON: False,
            "channels_sio@HEAD": baseline_registry,
            "python-socketio": None,
        }[record["app"]]
        assert record.get("monitoring") == monitoring, where
        if monitoring is not None:
            assert record["registry_nodes"] == (1 if monitoring else 0), where

    summary = document["summary"]
    for scenario in ("echo", "connect"):
        assert len(summary["servers"][scenario]) == len(every)
        compared = summary["monitoring"][scenario]["uvicorn"]
        assert list(compared) == [bench_run.NOMON, "channels_sio@HEAD"]
        assert compared[bench_run.NOMON]["comparison"] == "monitoring on / off"
        assert compared["channels_sio@HEAD"]["comparison"] == "this code / baseline"
        for entry in compared.values():
            assert entry["target"] == 1.03
            assert len(entry["throughput_ratio_per_round"]) == 1
            assert entry["throughput_ratio_per_round"][0] > 0
            assert entry["met_per_core"] is None  # one round: no verdict
            assert ("rss_ratio_per_round" in entry) == (scenario == "connect")
    # The variants are not compared with python-socketio.
    assert set(summary["ratios"]["echo"]) == {"uvicorn"}
    assert "### channels_sio against itself" in proc.stdout
    assert "| echo | uvicorn | monitoring on / off | channels_sio-nomon |" in proc.stdout
    assert "| connect | uvicorn | this code / baseline | channels_sio@HEAD |" in proc.stdout


def test_variants_run_in_the_compare_scenarios_after_channels_sio() -> None:
    apps = [*bench_run.APPS, "channels_sio@abc123"]
    echo = bench_run.configs_for("echo", apps, ["uvicorn", "daphne"])
    assert echo[:4] == [
        ("channels_sio", "uvicorn"),
        (bench_run.NOMON, "uvicorn"),
        ("channels_sio@abc123", "uvicorn"),
        ("python-socketio", "uvicorn"),
    ]
    assert ("channels_sio@abc123", "daphne") in echo
    for scenario in ("fanout", "polling", "cluster"):
        chosen = {app for app, _ in bench_run.configs_for(scenario, apps, ["uvicorn"])}
        assert not chosen & {bench_run.NOMON, "channels_sio@abc123"}, scenario
    fanout = bench_run.configs_for("fanout", apps, ["uvicorn"], compare=["fanout"])
    assert (bench_run.NOMON, "uvicorn") in fanout
    assert bench_run.app_named("channels_sio@abc123").variant == "baseline"


def test_the_baseline_runs_in_the_recovery_scenarios_with_each_store() -> None:
    """Recovery off and each store: the baseline's row right after this code's, compared with
    it; its store rows' recovery off is the baseline's own."""
    stores = [f"channels_sio+{store}@abc123" for store in ("memory", "database", "redis")]
    apps = [*bench_run.APPS, "channels_sio@abc123", *stores]
    for scenario in ("recovery-echo", "recovery-fanout"):
        chosen = bench_run.configs_for(scenario, apps, ["uvicorn"])
        assert [app for app, _ in chosen if app.startswith("channels_sio")] == [
            "channels_sio",
            "channels_sio@abc123",
            "channels_sio+memory",
            "channels_sio+memory@abc123",
            "channels_sio+database",
            "channels_sio+database@abc123",
            "channels_sio+redis",
            "channels_sio+redis@abc123",
        ], scenario
    redis = bench_run.app_named("channels_sio+redis@abc123")
    assert redis.variant == "baseline"
    assert redis.counterpart == "channels_sio+redis"
    assert redis.recovery_of == "channels_sio@abc123"
    assert redis.store == "redis"
    assert ("RECOVERY_STORE", "redis") in redis.env
    assert bench_run.parse_baseline("channels_sio+redis") is None
    for name in ("channels_sio+nothing@abc", "channels_sio@", "raw@abc"):
        assert bench_run.parse_baseline(name) is None, name
        with pytest.raises(KeyError):
            bench_run.app_named(name)


def _measure(tmp_path: Path, app: str, registry: bench_run.MonitoringDatabase) -> dict[str, Any]:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    params = dict(bench_run.PRESETS["smoke"]["echo"])
    return bench_run.run_one(
        1, "echo", app, "uvicorn", params, (None, None), log_dir, registry=registry
    )


def test_a_row_fails_when_monitoring_did_not_write_its_registry(tmp_path: Path) -> None:
    """A database without the registry's tables: the server logs that monitoring is off, and
    the row fails rather than measure channels_sio without it."""
    _require_client()
    registry = bench_run.MonitoringDatabase(tmp_path)
    sqlite3.connect(registry.template).close()  # an empty file: never migrated
    registry.has_registry = True  # as though it were: the row expects its node's row
    record = _measure(tmp_path, "channels_sio", registry)
    assert not record["ok"]
    assert record["units"] == record["expected"] > 0  # the measurement itself went well
    assert "monitoring did not write its registry: 0 of 1" in record["error"]
    assert "says monitoring is off" in record["error"]


def test_a_row_fails_when_monitoring_was_on_but_meant_to_be_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """channels_sio-nomon's servers must not write the registry: one that does fails."""
    _require_client()
    registry = bench_run.MonitoringDatabase(tmp_path)
    registry.create()
    assert registry.has_registry
    on = dataclasses.replace(
        bench_run.APPS[bench_run.NOMON], env=bench_run.CHANNELS_SIO_ENV
    )  # no MONITORING=0
    monkeypatch.setitem(bench_run.APPS, bench_run.NOMON, on)
    record = _measure(tmp_path, bench_run.NOMON, registry)
    assert not record["ok"]
    assert "monitoring was to be off, yet 1 server process(es) wrote" in record["error"]
