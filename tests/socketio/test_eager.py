"""EagerStarter: handlers run at once up to their first wait, in a task that is theirs."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

import pytest

from channels_sio.socketio.eager import EagerStarter
from channels_sio.tasks import OwnedTasks

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="caller")


class Owner(OwnedTasks):
    """The server's tasks, as it makes them, with the failures they log kept to look at."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("channels_sio.socketio"), "Socket.IO task failed")
        self.failures: list[BaseException] = []

    def failed(self, exc: BaseException) -> None:
        self.failures.append(exc)
        super().failed(exc)

    async def stop(self) -> None:
        await asyncio.gather(*self.cancel(), return_exceptions=True)


@pytest.fixture
def owner() -> Owner:
    return Owner()


@pytest.fixture
async def starter(owner: Owner) -> Any:
    """A starter whose runner has parked."""
    starter = EagerStarter(owner)
    unstarted = _noop()
    assert not starter.start(unstarted)  # no runner parked yet: the caller makes a task
    unstarted.close()
    await asyncio.sleep(0)  # the runner parks
    assert starter.parked is not None
    yield starter
    await owner.stop()


@pytest.fixture
def runner(starter: EagerStarter) -> Any:
    """The runner parked in ``starter``."""
    assert starter.parked is not None
    return starter.parked


async def _noop() -> None:
    return None


async def test_the_first_call_parks_a_runner_and_runs_nothing() -> None:
    owner = Owner()
    starter = EagerStarter(owner)
    ran: list[int] = []

    async def handler() -> None:
        ran.append(1)

    coro = handler()
    assert not starter.start(coro)
    assert not ran
    coro.close()
    await asyncio.sleep(0)
    assert starter.parked is not None
    assert starter.parked.task in owner
    await owner.stop()
    assert starter.parked is None  # cancelled while parked: forgotten


async def test_a_handler_that_never_waits_ends_in_the_call_without_a_task(
    starter: EagerStarter, owner: Owner, runner: Any
) -> None:
    seen: list[bool] = []
    caller = asyncio.current_task()

    async def handler() -> None:
        seen.append(asyncio.current_task() is runner.task)

    for _ in range(3):
        assert starter.start(handler())
    # It ran as the parked runner, which stays parked for the next handler.
    assert seen == [True] * 3
    assert starter.idle_task is runner.task
    assert asyncio.current_task() is caller
    assert starter.parked is runner
    assert not runner.task.done()
    assert list(owner) == [runner.task]


@pytest.mark.parametrize("keeps", ["a reference", "a done callback"])
async def test_a_handler_that_keeps_its_task_ends_it_as_its_own_task_would_end(
    starter: EagerStarter, runner: Any, keeps: str
) -> None:
    kept: list[asyncio.Task[Any]] = []
    told: list[asyncio.Task[Any]] = []

    async def handler() -> None:
        task = asyncio.current_task()
        assert task is not None
        if keeps == "a reference":
            kept.append(task)
        else:
            task.add_done_callback(told.append)

    assert starter.start(handler())
    # That runner is not used again: it ends, and another one parks.
    assert starter.parked is None
    await asyncio.wait([runner.task])
    await asyncio.sleep(0)  # its done callbacks' turn
    assert not runner.task.cancelled()
    assert told == ([] if kept else [runner.task])
    assert starter.parked is not None
    assert starter.parked is not runner

    # A later handler that suspends runs in a task of its own, which cancelling the kept
    # one (done) does not reach.
    release: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def later() -> str:
        return await release

    following = starter.parked
    assert starter.start(later())
    runner.task.cancel()
    release.set_result("done")
    assert await following.task == "done"


async def test_a_handler_that_waits_goes_on_in_the_task_it_began_in(
    starter: EagerStarter, runner: Any
) -> None:
    steps: list[tuple[str, Any]] = []
    release: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def handler() -> str:
        steps.append(("before", asyncio.current_task()))
        value = await release
        steps.append((value, asyncio.current_task()))
        return value

    assert starter.start(handler())
    assert steps == [("before", runner.task)]
    # Another runner parks for the next handler.
    assert starter.parked is None
    assert starter.idle_task is None  # the one that runs the handler is busy
    await asyncio.sleep(0)
    assert starter.parked is not None
    assert starter.parked is not runner
    release.set_result("after")
    assert await runner.task == "after"
    assert steps == [("before", runner.task), ("after", runner.task)]


async def test_context_changes_stay_with_the_handler(starter: EagerStarter, runner: Any) -> None:
    seen: list[str] = []
    release: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def handler() -> None:
        VAR.set("handler")
        await release
        seen.append(VAR.get())

    assert starter.start(handler())
    assert VAR.get() == "caller"
    release.set_result(None)
    await runner.task
    assert seen == ["handler"]
    assert VAR.get() == "caller"


@pytest.mark.parametrize("delay", [0, 0.01])
async def test_a_timeout_of_the_handlers_cancels_the_handler_not_the_caller(
    starter: EagerStarter, delay: float, runner: Any
) -> None:
    outcome: list[str] = []

    async def handler() -> None:
        try:
            async with asyncio.timeout(delay):
                await asyncio.Event().wait()
        except TimeoutError:
            outcome.append("timed out")
            await asyncio.sleep(0)  # and it can still wait after
            outcome.append("went on")

    assert starter.start(handler())
    # Not awaiting the task itself: a cancellation of ours would reach it through that.
    await asyncio.wait([runner.task], timeout=5)
    assert outcome == ["timed out", "went on"]
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]


async def test_a_handler_that_fails_at_once_is_logged_not_raised(
    starter: EagerStarter, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler() -> None:
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR, "channels_sio.socketio"):
        assert starter.start(handler())
    assert "Socket.IO task failed" in caplog.text
    assert "boom" in caplog.text
    assert starter.parked is not None


async def test_a_handler_that_fails_after_waiting_fails_its_task(
    starter: EagerStarter, owner: Owner, runner: Any
) -> None:

    async def handler() -> None:
        await asyncio.sleep(0)
        raise ValueError("later")

    assert starter.start(handler())
    with pytest.raises(ValueError, match="later"):
        await runner.task
    assert [str(exc) for exc in owner.failures] == ["later"]


async def test_a_handler_that_cancels_itself_at_once_ends_quietly(
    starter: EagerStarter,
) -> None:
    async def handler() -> None:
        raise asyncio.CancelledError

    assert starter.start(handler())
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_handler_started_by_a_handler_gets_a_task_of_its_own(
    starter: EagerStarter,
) -> None:
    inner_started: list[bool] = []

    async def inner() -> None:
        return None

    async def outer() -> None:
        coro = inner()
        started = starter.start(coro)
        inner_started.append(started)
        if not started:
            coro.close()

    assert starter.start(outer())
    assert inner_started == [False]


async def test_stopping_the_server_cancels_a_waiting_handler(
    starter: EagerStarter, owner: Owner, runner: Any
) -> None:
    cancelled: list[bool] = []

    async def handler() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    assert starter.start(handler())
    await asyncio.sleep(0)
    await owner.stop()
    assert cancelled == [True]
    assert runner.task.cancelled()
