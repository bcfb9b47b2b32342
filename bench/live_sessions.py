"""What keeping live sessions costs: ``persist_live_sessions`` on against off.

    python bench/live_sessions.py [--rounds 3] [--clients 500] [--joins 4]

With connection state recovery's ``persist_live_sessions``, every socket's session is written
to the store when it connects and when it joins or leaves a room (grouped), so that its client
recovers on another worker if this one dies. Each round runs the example project
(``settings_bench``, one uvicorn worker, monitoring off) with the Redis store (``--redis-url``,
flushed before every run) and with the database store on PostgreSQL (``--postgres-url``: a
database created, migrated and emptied before every run, dropped at the end), each with the
setting off and on. socket.io-client (``bench/client/sessions.js``) opens ``--clients``
WebSocket connections, ten at a time, and each joins ``--joins`` rooms, one at a time, with an
acknowledgement; the server's CPU time is read from before the first connection to one second
after the last join (the grouped writes included). Prints the CPU per client and the ratio on /
off per store; writes ``bench/results/live-sessions-<time>.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import RecoveryDatabase, default_postgres_url
from bench.upgrades import sessions, uvicorn, write_results

STORES = ("redis", "database")


def run(store: str, live: bool, args: argparse.Namespace, database: RecoveryDatabase) -> float:
    env = {
        "DJANGO_SETTINGS_MODULE": "example_project.settings_bench",
        "RECOVERY_STORE": store,
        "PERSIST_LIVE_SESSIONS": "1" if live else "0",
        "REDIS_URL": args.redis_url,
    }
    if store == "redis":
        redis.Redis.from_url(args.redis_url).flushdb()
    else:
        database.reset()
        env["DATABASE_URL"] = database.url
    with uvicorn(env, 1) as (url, pids):
        result = sessions(
            {
                "url": url,
                "clients": args.clients,
                "count": args.joins,
                "event": "join",
                "transports": "websocket",
                "window": "all",
                "settle-ms": 1000,
                "pids": pids,
            }
        )
    return float(result["cpu_us_per_client"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--joins", type=int, default=4)
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
    )
    parser.add_argument("--postgres-url", default=default_postgres_url())
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        database = RecoveryDatabase("postgres", args.postgres_url, Path(tmp))
        database.create()
        try:
            for round_ in range(args.rounds):
                for store in STORES:
                    for live in (False, True):
                        name = f"{store} {'on' if live else 'off'}"
                        cpu = run(store, live, args, database)
                        results.setdefault(name, []).append(cpu)
                        print(f"round {round_ + 1} {name}: {cpu:.0f} µs CPU per client", flush=True)
        finally:
            database.drop()
    print(f"\n{args.clients} clients, {args.joins} joins each, medians of {args.rounds} rounds")
    print(f"{'':10}{'off':>12}{'on':>12}{'on / off':>10}   per round")
    for store in STORES:
        off, on = results[f"{store} off"], results[f"{store} on"]
        ratios = [b / a for a, b in zip(off, on, strict=True)]
        per_round = ", ".join(f"{r:.2f}" for r in ratios)
        print(
            f"{store:10}{statistics.median(off):>9.0f} µs{statistics.median(on):>9.0f} µs"
            f"{statistics.median(ratios):>10.2f}   ({per_round})"
        )
    write_results("live-sessions", args, results)


if __name__ == "__main__":
    main()
