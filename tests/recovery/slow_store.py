"""A Redis store whose packet writes land ``delay`` seconds late (store option), for the race
of a restore that reads the log while a write is in flight, across processes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from channels_sio.recovery import PacketRecord
from channels_sio.recovery.redis import RedisStore


class SlowRedisStore(RedisStore):
    def __init__(self, *, delay: float = 1.0, **options: Any) -> None:
        super().__init__(**options)
        self.delay = delay

    async def append(self, packets: Sequence[PacketRecord]) -> list[str]:
        await asyncio.sleep(self.delay)
        return await super().append(packets)
