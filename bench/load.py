"""Load and churn: many clients on one worker, a churn soak, a mass disconnect on Redis.

    python bench/load.py concurrent --transport websocket --clients 5000
    python bench/load.py concurrent --transport polling --clients 2000
    python bench/load.py soak --minutes 10
    python bench/load.py mass-disconnect --clients 1000

The server is the example project under uvicorn, one process per worker, with
``example_project.settings_load`` (settings_bench's handlers and default timings, monitoring on
with a migrated SQLite file of the run, plus ``GET /_load/stats/`` of example_project/load.py:
RSS, event-loop lag, and the size of every table the server keeps). The clients are the
official socket.io-client on Node (``bench/client/load.js``).

- ``concurrent``: after a warm-up, ``--clients`` clients connect over one transport and stay;
  a broadcast must reach every one, again after ``--hold-seconds`` (heartbeats meanwhile), and
  none may drop. Reports the server's RSS per connection and the loop lag.
- ``soak``: ``--clients`` clients each loop connect, join a room, echo with an
  acknowledgement, broadcast to the room, disconnect, for ``--minutes``, cycling through
  WebSocket, polling and polling upgraded to WebSocket. RSS is sampled every 10 s; after
  ``--warmup-minutes`` it may grow by ``--max-growth`` at most. Reports the loop lag.
- ``mass-disconnect``: ``--processes`` servers on channels-redis (``--redis-url``, a database
  of its own, flushed first); ``--clients`` clients over both, mixed transports, each in a
  room, all disconnect at once: closed by the clients, then (connected again) disconnected by
  the server (``disconnect_sockets`` from one process reaches all). Every Redis key left must
  have an expiry.

Every run also fails unless, at its end, every table of every server is as it was before the
first client (sessions, clients, sockets, rooms, acknowledgements, tasks, cluster requests) and
the monitoring registry holds no session, and unless the servers logged no error. Prints the
result and writes it to ``bench/results/load-<command>-<time>.json``; exits 1 on a failure.
Only 127.0.0.1 is used; every process started is stopped on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.launch import ROOT, Uvicorn, pythonpath

EXAMPLE_DIR = ROOT / "example_project"
CLIENT_DIR = ROOT / "bench" / "client"
RESULTS = ROOT / "bench" / "results"
SETTINGS = "example_project.settings_load"
#: A log line that reports an error (tests/support/servers.py's rule: channels_sio's
#: "transport error" is a close reason, in lower case).
ERROR_LINE = re.compile(r"Traceback|ERROR|CRITICAL|Exception|\b[A-Z]\w*Error\b")


def raise_fd_limit() -> int:
    """The soft limit on open files raised to the hard one, for this process and its children
    (thousands of sockets on each side); the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Server(Uvicorn):
    """One uvicorn process of settings_load, its log in ``workdir``."""

    def __init__(self, workdir: Path, env: dict[str, str], uvicorn_args: Sequence[str]) -> None:
        super().__init__(env, ["--lifespan", "on", *uvicorn_args], log_dir=workdir)

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.wait_until(
            lambda: httpx.get(self.url + "/_load/stats/", timeout=2).status_code == 200, timeout
        )

    def stats(self, reset: bool = False) -> dict[str, Any]:
        response = httpx.get(
            self.url + "/_load/stats/", params={"reset": "1"} if reset else None, timeout=30
        )
        response.raise_for_status()
        return dict(response.json())

    def rss_kb(self) -> int:
        match = re.search(
            r"^VmRSS:\s+(\d+)", Path(f"/proc/{self.proc.pid}/status").read_text(), re.M
        )
        return int(match.group(1)) if match else 0

    def errors(self) -> list[str]:
        return [line for line in self.log().splitlines() if ERROR_LINE.search(line)]


