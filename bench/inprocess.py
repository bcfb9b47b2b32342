"""channels_sio's own cost per round trip, in one process, with no ASGI server or client.

    python bench/inprocess.py echo [--count N]          # wall time per acknowledged round trip
    python bench/inprocess.py polling --callgrind       # CPU instructions per round trip
    python bench/inprocess.py echo --floor --callgrind  # the harness alone
    python bench/inprocess.py echo-emit --recovery --callgrind  # echo sent back by socket.emit,
                                                        # recorded (memory store)
    python bench/inprocess.py echo-emit --recovery redis --clients 50 --callgrind
                                                        # recorded in Redis, 50 clients
    python bench/inprocess.py echo-emit --recovery database --clients 50 --callgrind
                                                        # recorded in PostgreSQL (a database
                                                        # of the run's own, dropped after)

The whole ASGI application (``get_application`` with the benchmark handlers) is called the way
an ASGI server calls it, by in-memory ``receive``/``send`` pairs: ``echo`` sends
``emitWithAck("echo", ...)`` frames over one WebSocket and waits for each acknowledgement;
``polling`` keeps a GET waiting, POSTs the same event and waits for the GET to return the
acknowledgement. What is measured is therefore channels_sio, Channels and Django's settings,
plus these in-memory queues (the same for every version of the code).

``--floor`` runs the echo scenario against a hand-written ASGI app that answers the same
frames, so that the harness's own share can be subtracted.

Wall time on a shared VM moves by tens of percent. ``--callgrind`` runs the scenario twice
under ``valgrind --tool=callgrind`` (``count`` and ``count * 6`` round trips) and prints the
difference in instructions per round trip, with the hash seed fixed (``PYTHONHASHSEED=0``: a
random seed lays dicts out differently, which moved the count by up to 0.7k between runs): the
same number on every run of the same code (the Redis and database stores' batches follow their
round trips, which moves their count by about 0.1%), so it shows changes of 1%. It takes about a
minute. Not a test and not a benchmark against anything: a tool for tuning (see
docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVENT = '42%d["echo",{"i":%d,"text":"hello world, this is a benchmark message"}]'
EMIT_EVENT = '42["echo_emit",{"i":%d,"text":"hello world, this is a benchmark message"}]'
HEADERS = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"node"), (b"accept", b"*/*")]
#: The migrated PostgreSQL database of ``--recovery database``, made by ``main`` and passed on
#: to the runs under valgrind.
DATABASE_ENV = "INPROCESS_DATABASE_URL"


def _store(recovery: str) -> Any:
    """The recovery store for ``--recovery``: ``memory``; ``database`` on the run's PostgreSQL
    database (``main`` makes it); or ``redis`` on ``INPROCESS_REDIS_URL`` (default database 5),
    under a prefix of the run's own."""
    from channels_sio.recovery import MemoryStore

    if recovery == "memory":
        return MemoryStore()
    if recovery == "database":
        from channels_sio.recovery.database import DatabaseStore

        return DatabaseStore()
    from channels_sio.recovery.redis import RedisStore

    url = os.environ.get("INPROCESS_REDIS_URL", "redis://127.0.0.1:6379/5")
    return RedisStore(url=url, prefix=f"csio-inprocess-{os.getpid()}", max_len=1000)


def _application(recovery: str | None = None) -> Any:
    sys.path[:0] = [str(ROOT), str(ROOT / "example_project")]
    os.environ["DJANGO_SETTINGS_MODULE"] = "example_project.settings_bench"
    os.environ.pop("REDIS_URL", None)
    if recovery == "database":
        os.environ["DATABASE_URL"] = os.environ[DATABASE_ENV]
        # Monitoring's registry would be written there too, every 5 s: not what is measured.
        os.environ["MONITORING"] = "0"
    from django.core.asgi import get_asgi_application

    django_app = get_asgi_application()
    from channels_sio.asgi import get_application
    from channels_sio.recovery import ConnectionStateRecovery
    from channels_sio.socketio import ServerConfig, SocketIOServer

    config = ServerConfig(recovery=ConnectionStateRecovery(_store(recovery)) if recovery else None)
    server = SocketIOServer(config)

    @server.on("echo")
    async def echo(socket: Any, *args: Any) -> tuple[Any, ...]:
        return args

    @server.on("echo_emit")
    async def echo_emit(socket: Any, *args: Any) -> None:
        await socket.emit("echo", *args)

    return get_application(django_app, server=server)


