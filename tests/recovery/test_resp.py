"""The Redis store's write connection against the real server (database 8): replies matched to
commands in order, errors, scripts, timeouts and reconnection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import redis
from redis.asyncio import Redis

from channels_sio.recovery.resp import RedisLink, RedisLinkError, Script

from .test_redis import Proxy, closed_port, with_port

pytestmark = pytest.mark.redis


@pytest.fixture
async def link(recovery_redis_url: str) -> AsyncIterator[RedisLink]:
    link = RedisLink(recovery_redis_url)
    yield link
    await link.close()


async def test_replies_come_back_to_their_commands_in_order(link: RedisLink) -> None:
    key = "resp-test:counter"
    await link.call("DEL", key)
    # Sent together on the one connection: each caller gets its own reply.
    replies = await asyncio.gather(*(link.call("INCRBY", key, n) for n in range(1, 101)))
    assert replies == [n * (n + 1) // 2 for n in range(1, 101)]
    assert await link.call("SET", key, b"\x00\xffbytes") == b"OK"
    assert await link.call("GET", key) == b"\x00\xffbytes"
    assert await link.call("GET", "resp-test:missing") is None
    assert await link.call("DEL", key) == 1


async def test_the_url_chooses_the_database(recovery_redis_url: str, link: RedisLink) -> None:
    db = int(urlsplit(recovery_redis_url).path.lstrip("/") or 0)
    await link.call("SET", "resp-test:db", "here")
    raw = Redis.from_url(recovery_redis_url)
    try:
        assert await raw.get("resp-test:db") == b"here"
        assert (await raw.client_info())["db"] == db
    finally:
        await raw.delete("resp-test:db")
        await raw.aclose()


async def test_an_error_reply_fails_its_command_only(link: RedisLink) -> None:
    await link.call("SET", "resp-test:text", "a")
    wrong, right = await asyncio.gather(
        link.call("INCR", "resp-test:text"),
        link.call("GET", "resp-test:text"),
        return_exceptions=True,
    )
    assert isinstance(wrong, redis.ResponseError)
    assert "not an integer" in str(wrong)
    assert right == b"a"
    await link.call("DEL", "resp-test:text")


async def test_a_script_is_loaded_when_redis_does_not_know_it(link: RedisLink) -> None:
    script = Script("return {KEYS[1], ARGV[1], #ARGV}")
    await link.call("SCRIPT", "FLUSH")
    assert await link.evalsha(script, ["k"], ["a", 2]) == [b"k", b"a", 2]
    assert await link.call("SCRIPT", "EXISTS", script.sha) == [1]
    assert await link.evalsha(script, ["k2"], ["b"]) == [b"k2", b"b", 1]
    with pytest.raises(redis.ResponseError, match="nonexistent global"):
        await link.evalsha(Script("return nothing()"), [], [])


async def test_a_cancelled_caller_does_not_shift_the_replies(link: RedisLink) -> None:
    slow = asyncio.ensure_future(link.call("BLPOP", "resp-test:never", "0.2"))
    await asyncio.sleep(0.05)
    slow.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await slow
    # Its reply (nil, after 0.2 s) is read and dropped; this one gets its own.
    assert await link.call("ECHO", "mine") == b"mine"


async def test_an_unreachable_server_raises_a_redis_connection_error(
    recovery_redis_url: str,
) -> None:
    link = RedisLink(with_port(recovery_redis_url, closed_port()))
    with pytest.raises(redis.ConnectionError, match="cannot connect"):
        await link.call("PING")
    await link.close()


async def test_a_lost_connection_fails_what_is_in_flight_and_reconnects(
    recovery_redis_url: str,
) -> None:
    proxy = Proxy(recovery_redis_url)
    await proxy.start()
    link = RedisLink(with_port(recovery_redis_url, proxy.port))
    try:
        assert await link.call("PING") == b"PONG"
        waiting = asyncio.ensure_future(link.call("BLPOP", "resp-test:never", "5"))
        await asyncio.sleep(0.05)
        await proxy.stop()
        with pytest.raises(RedisLinkError, match="lost"):
            await waiting
        with pytest.raises(RedisLinkError, match="cannot connect"):
            await link.call("PING")
        await proxy.start()
        assert await link.call("PING") == b"PONG"
    finally:
        await link.close()
        await proxy.stop()


async def test_a_server_that_stops_answering_times_out() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = RedisLink(f"redis://127.0.0.1:{port}/0", timeout=0.3)
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(RedisLinkError, match="did not answer"):
            await link.call("PING")
        assert asyncio.get_running_loop().time() - started < 2
    finally:
        await link.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_closing_fails_the_commands_in_flight(link: RedisLink) -> None:
    waiting = asyncio.ensure_future(link.call("BLPOP", "resp-test:never", "5"))
    await asyncio.sleep(0.05)
    await link.close()
    with pytest.raises(RedisLinkError, match="closed"):
        await waiting
    assert await link.call("PING") == b"PONG"  # usable again


async def test_closing_while_connecting_fails_the_command(link: RedisLink) -> None:
    """Closed before the connection is made: the command fails (it was not cancelled)."""
    waiting = asyncio.ensure_future(link.call("PING"))
    await asyncio.sleep(0)  # the call has begun connecting
    await link.close()
    with pytest.raises(RedisLinkError, match="closed"):
        await waiting
    assert await link.call("PING") == b"PONG"
