"""What only the Redis store does, against the real server (database 8): its keys, its IDs
across processes and event loops, outages, trimming (test_stores.py checks the contract)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from asgiref.sync import async_to_sync
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

from channels_sio.recovery import PacketRecord, resp
from channels_sio.recovery.redis import RedisStore, _entry, _room_list
from channels_sio.recovery.store import SetMemo
from channels_sio.socketio.adapter import SessionRecord

pytestmark = pytest.mark.redis

StoreMaker = Callable[..., RedisStore]


def packet(n: int = 0, namespace: str = "/chat") -> PacketRecord:
    return PacketRecord(namespace=namespace, data=["tick", n])


def session(pid: str = "pid-1", namespace: str = "/chat", **fields: Any) -> SessionRecord:
    values: dict[str, Any] = {
        "pid": pid,
        "sid": f"sid-{pid}",
        "namespace": namespace,
        "rooms": frozenset({f"sid-{pid}"}),
        "data": {"n": 1},
        **fields,
    }
    return SessionRecord(**values)


def with_port(url: str, port: int) -> str:
    """``url`` on this machine's ``port``, with its credentials and database."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}" if credentials else host))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def prefix() -> str:
    return f"csio-test-{secrets.token_hex(4)}"


@pytest.fixture
async def make(recovery_redis_url: str, prefix: str) -> AsyncIterator[StoreMaker]:
    """Makes stores on the suite's database, under this test's prefix unless told; closed
    after."""
    made: list[RedisStore] = []

    def make(**options: Any) -> RedisStore:
        options = {"url": recovery_redis_url, "prefix": prefix, **options}
        store = RedisStore(**options)
        made.append(store)
        return store

    yield make
    for store in made:
        with contextlib.suppress(redis.RedisError):
            await store.close()


@pytest.fixture
async def raw(recovery_redis_url: str) -> AsyncIterator[Redis]:
    """A plain client on the suite's database, to look at what the store wrote."""
    client = Redis.from_url(recovery_redis_url, socket_timeout=2)
    yield client
    await client.aclose()


async def test_keys_are_under_the_prefix_and_only_sessions_expire(
    make: StoreMaker, raw: Redis, prefix: str
) -> None:
    store = make(max_disconnection_duration=60_000)
    [offset] = await store.append([PacketRecord("/chat", ["hi", b"\x00"], frozenset({"r"}))])
    await store.save_sessions([session()])
    keys = {key.decode() async for key in raw.scan_iter(match=f"{prefix}:*")}
    assert keys == {
        f"{prefix}:last",
        f"{prefix}:namespaces",
        f"{prefix}:log:/chat",
        f"{prefix}:session:pid-1",
    }
    assert 59_000 < await raw.pttl(f"{prefix}:session:pid-1") <= 60_000
    for key in keys - {f"{prefix}:session:pid-1"}:
        assert await raw.pttl(key) == -1, key  # the log goes by age and length, not expiry
    entries = await raw.xrange(f"{prefix}:log:/chat")
    assert entries is not None
    [(entry_id, fields)] = entries
    assert entry_id == offset.encode()
    assert fields is not None
    assert set(fields) == {b"p", b"d", b"b", b"r"}  # no except-rooms, no excluded sid
    assert fields[b"p"] == b"0-0"  # the first entry of its stream


async def test_a_session_without_position_gets_the_last_offset(
    make: StoreMaker, raw: Redis, prefix: str
) -> None:
    store = make()
    await store.save_sessions([session("early")])
    [offset] = await store.append([packet(0, "/other")])
    await store.save_sessions([session("late")])
    value = await raw.get(f"{prefix}:session:late")
    assert value is not None
    stored = json.loads(value)
    assert stored["position"] == offset == await store.end()
    early = await store.take_session("early")
    assert early is not None
    assert early.position == "0-0"
    assert await store.read_after(["/other"], "0-0") == [(offset, packet(0, "/other"))]


