"""Benchmarks side by side: channels_sio against python-socketio on the same ASGI servers.

    python bench/run.py [--rounds 3] [--quick] [--scenarios echo polling fanout connect cluster]

One run alternates the servers A B A B over the rounds: channels_sio (the example project with
``example_project.settings_bench``) and python-socketio's ASGI app with the same handlers
(``bench/servers/pysio_app.py``), each under uvicorn and under daphne, and a raw ASGI WebSocket
echo under uvicorn as the floor (echo only), and Node's socket.io with the same handlers as a
column for reference (``bench/servers/socketio_server.js``; not in the cluster scenario, and not
in the ratios). The servers run a copy of the code under test taken
when the run starts (others may edit the work tree meanwhile). Every (round, scenario, server)
gets a fresh server process pinned to core 0; the load generator (``bench/client/bench.js``,
the official socket.io-client on Node) is pinned to core 1, and reads the server's CPU time
(utime + stime of /proc/PID/stat) right before and after its measured window.

The cluster scenario runs ``cluster.workers`` uvicorn processes of each app on Redis
(``settings_bench_redis``; ``bench/servers/pysio_redis_app.py``), all pinned to core 0, in a
Redis database of the benchmark's own (``--redis-url``), flushed before every measurement; the
server's CPU is summed over the processes, and Redis's command counts are read around the window.

It prints a table per scenario (median and min-max of throughput and of the server's CPU time
per unit over the rounds), the ratio channels_sio / python-socketio per round on the same ASGI
server, and writes everything to ``bench/results/bench-<time>.json`` (``--out`` to choose).
Every subprocess and every wait is bounded in time; every process it started is stopped on exit,
on error and on SIGINT / SIGTERM. Only 127.0.0.1 is used. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
CLIENT_DIR = BENCH_DIR / "client"
CLIENT_SCRIPT = CLIENT_DIR / "bench.js"
RESULTS_DIR = BENCH_DIR / "results"

SCENARIOS = ("echo", "polling", "fanout", "connect", "cluster")
UNITS = {
    "echo": "msg",
    "polling": "msg",
    "fanout": "delivery",
    "connect": "conn",
    "cluster": "delivery",
}
SERVER_CORE = 0
CLIENT_CORE = 1


@dataclass(frozen=True)
class App:
    name: str
    target: str  # module:attribute of the ASGI application
    cwd: str  # relative to the source root (the work tree, or its snapshot)
    pythonpath: tuple[str, ...]  # idem
    env: tuple[tuple[str, str], ...] = ()
    socketio: bool = True  # False: the raw WebSocket echo (no Socket.IO, echo scenario only)
    node: bool = False  # True: ``target`` is a Node script, run by node rather than an ASGI server


APPS = {
    "channels_sio": App(
        "channels_sio",
        "example_project.asgi:application",
        "example_project",
        ("example_project", "."),
        (("DJANGO_SETTINGS_MODULE", "example_project.settings_bench"), ("DJANGO_DEBUG", "0")),
    ),
    "python-socketio": App("python-socketio", "bench.servers.pysio_app:app", ".", (".",)),
    "raw": App("raw", "bench.servers.raw_echo:app", ".", (".",), socketio=False),
    "socket.io": App("socket.io", "bench/servers/socketio_server.js", ".", (), node=True),
}
# The same apps on Redis, for the cluster scenario: REDIS_URL is given to these only.
CLUSTER_APPS = {
    "channels_sio": App(
        "channels_sio",
        "example_project.asgi:application",
        "example_project",
        ("example_project", "."),
        (("DJANGO_SETTINGS_MODULE", "example_project.settings_bench_redis"), ("DJANGO_DEBUG", "0")),
    ),
    "python-socketio": App("python-socketio", "bench.servers.pysio_redis_app:app", ".", (".",)),
}
CLUSTER_ASGI = "uvicorn"
# The Redis database of the cluster scenario (on REDIS_URL's server): flushed before and after
# every measurement, so no run sees another run's nodes.
CLUSTER_REDIS_DB = 5
# The Redis command that carries one channel-layer message, per app. python-socketio publishes
# each broadcast once (PUBLISH; Redis pushes it to every subscribed process). channels-redis
# checks a channel's capacity with one ZCOUNT before it enqueues each message, in send() and,
# inside its Lua script, for each channel of a group_send: ZCOUNT counts the messages (ZADD
# would also count the receiver's backup copy and group joins).
LAYER_MESSAGE_COMMAND = {"channels_sio": "zcount", "python-socketio": "publish"}
ASGI_SERVERS = ("uvicorn", "daphne")
# What runs a Node app (APPS[...].node): not an ASGI server, so --asgi does not select it.
NODE = "node"
# The order of one round: the pair compared on each ASGI server runs back to back (A B), then
# the floor. Rounds repeat it: A B A B.
CONFIGS = (
    ("channels_sio", "uvicorn"),
    ("python-socketio", "uvicorn"),
    ("channels_sio", "daphne"),
    ("python-socketio", "daphne"),
    ("socket.io", NODE),
    ("raw", "uvicorn"),
    ("raw", "daphne"),
)

# Client parameters per preset and scenario (bench/client/bench.js options, and the runner's:
# RUNNER_OPTIONS). count: round trips (echo, polling), broadcasts (fanout, cluster); clients:
# connections held (connect), spread round-robin over the workers (cluster). Polling keeps
# its HTTP connections alive, as browsers do (socket.io-client's Node default opens a connection
# per request, which costs the client core more than the server: --set polling.keepalive=0),
# and its requests are made by Node's http module (polling-impl "http", bench.js's
# NodeHttpPolling) rather than the XMLHttpRequest emulation, which caps the throughput at the
# load generator's core (--set polling.polling-impl=xhr).
Param = float | str
PRESETS: dict[str, dict[str, dict[str, Param]]] = {
    "full": {
        "echo": {"clients": 50, "count": 250000, "warmup": 20, "window-seconds": 25},
        "polling": {
            "clients": 50,
            "count": 30000,
            "warmup": 4,
            "window-seconds": 25,
            "keepalive": 1,
            "polling-impl": "http",
        },
        "fanout": {"clients": 1000, "count": 250, "warmup": 3, "window-seconds": 25},
        "connect": {"clients": 2000, "warmup": 20, "window-seconds": 25},
        "cluster": {
            "workers": 2,
            "clients": 500,
            "count": 200,
            "warmup": 5,
            "window-seconds": 25,
        },
    },
    "quick": {
        "echo": {"clients": 50, "count": 4000, "warmup": 5, "window-seconds": 10},
        "polling": {
            "clients": 20,
            "count": 1000,
            "warmup": 2,
            "window-seconds": 10,
            "keepalive": 1,
            "polling-impl": "http",
        },
        "fanout": {"clients": 200, "count": 20, "warmup": 2, "window-seconds": 10},
        "connect": {"clients": 200, "warmup": 10, "window-seconds": 10},
        "cluster": {"workers": 2, "clients": 200, "count": 100, "warmup": 3, "window-seconds": 10},
    },
    "smoke": {
        "echo": {"clients": 4, "count": 100, "warmup": 2, "window-seconds": 5},
        "polling": {
            "clients": 3,
            "count": 30,
            "warmup": 1,
            "window-seconds": 5,
            "keepalive": 1,
            "polling-impl": "http",
        },
        "fanout": {"clients": 10, "count": 5, "warmup": 1, "window-seconds": 5},
        "connect": {"clients": 10, "warmup": 2, "window-seconds": 5, "settle-ms": 200},
        "cluster": {"workers": 2, "clients": 6, "count": 5, "warmup": 1, "window-seconds": 5},
    },
}

# The targets: same-run ratio channels_sio / python-socketio on the same ASGI server.
TARGETS = {
    ("echo", "uvicorn"): 2.5,
    ("fanout", "uvicorn"): 2.5,
    ("polling", "uvicorn"): 1.5,
    ("connect", "uvicorn"): 1.3,
    ("echo", "daphne"): 1.8,
}
TARGET_RSS_KB_PER_IDLE_CONN = 28.0
# Scenario-specific columns of the tables: (title, key of the run record and of the summary).
EXTRA_COLUMNS = {
    "connect": (("RSS KB / idle conn", "rss_kb_per_idle_conn"),),
    "cluster": (
        ("Redis commands / broadcast", "redis_commands_per_broadcast"),
        ("layer messages / broadcast", "layer_messages_per_broadcast"),
        ("Redis CPU µs/delivery", "redis_cpu_us_per_unit"),
    ),
}
MIN_ROUNDS_FOR_VERDICT = 3

FLAG_OPTIONS = {"keepalive"}  # bench.js options without a value
RUNNER_OPTIONS = {"workers"}  # parameters of the servers, not of bench.js

SERVER_START_TIMEOUT = 40.0
SERVER_STOP_TIMEOUT = 10.0
CLIENT_SETUP_SECONDS = 60.0  # connecting the clients, warming up, closing: on top of the window


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -------------------------------------------------------------------------------------------
# Processes


_live: dict[int, subprocess.Popen[bytes]] = {}


def _child_setup(cores: set[int] | None) -> Any:
    """preexec_fn of every child: pinned to ``cores``; killed if this process dies."""
    try:
        libc: Any = ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - not Linux
        libc = None

    def setup() -> None:
        if cores:
            os.sched_setaffinity(0, cores)
        if libc is not None:
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return setup


def _terminate(proc: subprocess.Popen[bytes], timeout: float = SERVER_STOP_TIMEOUT) -> int | None:
    """SIGTERM, then SIGKILL after ``timeout``; forgets the process; returns its exit code."""
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    finally:
        _live.pop(proc.pid, None)
    return proc.returncode


def stop_all() -> None:
    for proc in list(_live.values()):
        with contextlib.suppress(Exception):
            _terminate(proc, 3.0)


def _on_signal(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def affinity() -> tuple[set[int] | None, set[int] | None, str]:
    """(server cores, client cores, description); no pinning with fewer than two cores."""
    try:
        available = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return None, None, "not pinned (no sched_setaffinity)"
    if len(available) < 2:
        return None, None, f"not pinned: only core(s) {available} available"
    server, client = (
        (SERVER_CORE, CLIENT_CORE)
        if {SERVER_CORE, CLIENT_CORE} <= set(available)
        else (available[0], available[1])
    )
    return {server}, {client}, f"server on core {server}, client on core {client}"


#: uvicorn's WebSocket implementation: ``websockets-sansio`` is the one uvicorn recommends (its
#: ``websockets`` is the deprecated legacy implementation, which ``--ws auto`` will stop using).
UVICORN_WS = ("websockets-sansio", "websockets", "wsproto")


class Server:
    """One ASGI server process serving one app; ``pid`` is the process the client measures."""

    def __init__(
        self,
        app: App,
        asgi: str,
        cores: set[int] | None,
        log_dir: Path,
        root: Path = ROOT,
        env: dict[str, str] | None = None,
        uvicorn_ws: str = UVICORN_WS[0],
    ) -> None:
        self.app = app
        self.root = root
        self.asgi = asgi
        self.uvicorn_ws = uvicorn_ws
        self.cores = cores
        self.env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{app.name}-{asgi}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self.started = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        if self.app.node:
            return ["node", self.app.target, "--port", str(self.port)]
        if self.asgi == "uvicorn":
            return [
                sys.executable,
                "-m",
                "uvicorn",
                self.app.target,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--ws",
                self.uvicorn_ws,
                "--ws-per-message-deflate",
                "false",
                "--no-access-log",
                "--log-level",
                "warning",
                "--lifespan",
                "on",
            ]
        if self.asgi == "daphne":
            # No access log below verbosity 1; daphne (autobahn) does not negotiate
            # permessage-deflate unless told to, so compression is off as for uvicorn.
            return [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-v",
                "0",
                self.app.target,
            ]
        raise ValueError(f"unknown ASGI server {self.asgi}")

    def start(self, timeout: float = SERVER_START_TIMEOUT) -> float:
        """Start and wait until it answers HTTP; returns the seconds that took."""
        self.spawn()
        return self.wait_ready(self.started + timeout)

    def spawn(self) -> None:
        # REDIS_URL turns the example project into a cluster member: only ``env`` gives it.
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PYTHONASYNCIODEBUG")}
        env.update(self.app.env)
        env.update(self.env)
        # First on the path: the source root's channels_sio wins over the editable install.
        env["PYTHONPATH"] = os.pathsep.join(str(self.root / p) for p in self.app.pythonpath)
        # A Node server's packages are the load generator's (bench/client/package-lock.json).
        env["NODE_PATH"] = str(CLIENT_DIR / "node_modules")
        self.started = time.monotonic()
        with self.log_path.open("wb") as log_file:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.root / self.app.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=_child_setup(self.cores),
            )
        _live[self.proc.pid] = self.proc

    def wait_ready(self, deadline: float) -> float:
        """Wait until it answers HTTP (until ``deadline``, monotonic); seconds since spawn()."""
        assert self.proc is not None
        # Any HTTP answer from the application: an Engine.IO error for an unknown transport
        # (no session is created), or the raw echo's 404.
        path = "/socket.io/?EIO=4&transport=bench-ready" if self.app.socketio else "/"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self} exited at start:\n{self.log_tail()}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", path)
                conn.getresponse().read()
                return time.monotonic() - self.started
            except OSError:
                time.sleep(0.1)
            finally:
                conn.close()
        waited = deadline - self.started
        raise RuntimeError(f"{self} did not answer within {waited:.0f} s:\n{self.log_tail()}")

    def stop(self) -> int | None:
        if self.proc is not None:
            self.exit_code = _terminate(self.proc)
        return self.exit_code

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def __str__(self) -> str:
        return f"{self.app.name}@{self.asgi}"


def ensure_client() -> None:
    if shutil.which("node") is None:
        raise SystemExit("Node.js is required (node on PATH)")
    if not (CLIENT_DIR / "node_modules" / "socket.io-client").is_dir():
        log("installing the load generator's packages: npm ci in bench/client")
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CLIENT_DIR,
            check=True,
            timeout=300,
        )


def run_client(
    scenario: str,
    servers: Sequence[Server],
    params: dict[str, Param],
    cores: set[int] | None,
    redis_url: str | None = None,
) -> dict[str, Any]:
    """Run the load generator once against ``servers`` (one, or the processes of a cluster);
    its JSON result (``ok`` false on error)."""
    client_scenario = scenario if servers[0].app.socketio else "raw-echo"
    window = float(params.get("window-seconds", 25))
    deadline = window + CLIENT_SETUP_SECONDS
    args = [
        "node",
        str(CLIENT_SCRIPT),
        "--scenario",
        client_scenario,
        "--url",
        ",".join(server.url for server in servers),
        "--pid",
        ",".join(str(server.pid) for server in servers),
        "--clk-tck",
        str(os.sysconf("SC_CLK_TCK")),
        "--deadline-seconds",
        str(deadline),
    ]
    if redis_url:
        args += ["--redis-url", redis_url]
    for key, value in params.items():
        if key in RUNNER_OPTIONS:
            continue
        if key in FLAG_OPTIONS:
            args += [f"--{key}"] if value else []
        else:
            args += [f"--{key}", str(value)]
    try:
        proc = subprocess.run(
            args,
            cwd=CLIENT_DIR,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=deadline + 15,
            preexec_fn=_child_setup(cores),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"load generator still running after {deadline + 15} s"}
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {
            "ok": False,
            "error": f"load generator exited {proc.returncode} without a result",
            "stderr": proc.stderr[-2000:],
        }
    if proc.returncode != 0 or proc.stderr.strip():
        result.setdefault("stderr", proc.stderr[-2000:])
    return result


# -------------------------------------------------------------------------------------------
# The run


def configs_for(
    scenario: str, apps: Sequence[str], servers: Sequence[str]
) -> list[tuple[str, str]]:
    chosen = []
    for app, asgi in CONFIGS:
        if app not in apps or (asgi not in servers and not APPS[app].node):
            continue
        if not APPS[app].socketio and scenario != "echo":
            continue
        if scenario == "cluster" and (app not in CLUSTER_APPS or asgi != CLUSTER_ASGI):
            continue
        chosen.append((app, asgi))
    return chosen


def default_redis_url() -> str:
    """The cluster scenario's Redis: REDIS_URL's server (else 127.0.0.1:6379), its own database."""
    base = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379"
    return urlunsplit(urlsplit(base)._replace(path=f"/{CLUSTER_REDIS_DB}"))


@contextlib.contextmanager
def redis_client(url: str) -> Iterator[Any]:
    """A redis-py client, bounded in time; its errors become RuntimeError (a failed run)."""
    import redis  # only the cluster scenario needs it; channels-redis depends on it

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        yield client
    except redis.RedisError as exc:
        raise RuntimeError(f"Redis at {url}: {exc}") from exc
    finally:
        client.close()


def start_servers(servers: Sequence[Server], timeout: float = SERVER_START_TIMEOUT) -> float:
    """Start the servers together and wait until all answer; returns the seconds that took."""
    for server in servers:
        server.spawn()
    deadline = time.monotonic() + timeout
    return max([server.wait_ready(deadline) for server in servers])


def layer_costs(app: str, record: dict[str, Any]) -> dict[str, float]:
    """Redis commands per measured broadcast: all of them, and those carrying a message."""
    broadcasts = record.get("broadcasts") or 0
    commands: dict[str, int] = record.get("redis_commands") or {}
    if not broadcasts:
        return {}
    return {
        "redis_commands_per_broadcast": round(sum(commands.values()) / broadcasts, 2),
        "layer_messages_per_broadcast": round(
            commands.get(LAYER_MESSAGE_COMMAND[app], 0) / broadcasts, 2
        ),
    }


def run_one(
    round_no: int,
    scenario: str,
    app: str,
    asgi: str,
    params: dict[str, Param],
    cores: tuple[set[int] | None, set[int] | None],
    log_dir: Path,
    root: Path = ROOT,
    redis_url: str | None = None,
    uvicorn_ws: str = UVICORN_WS[0],
) -> dict[str, Any]:
    record: dict[str, Any] = {"round": round_no, "scenario": scenario, "app": app, "asgi": asgi}
    cluster_redis = (redis_url or default_redis_url()) if scenario == "cluster" else None
    if cluster_redis:
        record["workers"] = int(params["workers"])
        env = {"REDIS_URL": cluster_redis}
        servers = [
            Server(CLUSTER_APPS[app], asgi, cores[0], log_dir, root, env, uvicorn_ws)
            for _ in range(record["workers"])
        ]
    else:
        servers = [Server(APPS[app], asgi, cores[0], log_dir, root, uvicorn_ws=uvicorn_ws)]
    try:
        if cluster_redis:
            with redis_client(cluster_redis) as client:
                client.flushdb()
        record["server_start_s"] = round(start_servers(servers), 3)
        result = run_client(scenario, servers, params, cores[1], cluster_redis)
        result["client_scenario"] = result.pop("scenario", None)
        record.update({k: v for k, v in result.items() if k not in record})
        if cluster_redis and record.get("ok"):
            record.update(layer_costs(app, record))
    except RuntimeError as exc:
        record.update(ok=False, error=str(exc))
    finally:
        for server in servers:
            server.stop()
        if cluster_redis:
            # Leave nothing behind (the nodes' channels and group).
            with contextlib.suppress(RuntimeError), redis_client(cluster_redis) as client:
                client.flushdb()
    codes = [server.exit_code for server in servers]
    record["server_exit_code"] = next((code for code in codes if code), codes[0])
    with contextlib.suppress(OSError):
        record["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
    if not record.get("ok"):
        record["server_log_tail"] = "\n".join(
            f"== {server.log_path.name}\n{server.log_tail()}" for server in servers
        )
    return record


def describe(record: dict[str, Any]) -> str:
    head = f"round {record['round']} {record['scenario']:8} {record['app']}@{record['asgi']}"
    if not record.get("ok"):
        error = record.get("error") or "; ".join(record.get("errors") or []) or "failed"
        return f"{head}: FAILED {error.splitlines()[0] if error else ''}"
    text = (
        f"{head}: {record['throughput']:.0f} {record['unit']}/s, "
        f"{record['server_cpu_us_per_unit']} µs CPU/{record['unit']}, "
        f"client core {record['client_cpu_util']:.0%}"
    )
    if record.get("other_cpu_util") is not None:
        text += f", other load {record['other_cpu_util']:.2f} cores"
    if record.get("p50_ms") is not None:
        text += f", p50 {record['p50_ms']} ms p99 {record['p99_ms']} ms"
    if record.get("rss_kb_per_idle_conn") is not None:
        text += f", {record['rss_kb_per_idle_conn']} KB RSS/idle conn"
    if record.get("redis_commands_per_broadcast") is not None:
        text += (
            f", {record['workers']} workers, {record['redis_commands_per_broadcast']} Redis "
            f"commands/broadcast ({record['layer_messages_per_broadcast']} layer messages), "
            f"Redis {record['redis_cpu_us_per_unit']} µs CPU/{record['unit']}"
        )
    return text


# What the servers run: copied at the start of a run (see snapshot()).
SOURCE_PARTS = ("channels_sio", "example_project", "bench/__init__.py", "bench/servers")


def snapshot(destination: Path) -> Path:
    """Copy the code under test to ``destination``; the servers of the run import it from there,
    so that edits to the work tree while the benchmark runs do not mix versions in one run."""
    ignore = shutil.ignore_patterns(
        "__pycache__", "*.pyc", "node_modules", "db.sqlite3*", "staticfiles"
    )
    for part in SOURCE_PARTS:
        source, target = ROOT / part, destination / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore)
        else:
            shutil.copy2(source, target)
    return destination


def source_digest(root: Path = ROOT) -> str:
    """A digest of the code under test (channels_sio/, the example project, bench/servers/):
    runs with equal digests measured the same code."""
    digest = hashlib.sha256()
    for part in SOURCE_PARTS:
        base = root / part
        paths = sorted(base.rglob("*.py")) if base.is_dir() else [base]
        for path in paths:
            if "node_modules" in path.parts:
                continue
            with contextlib.suppress(OSError):
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_kb"] = int(line.split()[1])
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["node"] = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    packages = {}
    for name in (
        "channels-sio",
        "django",
        "channels",
        "python-socketio",
        "python-engineio",
        "channels-redis",
        "redis",
        "uvicorn",
        "websockets",
        "uvloop",
        "httptools",
        "daphne",
        "twisted",
        "autobahn",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            packages[name] = metadata.version(name)
    info["packages"] = packages
    with contextlib.suppress(OSError):
        lock = json.loads((CLIENT_DIR / "package-lock.json").read_text())
        for npm_name in ("socket.io-client", "socket.io"):
            info["packages"][f"{npm_name} (npm)"] = lock["packages"][f"node_modules/{npm_name}"][
                "version"
            ]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # never writes the index
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=20,
            env=env,
        ).stdout
        info["git_dirty"] = bool(status.strip())
    with contextlib.suppress(OSError):
        info["loadavg_at_start"] = Path("/proc/loadavg").read_text().split()[:3]
    return info


# -------------------------------------------------------------------------------------------
# Summary


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per scenario and server: median and min-max over the rounds; ratios per round."""
    servers: dict[str, dict[str, Any]] = {}
    ratios: dict[str, dict[str, Any]] = {}
    scenarios = [s for s in SCENARIOS if any(r["scenario"] == s for r in runs)]
    for scenario in scenarios:
        rows = [r for r in runs if r["scenario"] == scenario]
        per_server: dict[str, Any] = {}
        for app, asgi in CONFIGS:
            mine = [r for r in rows if r["app"] == app and r["asgi"] == asgi]
            if not mine:
                continue
            ok = [r for r in mine if r.get("ok")]
            entry: dict[str, Any] = {
                "runs": len(mine),
                "failed": len(mine) - len(ok),
                "unit": UNITS[scenario],
                "throughput": _spread([r["throughput"] for r in ok]),
                "cpu_us_per_unit": _spread(
                    [r["server_cpu_us_per_unit"] for r in ok if r.get("server_cpu_us_per_unit")]
                ),
                "p50_ms": _spread([r["p50_ms"] for r in ok if r.get("p50_ms") is not None]),
                "p99_ms": _spread([r["p99_ms"] for r in ok if r.get("p99_ms") is not None]),
                "client_cpu_util": _spread([r["client_cpu_util"] for r in ok]),
                "other_cpu_util": _spread(
                    [r["other_cpu_util"] for r in ok if r.get("other_cpu_util") is not None]
                ),
            }
            for _, key in EXTRA_COLUMNS.get(scenario, ()):
                entry[key] = _spread([r[key] for r in ok if r.get(key) is not None])
            per_server[f"{app}@{asgi}"] = entry
        servers[scenario] = per_server
        per_asgi: dict[str, Any] = {}
        for asgi in ASGI_SERVERS:
            rounds = sorted({r["round"] for r in rows if r["asgi"] == asgi})
            throughput, cpu = [], []
            for round_no in rounds:
                pair = {
                    r["app"]: r
                    for r in rows
                    if r["asgi"] == asgi and r["round"] == round_no and r.get("ok")
                }
                ours, theirs = pair.get("channels_sio"), pair.get("python-socketio")
                if not ours or not theirs:
                    continue
                throughput.append(round(ours["throughput"] / theirs["throughput"], 3))
                if ours.get("server_cpu_us_per_unit") and theirs.get("server_cpu_us_per_unit"):
                    cpu.append(
                        round(theirs["server_cpu_us_per_unit"] / ours["server_cpu_us_per_unit"], 3)
                    )
            if not throughput:
                continue
            target = TARGETS.get((scenario, asgi))
            met_per_core = met_throughput = None
            if target is not None and len(throughput) >= MIN_ROUNDS_FOR_VERDICT:
                rss_ok = True
                if scenario == "connect":
                    rss = per_server.get(f"channels_sio@{asgi}", {}).get("rss_kb_per_idle_conn")
                    rss_ok = bool(rss) and rss["median"] <= TARGET_RSS_KB_PER_IDLE_CONN
                met_per_core = rss_ok and bool(cpu) and statistics.median(cpu) >= target
                met_throughput = rss_ok and statistics.median(throughput) >= target
            per_asgi[asgi] = {
                "throughput_ratio_per_round": throughput,
                "throughput_ratio": _spread(throughput),
                # python-socketio's CPU per unit over ours: > 1 when channels_sio costs less.
                "cpu_ratio_per_round": cpu,
                "cpu_ratio": _spread(cpu),
                "target": target,
                # Medians over at least 3 rounds (and the RSS, for connect): the traffic one
                # server core carries (CPU per unit), and the throughput of the run.
                "met_per_core": met_per_core,
                "met_throughput": met_throughput,
            }
        if per_asgi:
            ratios[scenario] = per_asgi
    return {"servers": servers, "ratios": ratios}


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(spread: dict[str, float] | None) -> str:
    if not spread:
        return "-"
    if spread["n"] == 1:
        return _fmt(spread["median"])
    return f"{_fmt(spread['median'])} ({_fmt(spread['min'])}-{_fmt(spread['max'])})"


