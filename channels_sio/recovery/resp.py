"""A lean Redis connection for the Redis store's grouped writes: commands pipelined on one
connection, replies parsed by hiredis, no pool, no lock and no timer per command.

redis-py's asyncio client spends about 100 µs of CPU on a command (measured with PING on the
benchmark machine), eight times what writing the command and reading its reply cost. The store
writes the packet log once per batch of emits, so that cost lands on the per-message path of
connection state recovery; everything else the store does keeps redis-py.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from typing import Any, cast

from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

try:
    import hiredis
except ImportError as exc:  # pragma: no cover - the redis extra installs it
    raise ImportError(
        "the Redis recovery store needs hiredis: pip install 'channels-sio[redis]'"
    ) from exc

__all__ = ["RedisLink", "RedisLinkError", "Script"]

#: How often the oldest unanswered command is checked against the timeout, in seconds.
_WATCH_EVERY = 0.5


class RedisLinkError(RedisConnectionError):
    """The connection failed, was lost, or a command went unanswered for the timeout (a
    redis-py ``ConnectionError``, as the store's other calls raise)."""


class Script:
    """A Lua script called with EVALSHA, loaded on the first NOSCRIPT reply."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


def _encode(args: tuple[Any, ...]) -> bytes:
    """One command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = b"%d" % arg
        parts += (b"$%d\r\n" % len(arg), arg, b"\r\n")
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    """Matches replies to commands in the order they were sent."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._reader = hiredis.Reader()
        #: (future, when sent) per command sent and not answered yet, oldest first
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport instances, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def send(self, command: bytes) -> asyncio.Future[Any]:
        if self.lost is not None:
            raise RedisLinkError("the Redis connection is closed") from self.lost
        assert self.transport is not None
        future: asyncio.Future[Any] = self._loop.create_future()
        self.waiting.append((future, self._loop.time()))
        self.transport.write(command)
        return future

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self.waiting
        while (reply := reader.gets()) is not False:
            future, _ = waiting.popleft()
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(ResponseError(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisLinkError(f"the Redis connection was lost: {exc or 'closed'}"))

    def fail(self, error: Exception) -> None:
        if self.lost is None:
            self.lost = error
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)
        if self.transport is not None:
            self.transport.abort()


class RedisLink:
    """One connection to the Redis server of a redis-py URL (``redis://``, ``rediss://`` or
    ``unix://``, with its user, password and database), opened on first use and again on the
    first use after it is lost. A command unanswered for ``timeout`` seconds fails, with
    every other command in flight, and the connection is dropped.

    It belongs to the event loop it is first used on.
    """

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self._options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        self.timeout = float(self._options.get("socket_timeout") or timeout)
        self._protocol: _Protocol | None = None
        self._opening: asyncio.Future[_Protocol] | None = None
        self._watch: asyncio.TimerHandle | None = None

    async def call(self, *args: Any) -> Any:
        """Send one command; its reply (bytes, int, list, or None). A Redis error reply is
        raised as redis-py's ``ResponseError``."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = await self._open()
        return await protocol.send(_encode(args))

    async def evalsha(self, script: Script, keys: list[Any], args: list[Any]) -> Any:
        """Run ``script`` (EVALSHA, loading it when Redis does not know it yet)."""
        try:
            return await self.call("EVALSHA", script.sha, len(keys), *keys, *args)
        except ResponseError as error:
            if not str(error).startswith("NOSCRIPT"):
                raise
        await self.call("SCRIPT", "LOAD", script.source)
        return await self.call("EVALSHA", script.sha, len(keys), *keys, *args)

    async def _open(self) -> _Protocol:
        opening = self._opening
        if opening is None:
            opening = self._opening = asyncio.ensure_future(self._connect())
        try:
            # shield: one caller's cancellation must not cancel the others' connection
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if opening.cancelled() and (task is None or not task.cancelling()):
                # close() stopped the connecting, not this caller's cancellation: its command
                # fails as the commands in flight do.
                raise RedisLinkError("the Redis connection was closed") from None
            raise
        finally:
            if self._opening is opening and opening.done():
                self._opening = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        options = self._options
        kind = options.get("connection_class")
        connect_timeout = float(options.get("socket_connect_timeout") or self.timeout)
        protocol: _Protocol | None = None
        try:
            async with asyncio.timeout(connect_timeout):
                if kind is UnixDomainSocketConnection:
                    _, protocol = await loop.create_unix_connection(
                        lambda: _Protocol(loop), options["path"]
                    )
                else:
                    _, protocol = await loop.create_connection(
                        lambda: _Protocol(loop),
                        options.get("host", "localhost"),
                        options.get("port", 6379),
                        ssl=self._ssl_context() if kind is SSLConnection else None,
                    )
                await asyncio.gather(*map(protocol.send, self._setup()))
        except (OSError, TimeoutError, ResponseError) as exc:
            error = RedisLinkError(f"cannot connect to Redis: {exc}")
            if protocol is not None:
                protocol.fail(error)
            raise error from exc
        self._protocol = protocol
        self._watch_timeouts()
        return protocol

    def _setup(self) -> list[bytes]:
        """The commands a new connection sends first: AUTH and SELECT, as the URL says."""
        options, commands = self._options, []
        password = options.get("password")
        if password is not None:
            username = options.get("username")
            auth = ("AUTH", password) if username is None else ("AUTH", username, password)
            commands.append(_encode(auth))
        if options.get("db"):
            commands.append(_encode(("SELECT", options["db"])))
        return commands

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self._options.get("ssl_ca_certs"))
        if self._options.get("ssl_cert_reqs") in ("none", ssl.CERT_NONE):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _watch_timeouts(self) -> None:
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            self._watch = None
            return
        loop = asyncio.get_running_loop()
        if protocol.waiting and loop.time() - protocol.waiting[0][1] > self.timeout:
            protocol.fail(RedisLinkError(f"Redis did not answer within {self.timeout} s"))
            self._watch = None
            return
        self._watch = loop.call_later(_WATCH_EVERY, self._watch_timeouts)

    async def close(self) -> None:
        """Drop the connection; the commands in flight fail."""
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        opening, self._opening = self._opening, None
        if opening is not None and not opening.done():
            opening.cancel()
            await asyncio.wait([opening])
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.fail(RedisLinkError("the Redis connection was closed"))