@contextlib.contextmanager
def servers(
    args: argparse.Namespace, count: int, extra_env: dict[str, str] | None = None
) -> Iterator[list[Server]]:
    """``count`` started servers sharing a migrated SQLite file (monitoring's registry), and
    ``extra_env`` (REDIS_URL makes them one Socket.IO server), with the uvicorn flags of
    ``args``; stopped afterwards."""
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        workdir = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RECOVERY_STORE")}
        env.update(
            DJANGO_SETTINGS_MODULE=SETTINGS,
            EXAMPLE_DB=str(workdir / "load.sqlite3"),
            MONITORING="1",
            PYTHONPATH=pythonpath(),
            **(extra_env or {}),
        )
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=EXAMPLE_DIR,
            env=env,
            check=True,
            timeout=120,
        )
        started: list[Server] = []
        try:
            for _ in range(count):
                started.append(Server(workdir, env, uvicorn_flags(args)))
            for server in started:
                server.wait_ready()
            if count > 1:
                wait_for(
                    lambda: all(s.stats()["peers"] == count - 1 for s in started),
                    30,
                    "the servers know each other",
                )
            yield started
        finally:
            for server in started:
                server.stop()


def uvicorn_flags(args: argparse.Namespace) -> list[str]:
    return ["--ws", args.ws, "--ws-per-message-deflate", args.ws_per_message_deflate]


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out: {what}")
        time.sleep(0.2)


def node(mode: str, timeout: float, **options: Any) -> dict[str, Any]:
    """``bench/client/load.js --mode mode`` with ``options``; its JSON result."""
    if not (CLIENT_DIR / "node_modules" / "socket.io-client").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=CLIENT_DIR, check=True)
    args = [f"--{name.replace('_', '-')}={value}" for name, value in options.items()]
    proc = subprocess.run(
        ["node", "load.js", f"--mode={mode}", f"--deadline-seconds={int(timeout)}", *args],
        cwd=CLIENT_DIR,
        capture_output=True,
        text=True,
        timeout=timeout + 30,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"load.js printed nothing (exit {proc.returncode}):\n{proc.stderr}")
    result = json.loads(lines[-1])
    if not result.get("ok"):
        raise RuntimeError(f"load.js failed: {result.get('error')}\n{proc.stderr[-3000:]}")
    return dict(result)


def leftovers(servers_: Sequence[Server], before: Sequence[dict[str, Any]]) -> list[str]:
    """What any server still holds compared with ``before`` (its stats before the first
    client), once the tables settle (a poll or close may still be on its way) and monitoring
    has flushed; empty when nothing is left."""
    problems: list[str] = []
    flush_interval = float(os.environ.get("FLUSH_INTERVAL", "5000")) / 1000
    deadline = time.monotonic() + 3 * flush_interval
    while True:
        problems = []
        for server, then in zip(servers_, before, strict=True):
            now = server.stats()
            for name, value in now["tables"].items():
                if value != then["tables"][name]:
                    problems.append(
                        f"{server.url}: {name} {value} (before: {then['tables'][name]})"
                    )
            if now["asyncio_tasks"] != then["asyncio_tasks"]:
                problems.append(
                    f"{server.url}: {now['asyncio_tasks']} asyncio tasks "
                    f"(before: {then['asyncio_tasks']})"
                )
            registry = now["registry"] or {}
            problems += [
                f"{server.url}: {count} {what} in the registry"
                for what, count in registry.items()
                if count
            ]
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(0.5)


def logged_errors(servers_: Sequence[Server]) -> list[str]:
    return [f"{server.url}: {line}" for server in servers_ for line in server.errors()]


def kb_per(delta_kb: float, count: int) -> float:
    return round(delta_kb / max(count, 1), 1)