def _target(scenario: str, target: float | None) -> str:
    if target is None:
        return "-"
    if scenario == "connect":
        return f"≥ {target}, ≤ {TARGET_RSS_KB_PER_IDLE_CONN:.0f} KB/conn"
    return f"≥ {target}"


def format_tables(summary: dict[str, Any]) -> str:
    """Markdown tables: one per scenario, then the ratios."""
    out = []
    for scenario, per_server in summary["servers"].items():
        unit = UNITS[scenario]
        extra = EXTRA_COLUMNS.get(scenario, ())
        out.append(f"### {scenario}\n")
        out.append(
            f"| server | {unit}/s | server CPU µs/{unit} | p50 ms | p99 ms | client core "
            f"| other load |" + "".join(f" {title} |" for title, _ in extra)
        )
        out.append("|---|---|---|---|---|---|---|" + "---|" * len(extra))
        for name, entry in per_server.items():
            failed = f" ({entry['failed']} failed)" if entry["failed"] else ""
            row = (
                f"| {name}{failed} | {_cell(entry['throughput'])} | "
                f"{_cell(entry['cpu_us_per_unit'])} | {_cell(entry['p50_ms'])} | "
                f"{_cell(entry['p99_ms'])} | {_cell(entry['client_cpu_util'])} | "
                f"{_cell(entry['other_cpu_util'])} |"
            )
            out.append(row + "".join(f" {_cell(entry.get(key))} |" for _, key in extra))
        out.append("")
    if summary["ratios"]:
        out.append("### channels_sio / python-socketio, same ASGI server, same round\n")
        out.append(
            "| scenario | ASGI server | throughput ratio per round | median | "
            "CPU-per-unit ratio (theirs/ours) per round | median | target | "
            "met: per core / throughput |"
        )
        out.append("|---|---|---|---|---|---|---|---|")
        for scenario, per_asgi in summary["ratios"].items():
            for asgi, entry in per_asgi.items():
                target = entry["target"]
                if entry["met_per_core"] is None:
                    met = "-" if target is None else f"(< {MIN_ROUNDS_FOR_VERDICT} rounds)"
                else:
                    met = " / ".join(
                        "yes" if entry[key] else "no" for key in ("met_per_core", "met_throughput")
                    )
                cpu_median = entry["cpu_ratio"]["median"] if entry["cpu_ratio"] else None
                per_round = ", ".join(f"{v:.2f}" for v in entry["throughput_ratio_per_round"])
                cpu_rounds = ", ".join(f"{v:.2f}" for v in entry["cpu_ratio_per_round"])
                out.append(
                    f"| {scenario} | {asgi} | {per_round} | "
                    f"{entry['throughput_ratio']['median']:.2f} | {cpu_rounds or '-'} | "
                    f"{_fmt(cpu_median)} | {_target(scenario, target)} | {met} |"
                )
        out.append("")
    return "\n".join(out)