async def test_offsets_increase_across_processes_and_namespaces(make: StoreMaker) -> None:
    one, two = make(), make()  # two "processes": each has its own client and connections

    def process(store: RedisStore, namespace: str) -> list[str]:
        async def write() -> list[str]:
            offsets: list[str] = []
            for n in range(20):
                offsets += await store.append([packet(n, namespace) for _ in range(5)])
            return offsets

        return asyncio.run(write())

    written = await asyncio.gather(
        asyncio.to_thread(process, one, "/a"), asyncio.to_thread(process, two, "/b")
    )
    for offsets in written:
        parsed = [tuple(map(int, offset.split("-"))) for offset in offsets]
        assert parsed == sorted(parsed)
        assert len(set(parsed)) == 100
    merged = await one.read_after(["/a", "/b"], "0-0")
    assert merged is not None
    assert {offset for offset, _ in merged} == set(written[0]) | set(written[1])
    # One counter for the whole store: the n of <ms>-<n> numbers every write, in order.
    assert [int(offset.split("-")[1]) for offset, _ in merged] == list(range(1, 201))


async def test_offsets_keep_increasing_when_the_clock_steps_back(
    make: StoreMaker, raw: Redis, prefix: str
) -> None:
    store = make()
    [before] = await store.append([packet(0)])
    ahead = int(before.split("-")[0]) + 3_600_000
    await raw.hset(f"{prefix}:last", "ms", ahead)  # as if Redis' clock had just gone back
    [first, second] = await store.append([packet(1), packet(2, "/other")])
    [third] = await store.append([packet(3)])
    assert [int(o.split("-")[0]) for o in (first, second, third)] == [ahead] * 3
    assert await store.read_after(["/chat", "/other"], before) == [
        (first, packet(1)),
        (second, packet(2, "/other")),
        (third, packet(3)),
    ]


async def test_the_store_works_from_another_event_loop_at_once(make: StoreMaker) -> None:
    store = make()
    [first] = await store.append([packet(0)])

    def sync_code() -> list[str]:  # the admin, or emit() from a management command
        offsets = async_to_sync(store.append)([packet(n, "/sync") for n in range(3)])
        async_to_sync(store.save_sessions)([session("from-sync")])
        assert async_to_sync(store.take_session)("from-sync") is not None
        return offsets

    async def this_loop() -> list[str]:
        offsets: list[str] = []
        for n in range(10):
            offsets += await store.append([packet(n)])
        return offsets

    from_sync, here = await asyncio.gather(asyncio.to_thread(sync_code), this_loop())
    found = await store.read_after(["/chat", "/sync"], first)
    assert found is not None
    assert {offset for offset, _ in found} == {*from_sync, *here}
    # The other loop's client closed as that loop ended; this loop's is still there.
    assert store._links.loops() == [asyncio.get_running_loop()]


async def test_close_closes_the_client_of_another_running_loop(make: StoreMaker) -> None:
    store = make()
    other = asyncio.new_event_loop()
    thread = threading.Thread(target=other.run_forever)
    thread.start()
    try:
        done = asyncio.run_coroutine_threadsafe(store.append([packet(0)]), other)
        [offset] = await asyncio.wrap_future(done)
        assert await store.read_after(["/chat"], "0-0") == [(offset, packet(0))]
        assert set(store._links.loops()) == {other, asyncio.get_running_loop()}
        await store.close()
        assert store._links.loops() == []
    finally:
        other.call_soon_threadsafe(other.stop)
        await asyncio.to_thread(thread.join)
        other.close()
    [later] = await store.append([packet(1)])  # usable again after close
    assert await store.read_after(["/chat"], offset) == [(later, packet(1))]