def concurrent(args: argparse.Namespace) -> dict[str, Any]:
    with servers(args, 1) as (server,):
        idle = server.stats()
        result = node(
            "concurrent",
            args.deadline,
            url=server.url,
            clients=args.clients,
            transport=args.transport,
            concurrency=args.concurrency,
            hold_seconds=args.hold_seconds,
            warmup=args.warmup,
        )
        failures = leftovers([server], [idle]) + logged_errors([server])
    before, connected, held = result.pop("before"), result.pop("connected"), result.pop("held")
    for broadcast in result["broadcasts"]:
        if broadcast["received"] != args.clients:
            failures.append(f"a broadcast reached {broadcast['received']} of {args.clients}")
    if result["alive"] != args.clients:
        failures.append(f"{args.clients - result['alive']} clients dropped")
    dropped = {
        reason: n for reason, n in result["disconnects"].items() if reason != "io client disconnect"
    }
    if dropped:
        failures.append(f"disconnects: {dropped}")
    if connected["tables"]["engine_sessions"] != args.clients:
        failures.append(f"the server held {connected['tables']['engine_sessions']} sessions")
    return {
        "clients": args.clients,
        "transport": args.transport,
        "connects_per_second": round(result["connects_per_second"]),
        "broadcasts": result["broadcasts"],
        "rss_kb": {
            "before": before["rss_kb"],
            "connected": connected["rss_kb"],
            "held": held["rss_kb"],
        },
        "rss_kb_per_connection": {
            "connected": kb_per(connected["rss_kb"] - before["rss_kb"], args.clients),
            "held": kb_per(held["rss_kb"] - before["rss_kb"], args.clients),
        },
        # The window of the hold: the broadcasts and heartbeats, not the connects.
        "loop_lag_hold": held["loop_lag"],
        "loop_lag_connects": connected["loop_lag"],
        "ms_to_empty": result["ms_to_empty"],
        "failures": failures,
    }


