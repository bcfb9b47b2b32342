"""WebSocket upgrades behind a balancer that is not sticky: ``uvicorn --workers 4``.

    python bench/upgrades.py [--rounds 3] [--workers 4] [--clients 100] [--count 50]

The kernel hands each new connection to any of the workers, so a client's upgrade (a new
connection) reaches the worker that owns its long-polling session one time in four. Each round
runs the example project (``settings_bench_redis``, channels-redis on ``--redis-url``, its
database flushed before every run) under ``uvicorn --workers N`` four ways:

- ``before``: the code of ``--baseline`` (a git revision, exported with ``git archive``), where
  an upgrade that lands elsewhere is refused and its client stays on polling, forwarded;
- ``window 0``: ``upgrade_window`` 0: every upgrade that lands elsewhere is relayed, frame by
  frame, to the session's owner;
- ``window 300``: the default: the worker the upgrade lands on takes the session over (relayed
  only when the upgrade comes after the window);
- ``websocket first``: clients open WebSocket directly, the reference for a socket that never
  polled.

socket.io-client (``bench/client/sessions.js``) opens ``--clients`` connections with its default
transports, counts the transport each ends on, then sends ``--count`` echoes per client, one at a
time, while the workers' CPU time is read: the cost per message of the sockets as they ended.
Prints a table and writes ``bench/results/upgrades-<time>.json``. Only 127.0.0.1 is used; every
process started is stopped on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.launch import ROOT, Uvicorn, pythonpath

CLIENT_DIR = ROOT / "bench" / "client"
RESULTS = ROOT / "bench" / "results"

#: name -> (environment, socket.io-client's transports, run the --baseline code)
CONFIGS = {
    "before": ({}, "polling,websocket", True),
    "window 0": ({"UPGRADE_WINDOW": "0"}, "polling,websocket", False),
    "window 300": ({"UPGRADE_WINDOW": "300"}, "polling,websocket", False),
    "websocket first": ({"UPGRADE_WINDOW": "300"}, "websocket,polling", False),
}


def workers_of(pid: int) -> list[int]:
    """uvicorn's worker processes (multiprocessing's resource tracker is a child too)."""
    workers = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(int(child))
    return workers


def export(rev: str, into: Path) -> Path:
    """The code of git revision ``rev`` (channels_sio and the example project), in ``into``."""
    archive = subprocess.run(
        ["git", "archive", rev, "channels_sio", "example_project"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True, timeout=60)
    return into


@contextlib.contextmanager
def uvicorn(env: dict[str, str], workers: int, root: Path = ROOT) -> Iterator[tuple[str, str]]:
    """The example project of ``root`` under ``uvicorn --workers N`` with ``env``: its URL and
    its workers' pids (comma-separated), once every worker answers and has met the others."""
    server = Uvicorn(
        {**os.environ, "MONITORING": "0", "PYTHONPATH": pythonpath(root), **env},
        ["--workers", str(workers)],
        root=root,
    )

    def ready() -> bool:
        # No session: a handshake without a transport is refused at once.
        httpx.get(server.url + "/socket.io/?EIO=4", timeout=2)
        return workers == 1 or len(workers_of(server.proc.pid)) == workers

    try:
        server.wait_until(ready)
        time.sleep(2)  # every worker's node has met the others
        # One worker: uvicorn serves in its own process.
        pids = workers_of(server.proc.pid) if workers > 1 else [server.proc.pid]
        yield server.url, ",".join(str(pid) for pid in pids)
    finally:
        server.stop()


def sessions(options: dict[str, Any]) -> dict[str, Any]:
    """One run of bench/client/sessions.js with ``options``; its result."""
    options = {**options, "clk-tck": os.sysconf("SC_CLK_TCK")}
    output = subprocess.run(
        ["node", "sessions.js", *(f"--{k}={v}" for k, v in options.items())],
        cwd=CLIENT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = output.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"error": "no output"}
    if not result.get("ok"):
        raise SystemExit(f"sessions.js: {result.get('error')} {output.stderr[-2000:]}")
    return dict(result)


def write_results(name: str, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Write the run to ``bench/results/<name>-<time>.json`` and say where."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    print(f"\nwritten to {out.relative_to(ROOT)}")


def run(config: str, args: argparse.Namespace, baseline: Path) -> dict[str, Any]:
    env_extra, transports, from_baseline = CONFIGS[config]
    redis.Redis.from_url(args.redis_url).flushdb()
    env = {
        **env_extra,
        "DJANGO_SETTINGS_MODULE": "example_project.settings_bench_redis",
        "REDIS_URL": args.redis_url,
    }
    with uvicorn(env, args.workers, baseline if from_baseline else ROOT) as (url, pids):
        return sessions(
            {
                "url": url,
                "clients": args.clients,
                "count": args.count,
                "transports": transports,
                "pids": pids,
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    # The baseline's forwarded polls fill channels-redis's default channel capacity (100) with
    # more clients than this.
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11"),
    )
    parser.add_argument(
        "--baseline",
        default="cd2682e",
        help="the git revision of 'before' (default: main before any worker took upgrades)",
    )
    args = parser.parse_args()
    if not (CLIENT_DIR / "node_modules" / "socket.io-client").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=CLIENT_DIR, check=True)
    results: dict[str, list[dict[str, Any]]] = {config: [] for config in CONFIGS}
    with tempfile.TemporaryDirectory(prefix="bench-upgrades-") as tmp:
        baseline = export(args.baseline, Path(tmp))
        for round_ in range(args.rounds):
            for config in CONFIGS:
                result = run(config, args, baseline)
                results[config].append(result)
                print(
                    f"round {round_ + 1} {config}: {result['websocket']}/{result['clients']} "
                    f"on WebSocket, {result['cpu_us_per_message']:.0f} µs CPU per echo",
                    flush=True,
                )
    print(f"\n{args.workers} workers, {args.clients} clients, medians of {args.rounds} rounds")
    print(f"{'':18}{'on WebSocket':>14}{'CPU per echo':>16}{'vs websocket first':>20}")
    reference = statistics.median(r["cpu_us_per_message"] for r in results["websocket first"])
    for config, rounds in results.items():
        share = statistics.median(r["websocket"] / r["clients"] for r in rounds)
        cpu = statistics.median(r["cpu_us_per_message"] for r in rounds)
        print(f"{config:18}{share:>13.0%}{cpu:>13.0f} µs{cpu / reference:>19.2f}x")
    write_results("upgrades", args, results)


if __name__ == "__main__":
    main()