async def _floor(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The echo scenario's answers written by hand: what the harness itself costs."""
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": '0{"sid":"floor"}'})
        elif kind == "websocket.receive":
            text = message["text"]
            if text == "40":
                await send({"type": "websocket.send", "text": '40{"sid":"floor"}'})
            else:
                await send({"type": "websocket.send", "text": f"43{text[2 : text.index('[')]}[]"})
        else:
            return


def _scope(kind: str, method: str, query: str, body: bool = False) -> dict[str, Any]:
    headers = HEADERS + ([(b"content-type", b"text/plain;charset=UTF-8")] if body else [])
    return {
        "type": kind,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http" if kind == "http" else "ws",
        "path": "/socket.io/",
        "raw_path": b"/socket.io/",
        "root_path": "",
        "query_string": query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


Queues = tuple[asyncio.Queue[dict[str, Any]], asyncio.Queue[dict[str, Any]], asyncio.Task[None]]


async def _connected(app: Any) -> Queues:
    """One WebSocket joined to ``/``: its inbox, its outbox, and the task serving it."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(message: dict[str, Any]) -> None:
        outbox.put_nowait(message)

    connection = asyncio.create_task(
        app(_scope("websocket", "GET", "EIO=4&transport=websocket"), inbox.get, send)
    )
    inbox.put_nowait({"type": "websocket.connect"})
    await outbox.get()  # accept
    await outbox.get()  # Engine.IO open
    inbox.put_nowait({"type": "websocket.receive", "text": "40"})
    await outbox.get()  # Socket.IO CONNECT
    return inbox, outbox, connection


async def _echo(app: Any, count: int) -> float:
    inbox, outbox, connection = await _connected(app)
    started = time.perf_counter()
    for i in range(count):
        inbox.put_nowait({"type": "websocket.receive", "text": EVENT % (i, i)})
        reply = await outbox.get()
        assert reply["text"].startswith(f"43{i}["), reply
    elapsed = time.perf_counter() - started
    inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await connection
    return elapsed


async def _echo_emit(app: Any, count: int, clients: int = 1, recorded: bool = False) -> float:
    """As echo, but the server answers with ``socket.emit("echo", ...)``: recorded with
    connection state recovery on (``--recovery``, ``recorded``: each answer must then end with
    its offset), where an acknowledgement never is. ``clients`` connections take turns, each
    waiting for its answer, as the benchmark's do: the recovery store groups their concurrent
    writes."""
    end = '"]' if recorded else "}]"  # the offset, a string, or the data
    connected = [await _connected(app) for _ in range(clients)]

    async def one(inbox: Any, outbox: Any, turns: int) -> None:
        for i in range(turns):
            inbox.put_nowait({"type": "websocket.receive", "text": EMIT_EVENT % i})
            reply = await outbox.get()
            text = reply["text"]
            assert text.startswith('42["echo",'), reply
            assert text.endswith(end), reply

    started = time.perf_counter()
    await asyncio.gather(*(one(inbox, outbox, count // clients) for inbox, outbox, _ in connected))
    elapsed = time.perf_counter() - started
    for inbox, _, connection in connected:
        inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await connection
    return elapsed


_requests: set[asyncio.Task[None]] = set()


async def _request(app: Any, method: str, query: str, body: bytes = b"") -> asyncio.Future[bytes]:
    """Start one HTTP request; the future is its response body. The client never hangs up."""
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[bytes] = loop.create_future()
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    never: asyncio.Future[dict[str, Any]] = loop.create_future()

    async def receive() -> dict[str, Any]:
        return pending.pop() if pending else await never

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and not answered.done():
            answered.set_result(message["body"])

    task = asyncio.create_task(app(_scope("http", method, query, bool(body)), receive, send))
    _requests.add(task)
    task.add_done_callback(_requests.discard)
    return answered


async def _polling(app: Any, count: int) -> float:
    opened = await (await _request(app, "GET", "EIO=4&transport=polling"))
    query = f"EIO=4&transport=polling&sid={json.loads(opened[1:])['sid']}"
    assert await (await _request(app, "POST", query, b"40")) == b"ok"
    await (await _request(app, "GET", query))  # the CONNECT reply
    started = time.perf_counter()
    for i in range(count):
        poll = await _request(app, "GET", query)
        await asyncio.sleep(0)  # the GET is waiting before the POST arrives, as in a browser
        assert await (await _request(app, "POST", query, (EVENT % (i, i)).encode())) == b"ok"
        reply = await poll
        assert reply.startswith(f"43{i}[".encode()), reply
    return time.perf_counter() - started


SCENARIOS = {"echo": _echo, "echo-emit": _echo_emit, "polling": _polling}


def _run(
    scenario: str,
    count: int,
    floor: bool = False,
    recovery: str | None = None,
    clients: int = 1,
) -> float:
    app = _floor if floor else _application(recovery)
    run = SCENARIOS[scenario]
    main = (
        run(app, count, clients, recovery is not None)
        if scenario == "echo-emit"
        else run(app, count)
    )
    try:
        try:
            import uvloop

            return uvloop.run(main)
        except ImportError:
            return asyncio.run(main)
    finally:
        if recovery == "redis":
            _drop_redis_keys()


def _drop_redis_keys() -> None:
    import redis

    url = os.environ.get("INPROCESS_REDIS_URL", "redis://127.0.0.1:6379/5")
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"csio-inprocess-{os.getpid()}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def _instructions(
    scenario: str,
    count: int,
    out_dir: Path,
    floor: bool,
    recovery: str | None = None,
    clients: int = 1,
) -> int:
    out = out_dir / f"callgrind.{count}"
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            scenario,
            "--count",
            str(count),
            "--clients",
            str(clients),
            *(["--floor"] if floor else []),
            *(["--recovery", recovery] if recovery else []),
        ],
        check=True,
        capture_output=True,
        timeout=900,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    totals = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    assert totals is not None, f"no totals in {out}"
    return int(totals[1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--count", type=int, default=None, help="round trips (default 20000)")
    parser.add_argument(
        "--callgrind", action="store_true", help="instructions per round trip under valgrind"
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="echo against a hand-written ASGI app instead: what the harness itself costs",
    )
    parser.add_argument(
        "--recovery",
        nargs="?",
        const="memory",
        choices=["memory", "redis", "database"],
        help="connection state recovery on, with this store (default memory; redis: "
        "INPROCESS_REDIS_URL, default redis://127.0.0.1:6379/5; database: a database of the "
        "run's own on the PostgreSQL server of CSIO_POSTGRES_URL, default the local one)",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=1,
        help="echo-emit: connections taking turns, each waiting for its answer (default 1)",
    )
    args = parser.parse_args(argv)
    if args.callgrind and shutil.which("valgrind") is None:
        parser.error("--callgrind needs valgrind (Debian: apt-get install valgrind)")
    if args.floor and args.scenario != "echo":
        parser.error("--floor is for the echo scenario")
    if args.clients != 1 and args.scenario != "echo-emit":
        parser.error("--clients is for the echo-emit scenario")
    if args.recovery == "database" and DATABASE_ENV not in os.environ:
        with _database() as url:
            os.environ[DATABASE_ENV] = url
            return _measure(args)
    return _measure(args)


@contextlib.contextmanager
def _database() -> Iterator[str]:
    """A migrated PostgreSQL database of the run's own (bench/run.py's, as its
    ``channels_sio+database`` rows have), dropped at the end."""
    sys.path.insert(0, str(ROOT))
    from bench.run import RecoveryDatabase, default_postgres_url

    with tempfile.TemporaryDirectory(prefix="csio-inprocess-") as tmp:
        database = RecoveryDatabase("postgres", default_postgres_url(), Path(tmp))
        try:
            database.create()
            yield database.url
        finally:
            database.drop()


def _measure(args: argparse.Namespace) -> int:
    if args.callgrind:
        base = args.count or 500
        with tempfile.TemporaryDirectory(prefix="csio-callgrind-") as tmp:
            low, high = (
                _instructions(args.scenario, n, Path(tmp), args.floor, args.recovery, args.clients)
                for n in (base, base * 6)
            )
        print(f"{args.scenario}: {(high - low) / (base * 5):,.0f} instructions per round trip")
        return 0
    count = args.count or 20000
    elapsed = _run(args.scenario, count, args.floor, args.recovery, args.clients)
    print(f"{args.scenario}: {1e6 * elapsed / count:.1f} µs wall per round trip ({count})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
