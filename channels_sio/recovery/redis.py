"""The Redis store: the packet log as one stream per namespace, sessions as keys that expire
(redis-py's asyncio client; Redis 6.2 or later).

Keys, all under ``prefix``:

- ``{prefix}:log:{namespace}``: the namespace's stream, capped at about ``max_len`` entries;
  each entry holds the ID of the entry before it in the stream (``p``), the data as JSON text
  (``d``) and, when there are any, the packed attachments (``b``), the rooms (``r``), the
  except-rooms (``x``) and the excluded sid (``s``).
- ``{prefix}:namespaces``: the set of the namespaces that have a stream.
- ``{prefix}:last``: the last ID given (a hash: ``ms``, ``n``).
- ``{prefix}:session:{pid}``: a session as JSON, expiring after the maximum disconnection
  duration.

Offsets are the entries' IDs, ``<ms>-<n>``: ``ms`` is Redis' clock, never below the last ID's,
and ``n`` one counter for all the streams, so that IDs increase in the order of writes across
every namespace and every process, as reads that merge namespaces need (IDs Redis makes itself
increase per stream only).

Streams lose entries only from their start (the length cap, the purge by age), so the first
entry left names, in ``p``, the newest one removed: a read after an offset checks that one, as
Redis keeps no trace of what trimming removed (``max-deleted-entry-id`` follows XDEL only).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

try:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
except ImportError as exc:  # redis-py comes with an extra, not with the package
    raise ImportError(
        f'The redis recovery store needs redis-py: pip install "channels-sio[redis]" ({exc})',
        name=exc.name,
    ) from exc

from ..socketio.adapter import SessionRecord
from .perloop import PerLoop
from .resp import RedisLink, Script
from .store import (
    KeptSession,
    LoggedPacket,
    PacketRecord,
    RecoveryStore,
    SetMemo,
    dump_data,
    load_data,
    pack_buffers,
    unpack_buffers,
)

__all__ = ["RedisStore"]

# KEYS: the last ID (hash), the set of namespaces, then the streams the batch writes to.
# ARGV: max_len, the entry count, the streams' namespaces (in the order of KEYS), then the
# entries in one argument (one string to send, not one per field: encoding an argument in
# Python costs more than Redis's work on it): per entry, its stream's index in KEYS, its field
# count, its fields and values, each as "<length>:<bytes>". The script adds ``p``, the ID of the
# entry before (0-0 for none).
# Lua numbers are doubles: string.format('%d') keeps milliseconds from turning into 1.7e+12.
_APPEND = """
local clock = redis.call('TIME')
local ms = clock[1] * 1000 + math.floor(clock[2] / 1000)
local last = tonumber(redis.call('HGET', KEYS[1], 'ms'))
if last and last >= ms then
  ms = last
else
  redis.call('HSET', KEYS[1], 'ms', string.format('%d', ms))