def soak(args: argparse.Namespace) -> dict[str, Any]:
    seconds = round(args.minutes * 60)
    with servers(args, 1) as (server,):
        idle = server.stats(reset=True)
        client = subprocess.Popen(
            [
                "node",
                "load.js",
                "--mode=churn",
                f"--url={server.url}",
                f"--clients={args.clients}",
                f"--seconds={seconds}",
                f"--deadline-seconds={seconds + 120}",
            ],
            cwd=CLIENT_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        start = time.monotonic()
        samples: list[tuple[float, int]] = []
        try:
            while client.poll() is None:
                samples.append((round(time.monotonic() - start, 1), server.rss_kb()))
                time.sleep(
                    min(args.sample_seconds, max(0.1, seconds + 1 - (time.monotonic() - start)))
                )
            stdout, stderr = client.communicate(timeout=60)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        lines = stdout.strip().splitlines()
        result: dict[str, Any] = (
            json.loads(lines[-1]) if lines else {"ok": False, "error": stderr[-3000:]}
        )
        if not result.get("ok"):
            raise RuntimeError(f"load.js failed: {result.get('error')}\n{stderr[-3000:]}")
        end = server.stats()
        failures = leftovers([server], [idle]) + logged_errors([server])
    warm = [(t, kb) for t, kb in samples if t >= args.warmup_minutes * 60 and t <= seconds]
    if len(warm) < 2:
        raise RuntimeError(f"too few RSS samples after the warm-up: {len(warm)}")
    # A few samples at each end, so that one collection's timing does not decide.
    edge = max(1, min(3, len(warm) // 4))
    first = statistics.median(kb for _, kb in warm[:edge])
    last = statistics.median(kb for _, kb in warm[-edge:])
    growth = last / first - 1
    if growth > args.max_growth:
        failures.append(f"RSS grew {growth:.1%} after the warm-up (at most {args.max_growth:.0%})")
    if result["failures"]:
        failures.append(f"client cycles failed: {result['failures']}")
    cycles = sum(result["cycles"].values())
    return {
        "clients": args.clients,
        "minutes": args.minutes,
        "cycles": result["cycles"],
        "cycles_per_second": round(cycles / seconds, 1),
        "rss_kb": {
            "idle": idle["rss_kb"],
            "after_warmup": first,
            "end": last,
            "max": max(kb for _, kb in samples),
        },
        "rss_growth_after_warmup": round(growth, 4),
        "loop_lag": end["loop_lag"],
        "client_failures": result["failures"],
        "disconnects": result["disconnects"],
        "ms_to_empty": result["ms_to_empty"],
        "rss_samples": samples,
        "failures": failures,
    }


def redis_keys(url: str) -> dict[str, int]:
    """Every key of the Redis database at ``url`` and its TTL in seconds (-1: none)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return {key.decode(): int(client.ttl(key)) for key in client.scan_iter(count=1000)}
    finally:
        client.close()


def mass_disconnect(args: argparse.Namespace) -> dict[str, Any]:
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    rounds: dict[str, Any] = {}
    failures: list[str] = []
    with servers(args, args.processes, {"REDIS_URL": args.redis_url}) as started:
        idle = [server.stats() for server in started]
        urls = ",".join(server.url for server in started)
        for close, reason in (
            ("client", "io client disconnect"),
            ("server", "io server disconnect"),
        ):
            result = node(
                "mass",
                args.deadline,
                url=urls,
                clients=args.clients,
                close=close,
                concurrency=args.concurrency,
            )
            if sum(result["sessions_per_server"]) != args.clients:
                failures.append(
                    f"{close}: the servers held {result['sessions_per_server']} sessions"
                )
            if result["still_connected"] or result["disconnects"] != {reason: args.clients}:
                failures.append(f"{close}: disconnects {result['disconnects']}")
            failures += [f"{close}: {problem}" for problem in leftovers(started, idle)]
            rounds[close] = {
                key: result[key]
                for key in ("sessions_per_server", "ms_to_disconnected", "ms_to_empty")
            }
        failures += logged_errors(started)
        keys = redis_keys(args.redis_url)
    failures += [f"Redis key {key} has no expiry" for key, ttl in keys.items() if ttl == -1]
    return {
        "clients": args.clients,
        "processes": args.processes,
        "rounds": rounds,
        "redis_keys": keys,
        "failures": failures,
    }


COMMANDS = {"concurrent": concurrent, "soak": soak, "mass-disconnect": mass_disconnect}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("concurrent", help="many clients at once on one worker")
    one.add_argument("--transport", choices=("websocket", "polling"), default="websocket")
    one.add_argument("--clients", type=int, default=5000)
    one.add_argument("--hold-seconds", type=float, default=30)
    one.add_argument("--warmup", type=int, default=100, help="clients before the measurement")
    one.add_argument("--concurrency", type=int, default=100, help="handshakes at once")
    one.add_argument("--deadline", type=float, default=600, help="seconds for the whole run")
    churn = sub.add_parser("soak", help="connect, join, emit, disconnect in a loop")
    churn.add_argument("--minutes", type=float, default=10)
    churn.add_argument("--warmup-minutes", type=float, default=2)
    churn.add_argument("--clients", type=int, default=200, help="clients cycling at once")
    churn.add_argument("--sample-seconds", type=float, default=10)
    churn.add_argument("--max-growth", type=float, default=0.10)
    mass = sub.add_parser("mass-disconnect", help="every client gone at once, on Redis")
    mass.add_argument("--clients", type=int, default=1000)
    mass.add_argument("--processes", type=int, default=2)
    mass.add_argument("--concurrency", type=int, default=100, help="handshakes at once")
    mass.add_argument("--deadline", type=float, default=300, help="seconds for each round")
    mass.add_argument(
        "--redis-url",
        default=os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379/12"),
        help="a database of its own: it is flushed",
    )
    parser.add_argument("--out", type=Path, help="the JSON result (default: bench/results/)")
    # uvicorn's own defaults: what `uvicorn project.asgi:application` runs.
    parser.add_argument(
        "--ws", choices=("auto", "websockets", "websockets-sansio", "wsproto"), default="auto"
    )
    parser.add_argument("--ws-per-message-deflate", choices=("true", "false"), default="true")
    return parser


def run(argv: Sequence[str]) -> dict[str, Any]:
    """Run the command of ``argv`` (as on the command line); its result."""
    if shutil.which("node") is None:
        raise RuntimeError("Node.js is needed (bench/client/load.js)")
    args = parser().parse_args(argv)
    result = COMMANDS[args.command](args)
    return {
        "command": args.command,
        "machine": machine(),
        "uvicorn": uvicorn_flags(args),
        **result,
    }


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
    }


def main() -> None:
    args = parser().parse_args()
    result = run(sys.argv[1:])
    shown = {k: v for k, v in result.items() if k != "rss_samples"}
    print(json.dumps(shown, indent=1))
    out = args.out or RESULTS / f"load-{args.command}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"written to {out}")
    if result["failures"]:
        print("FAILED:\n  " + "\n  ".join(result["failures"]), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
