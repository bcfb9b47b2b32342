"""Where a server's time goes under one benchmark scenario: py-spy samples, summed by function.

    python bench/profile_server.py --app channels_sio --asgi uvicorn --scenario echo [--top 25]

Starts one server as bench/run.py does (pinned to core 0), attaches ``py-spy record``
(non-blocking, pinned with the load generator to core 1) for the length of one client run, and
prints the functions with the most samples: "self" (the function was running) and "total" (it
was on the stack). Idle time (the event loop waiting) is not sampled. The collapsed stacks are
kept next to the results (``--stacks``) for a flame graph. Needs py-spy (``pip install py-spy``).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.run import (
    APPS,
    ASGI_SERVERS,
    PRESETS,
    RESULTS_DIR,
    SCENARIOS,
    MonitoringDatabase,
    Server,
    _child_setup,
    _live,
    _terminate,
    affinity,
    default_postgres_url,
    default_redis_url,
    describe,
    ensure_client,
    recovery_database,
    redis_client,
    run_client,
    scenario_params,
    stop_all,
)


def summarize_stacks(path: Path, top: int) -> str:
    """Self and total sample counts per function of py-spy's collapsed (raw) output."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame.split(" (", 1)[0] + _where(frame) for frame in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return "no samples (was the server busy? is py-spy allowed to attach?)"
    lines = [f"{samples} samples (non-idle)", "", "self %  function"]
    lines += [f"{100 * n / samples:6.1f}  {name}" for name, n in own.most_common(top)]
    lines += ["", "total %  function"]
    lines += [f"{100 * n / samples:7.1f}  {name}" for name, n in total.most_common(top)]
    return "\n".join(lines)


def _where(frame: str) -> str:
    # "function (path/to/module.py:123)" -> " (module.py)"; line numbers would split a function.
    if " (" not in frame:
        return ""
    location = frame.split(" (", 1)[1].rstrip(")")
    file = location.rsplit(":", 1)[0]
    parts = Path(file).parts
    return f" ({'/'.join(parts[-2:])})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", choices=list(APPS), default="channels_sio")
    parser.add_argument("--asgi", choices=ASGI_SERVERS, default="uvicorn")
    # One server process: the multi-process cluster scenario is not profiled here.
    single = [scenario for scenario in SCENARIOS if scenario != "cluster"]
    parser.add_argument("--scenario", choices=single, default="echo")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="full")
    parser.add_argument("--rate", type=int, default=500, help="samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--native", action="store_true", help="sample C frames too (py-spy --native; blocking)"
    )
    parser.add_argument("--stacks", type=Path, help="where to keep the collapsed stacks")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SCENARIO.OPTION=VALUE",
        help="override a client parameter, as for bench/run.py (e.g. echo.count=100000)",
    )
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is required: pip install py-spy")
    ensure_client()
    server_cores, client_cores, _ = affinity()
    stacks = args.stacks or RESULTS_DIR / f"profile-{args.app}-{args.asgi}-{args.scenario}.txt"
    stacks.parent.mkdir(parents=True, exist_ok=True)
    params = scenario_params(args.preset, args.set)[args.scenario]
    try:
        with contextlib.ExitStack() as stack:
            log_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="csio-profile-"))
            app = APPS[args.app]
            env = {}
            if app.store == "database":
                # A PostgreSQL database of its own, migrated and dropped, as in run.py.
                database = stack.enter_context(
                    recovery_database("postgres", default_postgres_url(), Path(log_dir))
                )
                env["DATABASE_URL"] = database.url
            elif app.django:
                # Monitoring's registry needs its tables: a migrated SQLite file, as in run.py.
                registry = MonitoringDatabase(Path(log_dir))
                registry.create()
                registry.reset()
                env = registry.env()
            if app.store == "redis":
                env["REDIS_URL"] = default_redis_url()
                with redis_client(env["REDIS_URL"]) as client:
                    client.flushdb()
            server = Server(app, args.asgi, server_cores, Path(log_dir), env=env)
            try:
                server.start()
                command = [py_spy, "record", "--format", "raw"]
                command += ["--native"] if args.native else ["--nonblocking"]
                command += ["--rate", str(args.rate), "--pid", str(server.pid)]
                spy = subprocess.Popen(
                    [*command, "--output", str(stacks)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    preexec_fn=_child_setup(client_cores),
                )
                _live[spy.pid] = spy
                result = run_client(args.scenario, [server], dict(params), client_cores)
                spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
                try:
                    spy.wait(30)
                finally:
                    _terminate(spy, 5)
            finally:
                server.stop()
    finally:
        stop_all()
    record = {"round": 1, "scenario": args.scenario, "app": args.app, "asgi": args.asgi}
    print(describe({**result, **record}) + " (under py-spy)")
    print(f"stacks: {stacks}\n")
    print(summarize_stacks(stacks, args.top))
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
