"""A Redis store whose packet writes wait until a test lets them land (the store option
``gate``: a key of the store's Redis that the test sets), for the race of a restore that reads
the log while a write is in flight, across processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from channels_sio.recovery import PacketRecord
from channels_sio.recovery.redis import RedisStore

#: The longest a write waits for its gate: a test that never opens it fails, rather than hangs.
GATE_TIMEOUT = 30.0


class SlowRedisStore(RedisStore):
    def __init__(self, *, gate: str, **options: Any) -> None:
        super().__init__(**options)
        self.gate = gate

    async def append(self, packets: Sequence[PacketRecord]) -> list[str]:
        link = await self._link()
        deadline = time.monotonic() + GATE_TIMEOUT
        # The gate is set by the test's process: polled.
        while not await link.client.exists(self.gate) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return await super().append(packets)
