"""OwnedTasks: an owner's background tasks, kept while they run, failures logged, cancelled."""

from __future__ import annotations

import asyncio
import logging

import pytest

from channels_sio.tasks import OwnedTasks

logger = logging.getLogger("channels_sio.tests.tasks")


async def test_a_task_is_kept_while_it_runs_and_let_go_when_it_ends() -> None:
    tasks = OwnedTasks(logger, "failed")
    release = asyncio.Event()
    first = tasks.spawn(release.wait())
    second = tasks.spawn(release.wait())
    assert list(tasks) == [first, second]  # in the order they started
    assert len(tasks) == 2
    release.set()
    await asyncio.wait([first, second])
    await asyncio.sleep(0)  # the done callbacks
    assert len(tasks) == 0
    assert not tasks


async def test_a_failure_is_logged_with_the_owners_message_and_the_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = OwnedTasks(logger, "session %s: background task failed", "abc")

    async def fail() -> None:
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR, logger.name):
        task = tasks.spawn(fail())
        await asyncio.wait([task])
        await asyncio.sleep(0)
    [record] = caplog.records
    assert record.getMessage() == "session abc: background task failed"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)
    assert not tasks


async def test_a_cancelled_or_successful_task_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = OwnedTasks(logger, "failed")
    with caplog.at_level(logging.DEBUG, logger.name):
        waiting = tasks.spawn(asyncio.Event().wait())
        done = tasks.spawn(asyncio.sleep(0))
        await asyncio.wait([done])
        await asyncio.sleep(0)  # its done callback
        assert tasks.cancel() == [waiting]  # the one still running; the other has ended
        await asyncio.wait([waiting])
        await asyncio.sleep(0)
    assert waiting.cancelled()
    assert caplog.records == []
    assert not tasks


async def test_cancel_spares_the_task_it_is_called_from() -> None:
    tasks = OwnedTasks(logger, "failed")
    other = tasks.spawn(asyncio.Event().wait())
    cancelled: list[asyncio.Task[object]] = []

    async def closing() -> None:
        await asyncio.sleep(0)
        cancelled.extend(tasks.cancel())

    itself = tasks.spawn(closing())
    await asyncio.wait([itself, other])
    assert cancelled == [other]
    assert other.cancelled()
    assert not itself.cancelled()


async def test_a_task_made_elsewhere_is_owned_too() -> None:
    tasks = OwnedTasks(logger, "failed")
    task = asyncio.get_running_loop().create_task(asyncio.sleep(0))
    tasks.own(task)
    assert list(tasks) == [task]
    await task
    await asyncio.sleep(0)
    assert not tasks