end
local count = tonumber(ARGV[2])
local n = redis.call('HINCRBY', KEYS[1], 'n', count) - count
redis.call('SADD', KEYS[2], unpack(ARGV, 3, #KEYS))
local blob, at = ARGV[#KEYS + 1], 1
local function take()
  local colon = string.find(blob, ':', at, true)
  local size = tonumber(string.sub(blob, at, colon - 1))
  at = colon + size + 1
  return string.sub(blob, colon + 1, colon + size)
end
local ids, before = {}, {}
for i = 1, count do
  local key = KEYS[tonumber(take())]
  local fields = {}
  for j = 1, tonumber(take()) do
    fields[j] = take()
  end
  if not before[key] then
    local top = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1]
    before[key] = top and top[1] or '0-0'
  end
  local id = string.format('%d-%d', ms, n + i)
  redis.call('XADD', key, 'MAXLEN', '~', ARGV[1], id, 'p', before[key], unpack(fields))
  ids[i], before[key] = id, id
end
return ids
"""

# KEYS: the last ID (hash), then the sessions' keys. ARGV: the expiry (ms), then per session:
# its position as JSON ('' for the log's end: the last ID given) and its other fields as a
# JSON object, which the position is put in front of.
_SAVE = """
local last = redis.call('HMGET', KEYS[1], 'ms', 'n')
local log_end = string.format('"%d-%d"', tonumber(last[1]) or 0, tonumber(last[2]) or 0)
for i = 2, #KEYS do
  local position = ARGV[2 * i - 2]
  if position == '' then position = log_end end
  local value = '{"position":' .. position .. ',' .. string.sub(ARGV[2 * i - 1], 2)
  redis.call('SET', KEYS[i], value, 'PX', ARGV[1])
end
"""

_APPEND_SCRIPT = Script(_APPEND)
_SAVE_SCRIPT = Script(_SAVE)

_OFFSET = re.compile(r"([0-9]+)-([0-9]+)")
_ID_PART_MAX = 2**64 - 1
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")

StreamId = tuple[int, int]


def _parse_offset(text: str) -> StreamId | None:
    """An offset as a stream ID (ms, n); None when it is not one."""
    match = _OFFSET.fullmatch(text)
    if match is None:
        return None
    parsed = int(match[1]), int(match[2])
    # Each part is 64-bit, and nothing can follow the greatest ID (Redis refuses to read).
    if max(parsed) > _ID_PART_MAX or parsed == (_ID_PART_MAX, _ID_PART_MAX):
        return None
    return parsed


def _id(raw: bytes) -> StreamId:
    """A stream ID as Redis gives it, as (ms, n)."""
    ms, _, n = raw.partition(b"-")
    return int(ms), int(n)


def _room_list(rooms: frozenset[str]) -> bytes:
    """A room set as an entry's value: its JSON list, with the length before it."""
    room_list = dump_data(sorted(rooms))[0].encode()
    return b"%d:%b" % (len(room_list), room_list)


def _entry(stream: int, packet: PacketRecord, room_lists: SetMemo[bytes]) -> bytes:
    """One entry of the append script's blob: its stream's index in KEYS, its field count,
    then its fields and values, each as "<length>:<bytes>" (written out here rather than by a
    function per field: this runs for every packet recorded)."""
    dumped = packet.dumped  # serialized(), inline: this runs for every packet recorded
    text, buffers = dumped if dumped is not None else dump_data(packet.data)
    data = text.encode()
    rooms = packet.rooms
    if not buffers and not packet.except_rooms and packet.exclude_sid is None and stream < 10:
        # Most packets: sent to rooms (a socket's own, for socket.emit) or to all; one format.
        if rooms:
            return b"1:%d1:41:d%d:%b1:r%b" % (stream, len(data), data, room_lists[rooms])
        return b"1:%d1:21:d%d:%b" % (stream, len(data), data)
    fields = [b"1:d%d:%b" % (len(data), data)]
    if buffers:
        packed = pack_buffers(buffers)
        fields.append(b"1:b%d:%b" % (len(packed), packed))
    if rooms:
        fields.append(b"1:r" + room_lists[rooms])
    if packet.except_rooms:
        fields.append(b"1:x" + room_lists[packet.except_rooms])
    if packet.exclude_sid is not None:
        sid = packet.exclude_sid.encode()
        fields.append(b"1:s%d:%b" % (len(sid), sid))
    index, count = b"%d" % stream, b"%d" % (2 * len(fields))
    return b"%d:%b%d:%b" % (len(index), index, len(count), count) + b"".join(fields)


def _record(namespace: str, fields: dict[bytes, bytes]) -> PacketRecord:
    attachments, rooms, except_rooms = fields.get(b"b"), fields.get(b"r"), fields.get(b"x")
    sid = fields.get(b"s")
    return PacketRecord(
        namespace=namespace,
        data=load_data(fields[b"d"].decode(), unpack_buffers(attachments) if attachments else []),
        rooms=frozenset(json.loads(rooms)) if rooms else frozenset(),
        except_rooms=frozenset(json.loads(except_rooms)) if except_rooms else frozenset(),
        exclude_sid=sid.decode() if sid is not None else None,
    )


def _session_body(session: SessionRecord) -> str:
    """A session as a JSON object, without its position (the save script puts it in)."""
    return json.dumps(
        {
            "pid": session.pid,
            "sid": session.sid,
            "namespace": session.namespace,
            "rooms": sorted(session.rooms),
            "data": session.data,
            "user_id": session.user_id,
        },
        separators=(",", ":"),
        allow_nan=False,
    )


def _session(value: bytes | str) -> SessionRecord:
    fields = json.loads(value)
    return SessionRecord(
        pid=fields["pid"],
        sid=fields["sid"],
        namespace=fields["namespace"],
        rooms=frozenset(fields["rooms"]),
        data=fields["data"],
        user_id=fields["user_id"],
        position=fields["position"],
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _Link:
    """The store's clients on one event loop (:class:`.perloop.PerLoop`): the grouped writes
    (appending, saving) on a lean connection of their own (:mod:`.resp`), everything else on
    redis-py's client."""

    def __init__(self, url: str) -> None:
        # Timeouts bound a call to a Redis that stopped answering; the URL's query may change
        # them. No retry: a batch whose reply was lost may have been written, and writing it
        # again would replay its packets twice; the failed call is logged, the next one
        # reconnects.
        self.client = Redis.from_url(
            url, socket_timeout=5, socket_connect_timeout=5, retry=Retry(NoBackoff(), 0)
        )
        self.writes = RedisLink(url, timeout=5)

    async def close(self) -> None:
        """Close both clients (on their own loop)."""
        await self.writes.close()
        await self.client.aclose()


class RedisStore(RecoveryStore):
    """Packets in a Redis stream per namespace (about ``max_len`` entries at most each),
    sessions in keys that expire, every key under ``prefix``; ``url`` is a redis-py URL.

    Redis 6.2 or later. Appending, reading, the end, saving and taking are one round trip
    each. Every method works from any event loop: the store keeps a client per loop that
    uses it.
    """

    def __init__(
        self,
        *,
        url: str = "redis://127.0.0.1:6379/0",
        prefix: str = "channels_sio",
        max_len: int = 10_000,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if max_len < 1:
            # The cap must leave an entry: the first one left names the newest one removed.
            raise ValueError(f"max_len must be at least 1, not {max_len}")
        self.url = url
        self.prefix = prefix
        self.max_len = max_len
        self._last_key = f"{prefix}:last"
        self._namespaces_key = f"{prefix}:namespaces"
        # A redis.asyncio client belongs to the loop it was made on.
        self._links = PerLoop(lambda: _Link(url), _Link.close)
        self._room_lists = SetMemo(_room_list)

    def _log_key(self, namespace: str) -> str:
        return f"{self.prefix}:log:{namespace}"

    def _session_key(self, pid: str) -> str:
        return f"{self.prefix}:session:{pid}"

    async def _link(self) -> _Link:
        return await self._links.get()

    async def append(self, packets: Sequence[PacketRecord]) -> list[str]:
        if not packets:
            return []
        streams: dict[str, int] = {}  # namespace -> its stream's index in KEYS (from 1)
        room_lists = self._room_lists
        blob = b"".join(
            [
                _entry(streams.setdefault(packet.namespace, len(streams) + 3), packet, room_lists)
                for packet in packets
            ]
        )
        link = await self._link()
        ids: list[bytes] = await link.writes.evalsha(
            _APPEND_SCRIPT,
            [self._last_key, self._namespaces_key, *map(self._log_key, streams)],
            [self.max_len, len(packets), *streams, blob],
        )
        return [id_.decode() for id_ in ids]

    async def end(self) -> str:
        """The last ID given (``0-0`` before the first): every later one is greater."""
        link = await self._link()
        ms, n = await link.client.hmget(self._last_key, ["ms", "n"])
        return f"{_text(ms or '0')}-{_text(n or '0')}"

    async def read_after(
        self, namespaces: Sequence[str], after: str
    ) -> list[tuple[str, PacketRecord]] | None:
        start = _parse_offset(after)
        if start is None:
            return None
        link = await self._link()
        # One transaction: the entries and the first entries they are checked against agree.
        async with link.client.pipeline(transaction=True) as pipe:
            pipe.time()
            for namespace in namespaces:
                key = self._log_key(namespace)
                pipe.xrange(key, f"({start[0]}-{start[1]}", count=self.replay_limit + 1)
                pipe.xrange(key, count=1)
            (seconds, microseconds), *replies = await pipe.execute()
        horizon = seconds * 1000 + microseconds // 1000 - self.max_disconnection_duration
        found: list[tuple[StreamId, str, PacketRecord]] = []
        for namespace, entries, first in zip(namespaces, replies[::2], replies[1::2], strict=True):
            if first and _id(first[0][0]) > start:
                removed = _id(first[0][1][b"p"])
                # One removed for its age was sent before the client's disconnection began.
                if removed > start and removed[0] >= horizon:
                    return None
            found += ((_id(id_), id_.decode(), _record(namespace, f)) for id_, f in entries)
        if len(found) > self.replay_limit:
            return None
        found.sort(key=lambda item: item[0])
        return [(offset, packet) for _, offset, packet in found]

    async def save_sessions(self, sessions: Sequence[SessionRecord]) -> None:
        if not sessions:
            return
        args: list[str | int] = [self.max_disconnection_duration]
        for session in sessions:
            position = "" if session.position is None else json.dumps(session.position)
            args += [position, _session_body(session)]
        link = await self._link()
        await link.writes.evalsha(
            _SAVE_SCRIPT, [self._last_key, *(self._session_key(s.pid) for s in sessions)], args
        )

    async def discard_sessions(self, pids: Sequence[str]) -> None:
        if pids:
            link = await self._link()
            await link.writes.call("DEL", *(self._session_key(pid) for pid in pids))

    async def take_session(self, pid: str) -> SessionRecord | None:
        link = await self._link()
        value = await link.client.getdel(self._session_key(pid))
        return None if value is None else _session(value)

    async def purge(self) -> int:
        """Trim each stream of the entries older than the maximum disconnection duration
        (sessions expire by themselves); how many entries went.

        Trimmed exactly (``MINID``, not ``MINID ~``): approximate trimming removes whole
        nodes of up to a hundred entries only, and would keep a quiet namespace's old
        packets for as long as it stays quiet. The length cap bounds each trim.
        """
        link = await self._link()
        async with link.client.pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.smembers(self._namespaces_key)
            (seconds, microseconds), namespaces = await pipe.execute()
        if not namespaces:
            return 0
        horizon = seconds * 1000 + microseconds // 1000 - self.max_disconnection_duration
        async with link.client.pipeline(transaction=False) as pipe:
            for namespace in namespaces:
                pipe.xtrim(self._log_key(_text(namespace)), minid=horizon, approximate=False)
            removed: list[int] = await pipe.execute()
        return sum(removed)

    async def browse_packets(
        self, *, namespace: str | None = None, limit: int = 100
    ) -> list[LoggedPacket]:
        link = await self._link()
        if namespace is not None:
            names = [namespace]
        else:
            names = [_text(name) for name in await link.client.smembers(self._namespaces_key)]
        async with link.client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.xrevrange(self._log_key(name), count=limit)
            replies = await pipe.execute()
        found = [
            (_id(id_), name, id_, fields)
            for name, entries in zip(names, replies, strict=True)
            for id_, fields in entries
        ]
        found.sort(key=lambda item: item[0], reverse=True)
        return [
            LoggedPacket(id_.decode(), _record(name, fields), parsed[0] / 1000)
            for parsed, name, id_, fields in found[:limit]
        ]

    async def browse_sessions(
        self, *, namespace: str | None = None, search: str | None = None, limit: int = 100
    ) -> list[KeptSession]:
        client = (await self._link()).client
        now = time.time()
        found: list[KeptSession] = []
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self._session_key("")) + "*"
        cursor: int | None = None
        while cursor != 0:  # a page of keys a round trip, however many sessions there are
            cursor, keys = await client.scan(cursor or 0, match=pattern, count=1000)
            async with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.get(key)
                    pipe.pttl(key)
                replies = await pipe.execute()
            for value, ttl in zip(replies[::2], replies[1::2], strict=True):
                if value is None or ttl <= 0:  # taken or expired since the scan
                    continue
                session = _session(value)
                if namespace is not None and session.namespace != namespace:
                    continue
                if search and not (
                    session.pid.startswith(search) or session.sid.startswith(search)
                ):
                    continue
                found.append(KeptSession(session, now + ttl / 1000))
        found.sort(key=lambda kept: -kept.expires)
        return found[:limit]

    async def close(self) -> None:
        """Finish the writes in flight, then close the clients: this loop's now, another
        running loop's on that loop; a stopped loop's closes when that loop shuts down."""
        await super().close()
        await self._links.close()