class Proxy:
    """A TCP proxy to Redis that the test stops and starts: an outage of the store's Redis
    without touching the shared server."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}
        self._tasks |= {
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        }

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


@pytest.fixture
async def proxy(recovery_redis_url: str) -> AsyncIterator[Proxy]:
    proxy = Proxy(recovery_redis_url)
    await proxy.start()
    yield proxy
    await proxy.stop()


async def test_an_outage_raises_and_the_store_works_again_after(
    make: StoreMaker, proxy: Proxy, recovery_redis_url: str
) -> None:
    store = make(url=with_port(recovery_redis_url, proxy.port))
    [first] = await store.append([packet(0)])
    await store.save_sessions([session()])
    await proxy.stop()  # Redis restarted: the store's connections are gone, and it is away
    with pytest.raises(redis.ConnectionError):
        await store.append([packet(1)])
    with pytest.raises(redis.ConnectionError):
        await store.read_after(["/chat"], first)
    await proxy.start()  # back
    [second] = await store.append([packet(2)])
    assert await store.read_after(["/chat"], first) == [(second, packet(2))]
    assert await store.take_session("pid-1") == session(position=first)


async def test_an_unreachable_redis_raises_redis_errors(
    make: StoreMaker, recovery_redis_url: str
) -> None:
    store = make(url=with_port(recovery_redis_url, closed_port()))
    with pytest.raises(redis.ConnectionError):
        await store.append([packet(0)])
    with pytest.raises(redis.ConnectionError):
        await store.take_session("pid-1")
    with pytest.raises(redis.ConnectionError):
        await store.purge()


async def test_purge_trims_by_age_only(make: StoreMaker, raw: Redis, prefix: str) -> None:
    store = make(max_disconnection_duration=500)
    old = await store.append([packet(0, "/a"), packet(1, "/b"), packet(2, "/a"), packet(3, "/b")])
    await asyncio.sleep(0.6)
    [young] = await store.append([packet(4, "/a")])
    await store.save_sessions([session(position=old[0])])
    assert await store.purge() == 4
    assert await store.purge() == 0
    assert await raw.xlen(f"{prefix}:log:/a") == 1
    assert await raw.xlen(f"{prefix}:log:/b") == 0
    assert [p.offset for p in await store.browse_packets()] == [young]
    # What went for its age was sent before the disconnection began: not a reason to refuse.
    assert await store.read_after(["/a", "/b"], old[0]) == [(young, packet(4, "/a"))]
    assert await store.take_session("pid-1") is not None  # sessions only expire


async def test_the_length_cap_counts_while_the_removed_packets_are_young(
    make: StoreMaker,
) -> None:
    store = make(max_len=5, max_disconnection_duration=800)
    offsets: list[str] = []
    for start in range(0, 300, 50):  # enough for Redis' approximate trimming to trim
        offsets += await store.append([packet(n) for n in range(start, start + 50)])
    assert await store.read_after(["/chat"], offsets[0]) is None
    assert await store.read_after(["/other", "/chat"], offsets[0]) is None
    await asyncio.sleep(0.85)
    # Now older than any disconnection that can still be recovered: what is left is all.
    left = await store.read_after(["/chat"], offsets[0])
    assert left is not None
    assert [o for o, _ in left] == offsets[-len(left) :]


async def test_namespaces_pids_and_prefixes_with_unusual_characters(make: StoreMaker) -> None:
    store = make()
    names = ["/a,b", "/ünï✓", "/x:y*", "#3"]
    offsets = await store.append([packet(n, name) for n, name in enumerate(names)])
    found = await store.read_after(names, "0-0")
    assert found == [
        (o, packet(n, name)) for n, (o, name) in enumerate(zip(offsets, names, strict=True))
    ]
    for n, name in enumerate(names):
        [logged] = await store.browse_packets(namespace=name)
        assert logged.packet == packet(n, name)
    kept = session("pïd,*1", namespace="/ünï✓", position=offsets[0])
    await store.save_sessions([kept])
    [browsed] = await store.browse_sessions(namespace="/ünï✓", search="pïd,")
    assert browsed.session == kept
    assert await store.take_session("pïd,*1") == kept


async def test_browsing_sessions_keeps_to_the_prefix_even_with_glob_characters(
    make: StoreMaker, prefix: str
) -> None:
    brackets, plain = make(prefix=f"{prefix}[1]"), make(prefix=f"{prefix}1")
    await plain.save_sessions([session("other")])
    await brackets.save_sessions([session("mine")])
    assert [k.session.pid for k in await brackets.browse_sessions()] == ["mine"]
    assert [k.session.pid for k in await plain.browse_sessions()] == ["other"]


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts what redis-py and the store's write connection send: one per round trip (a
    pipeline goes as one send)."""
    sent: list[int] = []
    send = AbstractConnection.send_packed_command

    async def counting(self: AbstractConnection, *args: Any, **kwargs: Any) -> None:
        sent.append(1)
        await send(self, *args, **kwargs)

    def counting_link(self: resp._Protocol, command: bytes) -> asyncio.Future[Any]:
        sent.append(1)
        return link_send(self, command)

    link_send = resp._Protocol.send
    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    monkeypatch.setattr(resp._Protocol, "send", counting_link)
    return sent


