"""WriteGroup, the grouping of the stores' writes: waiters that are futures and waiters that
act at once (a recorded emit's place in its connection's send order), in one batch."""

from __future__ import annotations

import asyncio
import logging

import pytest

from channels_sio.recovery.store import WriteGroup


class Acting:
    """A waiter that acts when completed, writing to ``log``."""

    def __init__(self, name: str, log: list[str], *, fails: bool = False) -> None:
        self.name = name
        self.log = log
        self.fails = fails
        self.outcome: str | None = None

    def done(self) -> bool:
        return self.outcome is not None

    def set_result(self, result: str) -> None:
        self.outcome = result
        self.log.append(f"{self.name} {result}")
        if self.fails:
            raise RuntimeError("a waiter's bug")

    def set_exception(self, exception: BaseException) -> None:
        self.outcome = "error"
        self.log.append(f"{self.name} {exception}")

    def cancel(self) -> None:
        self.outcome = "cancelled"
        self.log.append(f"{self.name} cancelled")


async def numbered(items: list[str]) -> list[str]:
    await asyncio.sleep(0)
    return [f"#{item}" for item in items]


async def test_a_future_earlier_in_the_batch_is_acted_on_before_a_waiter_after_it() -> None:
    group: WriteGroup[str, str] = WriteGroup(numbered, asyncio.get_running_loop())
    log: list[str] = []

    async def broadcast() -> None:
        # What a broadcast does with its offset: deliver, in its own task.
        log.append(f"broadcast {await group.add('a')}")

    task = asyncio.ensure_future(broadcast())
    await asyncio.sleep(0)  # it is queued first
    group.add_waiter("b", Acting("emit", log))
    await task
    await group.close()
    assert log == ["broadcast #a", "emit #b"]


async def test_a_failing_waiter_stops_neither_the_batch_nor_the_group(
    caplog: pytest.LogCaptureFixture,
) -> None:
    group: WriteGroup[str, str] = WriteGroup(numbered, asyncio.get_running_loop())
    log: list[str] = []
    with caplog.at_level(logging.ERROR, "channels_sio.recovery"):
        group.add_waiter("a", Acting("first", log, fails=True))
        group.add_waiter("b", Acting("second", log))
        await group.close()
        assert await group.add("c") == "#c"
    assert log == ["first #a", "second #b"]
    assert "a grouped write's waiter failed" in caplog.text


async def test_a_failed_write_reaches_every_waiter() -> None:
    async def down(items: list[str]) -> list[str]:
        raise ConnectionError("down")

    group: WriteGroup[str, str] = WriteGroup(down, asyncio.get_running_loop())
    log: list[str] = []
    future = group.add("a")
    group.add_waiter("b", Acting("emit", log))
    with pytest.raises(ConnectionError):
        await future
    await group.close()
    assert log == ["emit down"]


async def test_cancelling_the_group_cancels_the_waiters_of_the_write_in_flight_and_queued() -> None:
    release = asyncio.Event()

    async def stuck(items: list[str]) -> list[str]:
        await release.wait()
        return items

    group: WriteGroup[str, str] = WriteGroup(stuck, asyncio.get_running_loop())
    log: list[str] = []
    group.add_waiter("a", Acting("in flight", log))
    await asyncio.sleep(0)
    group.add_waiter("b", Acting("queued", log))
    future = group.add("c")
    flushing = group._task
    assert flushing is not None
    flushing.cancel()
    await asyncio.wait([flushing])
    assert log == ["in flight cancelled", "queued cancelled"]
    assert future.cancelled()