# -------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="channels_sio vs python-socketio, side by side (docs/benchmarks.md)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds, A B A B (default 3)")
    parser.add_argument(
        "--quick", action="store_true", help="smaller counts (same as --preset quick)"
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="full")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--apps", nargs="+", choices=list(APPS), default=list(APPS))
    parser.add_argument("--asgi", nargs="+", choices=ASGI_SERVERS, default=list(ASGI_SERVERS))
    parser.add_argument(
        "--uvicorn-ws",
        choices=UVICORN_WS,
        default=UVICORN_WS[0],
        help=f"uvicorn's WebSocket implementation (default {UVICORN_WS[0]})",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SCENARIO.OPTION=VALUE",
        help="override a client parameter, e.g. fanout.clients=500 (bench/client/bench.js)",
    )
    parser.add_argument("--out", type=Path, help="results JSON (default bench/results/...)")
    parser.add_argument(
        "--redis-url",
        default=default_redis_url(),
        help="the cluster scenario's Redis database, flushed before every measurement "
        f"(default: REDIS_URL's server, database {CLUSTER_REDIS_DB})",
    )
    parser.add_argument(
        "--no-snapshot",
        action="store_true",
        help="run the work tree itself, not a copy taken at the start (edits then show mid-run)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.quick:
        args.preset = "quick"
    return args


def _option_value(value: str) -> Param:
    """A number where the text is one; else the text (e.g. polling.polling-impl=fetch)."""
    try:
        return float(value) if "." in value else int(value)
    except ValueError:
        if not value:
            raise
        return value


def scenario_params(preset: str, overrides: Sequence[str]) -> dict[str, dict[str, Param]]:
    params = {scenario: dict(values) for scenario, values in PRESETS[preset].items()}
    for item in overrides:
        try:
            key, value = item.split("=", 1)
            scenario, option = key.split(".", 1)
            params[scenario][option] = _option_value(value)
        except (ValueError, KeyError):
            raise SystemExit(f"--set {item}: expected SCENARIO.OPTION=VALUE") from None
    return params


@contextlib.contextmanager
def cleanup_on_exit() -> Iterator[None]:
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    params = scenario_params(args.preset, args.set)
    ensure_client()
    server_cores, client_cores, pinning = affinity()
    if client_cores:
        # This process mostly waits; keep it off the server's core too.
        os.sched_setaffinity(0, client_cores)
    started = datetime.now(UTC)
    out = args.out or RESULTS_DIR / f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": " ".join(
            ["python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "started": started.isoformat(timespec="seconds"),
        "rounds": args.rounds,
        "preset": args.preset,
        "params": params,
        "pinning": pinning,
        "uvicorn": f"--ws {args.uvicorn_ws} --ws-per-message-deflate false --no-access-log "
        "--log-level warning --lifespan on (loop and http: auto)",
        "daphne": "-v 0 (no access log; permessage-deflate not negotiated)",
        "machine": machine(),
        "snapshot": not args.no_snapshot,
    }
    if "cluster" in args.scenarios:
        try:
            with redis_client(args.redis_url) as client:
                version = client.info("server")["redis_version"]
        except RuntimeError as exc:
            raise SystemExit(
                f"the cluster scenario needs Redis: {exc} (--redis-url, or other --scenarios)"
            ) from None
        meta["cluster"] = {
            "redis_url": args.redis_url,
            "redis_version": version,
            "workers": "cluster.workers uvicorn processes, a port each, all on the server "
            "core; clients round-robin over them, the emitter on the first",
            "layer_message_command": LAYER_MESSAGE_COMMAND,
        }
    runs: list[dict[str, Any]] = []

    def write() -> None:
        document = {"meta": meta, "runs": runs, "summary": summarize(runs)}
        out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")

    log(f"benchmark: {args.rounds} round(s), preset {args.preset}, {pinning}; results -> {out}")
    with cleanup_on_exit(), tempfile.TemporaryDirectory(prefix="csio-bench-") as tmp:
        log_dir = Path(tmp) / "logs"
        log_dir.mkdir()
        root = ROOT if args.no_snapshot else snapshot(Path(tmp) / "src")
        meta["source_digest"] = source_digest(root)
        for round_no in range(1, args.rounds + 1):
            for scenario in args.scenarios:
                for app, asgi in configs_for(scenario, args.apps, args.asgi):
                    record = run_one(
                        round_no,
                        scenario,
                        app,
                        asgi,
                        params[scenario],
                        (server_cores, client_cores),
                        log_dir,
                        root,
                        args.redis_url,
                        args.uvicorn_ws,
                    )
                    runs.append(record)
                    log(describe(record))
                    write()
        meta["source_digest_at_end"] = source_digest(root)
    meta["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    write()
    if meta["source_digest_at_end"] != meta["source_digest"]:
        log("WARNING: the code under test changed while the benchmark ran: rounds mixed versions")
    summary = summarize(runs)
    print(format_tables(summary))
    print(f"results: {out}")
    failed = [r for r in runs if not r.get("ok")]
    if failed:
        log(f"{len(failed)} of {len(runs)} runs failed (see 'error' in the results)")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:
        log(f"interrupted ({exc or 'SIGINT'}): every process it started is stopped")
        sys.exit(130)
