"""Connection state recovery: what restoring one client costs, per store.

    python bench/restore.py [--stores memory database redis] [--packets 100] [--repeat 10]

For each store, channels_sio (``example_project.settings_bench`` with ``RECOVERY_STORE``) runs
as in bench/run.py: a copy of the code under test, one uvicorn process pinned to core 0, this
process (the client) on core 1. One restore, repeated ``--repeat`` times after one warm-up:

1. client A connects and gets one broadcast, hence an offset; client B connects;
2. A's WebSocket closes (``transport close``: its session is kept);
3. B broadcasts ``--packets`` packets and receives them all, so all are in the store;
4. A connects again with ``{"pid", "offset"}`` in its CONNECT packet, and gets its session
   back with every packet it missed.

Measured: the time from A's CONNECT packet to the recovered CONNECT reply and to the last
missed packet (and from opening the WebSocket), how many missed packets came, and the store
round trips the server made from A's reconnection until ``--settle-ms`` after that. The
client speaks Socket.IO at the wire (Engine.IO v4 over WebSocket), as socket.io's own recovery
tests do, so that nothing else is timed.

Round trips are counted outside the server, where they happen: for the Redis store and the
database store on PostgreSQL, the server reaches its store through a TCP proxy of this script
(``CountingProxy``), which counts a round trip each time the server sends after the store has
answered (requests sent together, such as a pipeline or one statement's protocol messages,
are one), and keeps what each one carried (Redis commands; SQL statements, as verb and table).
The proxy adds its own hops, so the times come from a second server started without it. The
memory store and SQLite are in the server's process: no round trip to count.

The issue's requirement: a restore of 100 missed packets is one store round trip for the
session and one for the packets. Results go to ``bench/results/restore-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.run import (
    APPS,
    RECOVERY_DATABASES,
    RESULTS_DIR,
    RecoveryDatabase,
    Server,
    affinity,
    cleanup_on_exit,
    default_postgres_url,
    default_redis_url,
    log,
    machine,
    recovery_database,
    redis_client,
    snapshot,
    source_digest,
)

STORES = ("memory", "database", "redis")
#: The issue's requirement: one round trip for the session, one for the packets.
TARGET_ROUND_TRIPS = 2
#: Bound on every single wait (a frame, a connection).
WAIT = 10.0


# -------------------------------------------------------------------------------------------
# The store's side: a proxy that counts round trips


@dataclass
class Exchange:
    """One round trip from the server to its store: the bytes the server sent (the first
    ``CountingProxy.KEEP`` of them) until the store answered."""

    connection: int
    sent: bytearray = field(default_factory=bytearray)


class CountingProxy:
    """A TCP proxy between the server and its store, counting round trips.

    A round trip begins when the server sends on a connection where the store has answered
    everything sent so far (or sends first). What it sends before the store's answer, in one
    write or several, is the same round trip.
    """

    KEEP = 8192

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.exchanges: list[Exchange] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen on a free port of 127.0.0.1; the port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=WAIT)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        number = self.connections
        current: list[Exchange | None] = [None]  # the round trip awaiting the store's answer
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), WAIT
            )
        except (OSError, TimeoutError):
            writer.close()
            self._tasks.discard(task)
            return

        async def to_store() -> None:
            while data := await reader.read(65536):
                exchange = current[0]
                if exchange is None:
                    exchange = current[0] = Exchange(number)
                    self.exchanges.append(exchange)
                exchange.sent += data[: self.KEEP - len(exchange.sent)]
                upstream_writer.write(data)
                await upstream_writer.drain()

        async def to_server() -> None:
            while data := await upstream_reader.read(65536):
                current[0] = None
                writer.write(data)
                await writer.drain()

        try:
            pumps = [asyncio.ensure_future(to_store()), asyncio.ensure_future(to_server())]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.wait(pumps)
        finally:
            for stream in (writer, upstream_writer):
                stream.close()
            self._tasks.discard(task)


_RESP_COMMAND = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n")


def describe_redis(sent: bytes) -> str:
    """The commands of a Redis round trip, in order (a pipeline's included)."""
    names = [name.decode().upper() for name in _RESP_COMMAND.findall(sent)]
    return " ".join(names) or f"({len(sent)} bytes)"


_SQL_TARGET = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"?([\w.]+)"?', re.IGNORECASE)


def _statement(sql: str) -> str:
    verb = sql.split(None, 1)[0].upper() if sql.strip() else "?"
    target = _SQL_TARGET.search(sql)
    return f"{verb} {target[1]}" if target else verb


def describe_postgres(sent: bytes) -> str:
    """The statements of a PostgreSQL round trip (frontend messages Query and Parse), each as
    its verb and table; the other messages of the extended protocol are left out."""
    statements: list[str] = []
    at = 0
    while at + 5 <= len(sent):
        kind = sent[at : at + 1]
        (length,) = struct.unpack_from("!I", sent, at + 1)
        if length < 4 or kind not in b"QPBDESHCFXdcf":
            # A startup or TLS request (no type byte): a connection being made.
            return "; ".join([*statements, "(connection setup)"])
        body = bytes(sent[at + 5 : at + 1 + length])
        if kind == b"Q":
            statements.append(_statement(body.split(b"\0", 1)[0].decode(errors="replace")))
        elif kind == b"P":
            parts = body.split(b"\0", 2)
            if len(parts) > 1:
                statements.append(_statement(parts[1].decode(errors="replace")))
        at += 1 + length
    return "; ".join(statements) or f"({len(sent)} bytes)"


# -------------------------------------------------------------------------------------------
# The client's side: Socket.IO at the wire


class WireClient:
    """A Socket.IO client on namespace ``/`` over an Engine.IO v4 WebSocket: CONNECT with an
    auth payload, EVENT out, EVENT in; pings answered. Nothing else."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.sid = ""
        self.pid: str | None = None
        #: EVENTs that came before the CONNECT reply (a restore's missed packets).
        self.before_connect: list[list[Any]] = []
        self.opened = self.connect_sent = self.connected = 0.0

    @classmethod
    async def connect(cls, url: str, auth: dict[str, Any] | None = None) -> WireClient:
        from websockets.asyncio.client import connect

        started = time.perf_counter()
        target = f"ws{url.removeprefix('http')}/socket.io/?EIO=4&transport=websocket"
        ws = await connect(target, compression=None, open_timeout=WAIT, max_size=None)
        client = cls(ws)
        client.opened = started
        try:
            opening = await client._receive()
            if not opening.startswith("0{"):
                raise RuntimeError(f"expected the Engine.IO open packet, got {opening[:80]!r}")
            client.connect_sent = time.perf_counter()
            await ws.send("40" + (json.dumps(auth, separators=(",", ":")) if auth else ""))
            while True:
                text = await client._receive()
                if text.startswith("42"):
                    client.before_connect.append(json.loads(text[2:]))
                elif text.startswith("40"):
                    client.connected = time.perf_counter()
                    reply = json.loads(text[2:])
                    client.sid, client.pid = reply["sid"], reply.get("pid")
                    return client
                elif text.startswith("44"):
                    raise RuntimeError(f"CONNECT refused: {text}")
        except BaseException:
            await ws.close()
            raise

    async def _receive(self) -> str:
        while True:
            text = await asyncio.wait_for(self.ws.recv(), WAIT)
            if isinstance(text, bytes):
                raise RuntimeError("unexpected binary frame")
            if text == "2":  # ping
                await self.ws.send("3")
                continue
            return str(text)

    async def emit(self, event: str, *args: Any) -> None:
        await self.ws.send("42" + json.dumps([event, *args], separators=(",", ":")))

    async def events(self, name: str, count: int) -> list[list[Any]]:
        """The next ``count`` EVENTs named ``name`` (others are skipped)."""
        found: list[list[Any]] = []
        while len(found) < count:
            text = await self._receive()
            if text.startswith("42"):
                event = json.loads(text[2:])
                if event and event[0] == name:
                    found.append(event)
        return found

    async def drop(self) -> None:
        """Close the WebSocket without leaving the namespace: a lost connection."""
        await self.ws.close()

    async def leave(self) -> None:
        """Leave the namespace (nothing to keep for it), then close."""
        with contextlib.suppress(Exception):
            await self.ws.send("41")
        await self.ws.close()


async def restore_once(
    url: str, packets: int, settle: float, proxy: CountingProxy | None = None
) -> dict[str, Any]:
    """One drop and restore (steps 1-4 of the module's docstring). The round trips counted
    are those the server began from A's reconnection (its WebSocket opening) until ``settle``
    after the last missed packet came."""
    a = await WireClient.connect(url)
    b = await WireClient.connect(url)
    again: WireClient | None = None
    try:
        await b.emit("bcast", {"seq": "first"})
        [tick] = await a.events("tick", 1)
        await b.events("tick", 1)
        if a.pid is None or len(tick) < 3 or not isinstance(tick[-1], str):
            raise RuntimeError(f"recovery is off: no pid, or no offset in {tick}")
        offset = tick[-1]
        await a.drop()
        await asyncio.sleep(settle)  # the server notices, and keeps A's session
        for seq in range(packets):
            await b.emit("bcast", {"seq": seq})
        await b.events("tick", packets)  # recorded before delivered: all in the store now
        await asyncio.sleep(settle)
        mark = len(proxy.exchanges) if proxy else 0
        again = await WireClient.connect(url, {"pid": a.pid, "offset": offset})
        missed = [e for e in again.before_connect if e[0] == "tick"]
        before_connect = len(missed)
        complete = again.connected
        # Missed packets replayed after the CONNECT reply, if any, are waited for too.
        while len(missed) < packets:
            try:
                missed += await again.events("tick", 1)
            except TimeoutError:
                break
            complete = time.perf_counter()
        await asyncio.sleep(settle)
        exchanges = proxy.exchanges[mark:] if proxy else None
        recovered = again.pid == a.pid and again.sid == a.sid
        return {
            "recovered": recovered,
            "restore_ms": round((again.connected - again.connect_sent) * 1000, 3),
            "complete_ms": round((complete - again.connect_sent) * 1000, 3),
            "reconnect_ms": round((again.connected - again.opened) * 1000, 3),
            "replayed": len(missed),
            "replayed_before_connect": before_connect,
            "in_order": [e[1].get("seq") for e in missed] == list(range(packets)),
            "exchanges": exchanges,
        }
    finally:
        for client in (again, b):
            if client is not None:
                await client.leave()
        await asyncio.sleep(settle)


# -------------------------------------------------------------------------------------------
# The run


@dataclass
class Store:
    """One store as measured: how the server reaches it, with and without the proxy."""

    name: str
    backend: str  # memory, sqlite, postgresql, redis
    env: dict[str, str]  # DATABASE_URL / REDIS_URL
    target: tuple[str, int] | None = None  # where the proxy forwards (a network store)
    describe: Callable[[bytes], str] = describe_redis
    reset: Callable[[], None] = lambda: None
    about: str = "in the server's process"


def _with_host(url: str, port: int, **query: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    netloc_text = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
    params = dict(parse_qsl(parts.query))
    params.update({k: v for k, v in query.items() if k not in params})
    return urlunsplit(parts._replace(netloc=netloc_text, query=urlencode(params)))


def _through(store: Store, port: int) -> dict[str, str]:
    """The store's env with its URL on the proxy's port."""
    if store.backend == "postgresql":
        # The proxy reads the protocol: no TLS on that connection (the count is the same).
        return {"DATABASE_URL": _with_host(store.env["DATABASE_URL"], port, sslmode="disable")}
    return {"REDIS_URL": _with_host(store.env["REDIS_URL"], port)}


async def measure(
    store: Store,
    args: argparse.Namespace,
    root: Path,
    log_dir: Path,
    server_cores: set[int] | None,
    counted: bool,
) -> dict[str, Any]:
    """One server of ``store`` (through the proxy if ``counted``): a warm-up, then the
    restores."""
    proxy = None
    # Monitoring off: its registry writes (every 5 s, to the database store's database too)
    # would be round trips in the counted window that are not the restore's.
    env = {**store.env, "MONITORING": "0"}
    if counted:
        assert store.target is not None
        proxy = CountingProxy(*store.target)
        env.update(_through(store, await proxy.start()))
    store.reset()
    server = Server(APPS[f"channels_sio+{store.name}"], args.asgi, server_cores, log_dir, root, env)
    result: dict[str, Any] = {
        "store": store.name,
        "backend": store.backend,
        "about": store.about,
        "counted": counted,
    }
    try:
        await asyncio.to_thread(server.start)
        settle = args.settle_ms / 1000
        # A warm-up first: the store's connections, Redis' scripts.
        await restore_once(server.url, args.packets, settle, proxy)
        restores = []
        for _ in range(args.repeat):
            restore = await restore_once(server.url, args.packets, settle, proxy)
            if restore["exchanges"] is not None:
                restore["exchanges"] = [
                    {"connection": e.connection, "sent": store.describe(bytes(e.sent))}
                    for e in restore["exchanges"]
                ]
            restores.append(restore)
        result["restores"] = restores
        result["ok"] = all(r["recovered"] for r in restores)
    except (RuntimeError, OSError, TimeoutError) as exc:
        result.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        result["server_log_tail"] = server.log_tail()
    finally:
        await asyncio.to_thread(server.stop)
        if proxy is not None:
            await proxy.close()
    return result


def summarize(results: list[dict[str, Any]], packets: int) -> dict[str, Any]:
    """Per store: the restore times (the pass without the proxy), the packets replayed, the
    round trips per restore (the pass with it) and what the first one's were."""
    summary: dict[str, Any] = {}
    for name in STORES:
        timed = next((r for r in results if r["store"] == name and not r["counted"]), None)
        if timed is None:
            continue
        counted = next((r for r in results if r["store"] == name and r["counted"]), None)
        restores = timed.get("restores") or []
        entry: dict[str, Any] = {
            "backend": timed["backend"],
            "about": timed["about"],
            "ok": bool(timed.get("ok")) and (counted is None or bool(counted.get("ok"))),
            "restore_ms": _spread([r["restore_ms"] for r in restores]),
            "complete_ms": _spread([r["complete_ms"] for r in restores]),
            "reconnect_ms": _spread([r["reconnect_ms"] for r in restores]),
            "replayed_min": min((r["replayed"] for r in restores), default=None),
            "replayed_before_connect_min": min(
                (r["replayed_before_connect"] for r in restores), default=None
            ),
            "all_replayed_in_order": bool(restores)
            and all(r["replayed"] == packets and r["in_order"] for r in restores),
            "round_trips_per_restore": None,
            "round_trips": None,
            "target_met": None,
        }
        if counted is not None and counted.get("restores"):
            trips = [len(r["exchanges"]) for r in counted["restores"]]
            entry["round_trips_per_restore"] = trips
            entry["round_trips"] = [e["sent"] for e in counted["restores"][0]["exchanges"]]
            entry["target_met"] = max(trips) <= TARGET_ROUND_TRIPS
        summary[name] = entry
    return summary


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _ms(spread: dict[str, float] | None) -> str:
    if not spread:
        return "-"
    return f"{spread['median']:.2f} ({spread['min']:.2f}-{spread['max']:.2f})"


def format_table(summary: dict[str, Any], packets: int) -> str:
    out = [
        f"### restore of {packets} missed packets\n",
        "| store | restore ms: CONNECT sent → recovered CONNECT | → last missed packet | "
        "reconnect ms: from opening the WebSocket | missed packets, in order (before the "
        "reply) | store round trips per restore | what they were (the first restore) | "
        f"≤ {TARGET_ROUND_TRIPS} round trips |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in summary.items():
        trips = entry["round_trips_per_restore"]
        met = entry["target_met"]
        replayed = "all" if entry["all_replayed_in_order"] else f"{entry['replayed_min']} at least"
        out.append(
            f"| {name} ({entry['backend']}) | {_ms(entry['restore_ms'])} | "
            f"{_ms(entry['complete_ms'])} | {_ms(entry['reconnect_ms'])} | "
            f"{replayed} ({entry['replayed_before_connect_min']} at least) | "
            f"{', '.join(map(str, trips)) if trips else 'none: in process'} | "
            f"{'; '.join(f'[{t}]' for t in entry['round_trips'] or []) or '-'} | "
            f"{'-' if met is None else 'yes' if met else 'no'} |"
        )
    out.append("")
    return "\n".join(out)


@contextlib.contextmanager
def stores(args: argparse.Namespace, workdir: Path, root: Path) -> Iterator[list[Store]]:
    """The stores asked for, with their services ready: the database created and migrated
    (dropped on the way out), the Redis database flushed (before every server, and after)."""
    found: list[Store] = []
    with contextlib.ExitStack() as stack:
        for name in args.stores:
            if name == "memory":
                found.append(Store("memory", "memory", {}))
            elif name == "database":
                database: RecoveryDatabase = stack.enter_context(
                    recovery_database(args.recovery_database, args.postgres_url, workdir, root)
                )
                target = None
                if database.kind == "postgres":
                    parts = urlsplit(database.url)
                    target = (parts.hostname or "127.0.0.1", parts.port or 5432)
                found.append(
                    Store(
                        "database",
                        database.backend,
                        {"DATABASE_URL": database.url},
                        target,
                        describe_postgres,
                        database.reset,
                        database.describe(),
                    )
                )
            else:
                url = args.redis_url

                def flush(url: str = url) -> None:
                    with redis_client(url) as client:
                        client.flushdb()

                flush()
                stack.callback(flush)
                parts = urlsplit(url)
                target = (parts.hostname or "127.0.0.1", parts.port or 6379)
                about = f"Redis at {url}, flushed before every server and at the end"
                found.append(
                    Store("redis", "redis", {"REDIS_URL": url}, target, reset=flush, about=about)
                )
        yield found


async def measure_all(
    chosen: list[Store],
    args: argparse.Namespace,
    root: Path,
    log_dir: Path,
    server_cores: set[int] | None,
) -> list[dict[str, Any]]:
    """Each store without the proxy (the times), then with it (the round trips)."""
    results = []
    for store in chosen:
        for counted in [False, True] if store.target else [False]:
            result = await measure(store, args, root, log_dir, server_cores, counted)
            results.append(result)
            state = "ok" if result.get("ok") else f"FAILED {result.get('error', '')}"
            log(f"{store.name} ({store.backend}, {'counted' if counted else 'timed'}): {state}")
    return results


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", nargs="+", choices=STORES, default=list(STORES))
    parser.add_argument("--packets", type=int, default=100, help="missed packets (default 100)")
    parser.add_argument("--repeat", type=int, default=10, help="restores per store (default 10)")
    parser.add_argument("--asgi", choices=("uvicorn", "daphne"), default="uvicorn")
    parser.add_argument(
        "--settle-ms",
        type=float,
        default=200,
        help="pause after a drop and after the broadcasts, for the server to keep the session "
        "(default 200)",
    )
    parser.add_argument(
        "--recovery-database", choices=RECOVERY_DATABASES, default=RECOVERY_DATABASES[0]
    )
    parser.add_argument("--postgres-url", default=default_postgres_url())
    parser.add_argument(
        "--redis-url",
        default=default_redis_url(),
        help="the Redis store's database, flushed before and after (as for bench/run.py)",
    )
    parser.add_argument("--out", type=Path, help="results JSON (default bench/results/...)")
    args = parser.parse_args(argv)
    if args.packets < 1 or args.repeat < 1:
        parser.error("--packets and --repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    server_cores, client_cores, pinning = affinity()
    if client_cores:
        os.sched_setaffinity(0, client_cores)
    started = datetime.now(UTC)
    out = args.out or RESULTS_DIR / f"restore-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "command": " ".join(
            ["python", "bench/restore.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "started": started.isoformat(timespec="seconds"),
        "packets": args.packets,
        "repeat": args.repeat,
        "asgi": args.asgi,
        "pinning": pinning,
        "machine": machine(),
        "round_trips": "counted by a TCP proxy between the server and its store, from the "
        "client's reconnection until --settle-ms after its last missed packet: a round trip "
        "begins each time the server sends after the store has answered",
    }
    log(f"restore: {', '.join(args.stores)}, {args.repeat} restores each; results -> {out}")
    with cleanup_on_exit(), tempfile.TemporaryDirectory(prefix="csio-restore-") as tmp:
        log_dir = Path(tmp) / "logs"
        log_dir.mkdir()
        root = snapshot(Path(tmp) / "src")
        meta["source_digest"] = source_digest(root)
        try:
            with stores(args, Path(tmp), root) as chosen:
                results = asyncio.run(measure_all(chosen, args, root, log_dir, server_cores))
        except RuntimeError as exc:
            raise SystemExit(f"restore: {exc}") from None
    meta["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    summary = summarize(results, args.packets)
    document = {"meta": meta, "results": results, "summary": summary}
    out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    print(format_table(summary, args.packets))
    print(f"results: {out}")
    return 0 if all(r.get("ok") for r in results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:
        log(f"interrupted ({exc or 'SIGINT'}): every process it started is stopped")
        sys.exit(130)