async def test_each_call_is_one_round_trip(make: StoreMaker, sends: list[int]) -> None:
    store = make()
    # Both connections made, with both scripts loaded.
    [first] = await store.append([packet(0)])
    await store.save_sessions([session()])
    await store.end()
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "append": lambda: store.append([packet(n, f"/{n % 3}") for n in range(30)]),
        "read_after": lambda: store.read_after(["/0", "/1", "/2", "/chat"], first),
        "end": store.end,
        "save_sessions": lambda: store.save_sessions([session(f"pid-{n}") for n in range(30)]),
        "take_session": lambda: store.take_session("pid-1"),
    }
    for name, call in calls.items():
        sends.clear()
        await call()
        assert len(sends) == 1, name


@pytest.mark.parametrize(
    "offset",
    [
        "18446744073709551616-0",
        "0-18446744073709551616",
        "18446744073709551615-18446744073709551615",
    ],
)
async def test_offsets_beyond_redis_ids_read_as_none(make: StoreMaker, offset: str) -> None:
    store = make()
    await store.append([packet(0)])
    assert await store.read_after(["/chat"], offset) is None


def test_max_len_must_leave_an_entry() -> None:
    with pytest.raises(ValueError, match="max_len"):
        RedisStore(max_len=0)


def spelled_out(stream: int, fields: list[tuple[bytes, bytes]]) -> bytes:
    """An entry of the append script's blob as its format is written down: the stream's index,
    the field count, then each field and value, every part as ``<length>:<bytes>``."""
    parts = [b"%d" % stream, b"%d" % (2 * len(fields))]
    for name, value in fields:
        parts += [name, value]
    return b"".join(b"%d:%b" % (len(part), part) for part in parts)


@pytest.mark.parametrize(
    ("record", "stream", "fields"),
    [
        # The common shapes, which _entry writes with one format.
        (PacketRecord("/", ["tick", 1]), 3, [(b"d", b'["tick",1]')]),
        (
            PacketRecord("/", ["tick", "é"], rooms=frozenset({"b", "a"})),
            9,
            [(b"d", '["tick","é"]'.encode()), (b"r", b'["a","b"]')],
        ),
        # The others, field by field.
        (
            PacketRecord("/", ["tick", 1], rooms=frozenset({"a"})),
            12,
            [(b"d", b'["tick",1]'), (b"r", b'["a"]')],
        ),
        (
            PacketRecord("/", ["bin", b"\x00\x01"]),
            3,
            [
                (b"d", b'["bin",{"_placeholder":true,"num":0}]'),
                (b"b", b"\x00\x00\x00\x02\x00\x01"),
            ],
        ),
        (
            PacketRecord(
                "/",
                ["tick"],
                rooms=frozenset({"a"}),
                except_rooms=frozenset({"x"}),
                exclude_sid="s1",
            ),
            4,
            [(b"d", b'["tick"]'), (b"r", b'["a"]'), (b"x", b'["x"]'), (b"s", b"s1")],
        ),
        (
            PacketRecord("/", ["é", b"\xff"], rooms=frozenset({"ü"}), exclude_sid="ß"),
            3,
            [
                (b"d", '["é",{"_placeholder":true,"num":0}]'.encode()),
                (b"b", b"\x00\x00\x00\x01\xff"),
                (b"r", '["ü"]'.encode()),
                (b"s", "ß".encode()),
            ],
        ),
    ],
)
def test_entries_follow_the_written_format(
    record: PacketRecord, stream: int, fields: list[tuple[bytes, bytes]]
) -> None:
    # _entry writes the common shapes with a format of their own; both must give this.
    assert _entry(stream, record, SetMemo(_room_list)) == spelled_out(stream, fields)
