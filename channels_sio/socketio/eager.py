"""Handlers started eagerly on Python 3.11, as Python 3.12's eager tasks start them: the first
step of a handler's coroutine runs at once, in the caller, so that a handler that never
suspends (most do not) costs no task and no turn of the event loop.

During that step the current task (what ``asyncio.current_task()`` gives, and what
``asyncio.timeout()`` cancels) is a runner task parked for the purpose. A handler that
suspends goes on in that same task, so what it took for its own task stays true, and another
runner is parked for the next handler. A handler that ends at once but kept its task (a
reference, a done callback) ends that task too, and another runner parks. Until one is
parked, handlers start as tasks.
"""

from __future__ import annotations

import asyncio
import contextvars
import types
from asyncio.tasks import _enter_task, _leave_task
from collections.abc import Coroutine, Generator
from sys import getrefcount
from typing import Any

from ..tasks import OwnedTasks

__all__ = ["EagerStarter"]

#: What a handler's first step gives when it ran to its end (it yields no such object).
_ENDED = object()


def _callback_count(task: asyncio.Task[Any]) -> int:
    # The C task's list of done callbacks, which its public API does not show.
    callbacks = getattr(task, "_callbacks", None)
    return len(callbacks) if callbacks else 0


#: A suspended handler: its coroutine, what it yielded (a future, or None for a bare turn of
#: the loop), and the context its steps run in.
_Suspended = tuple[Coroutine[Any, Any, Any], Any, contextvars.Context]


class EagerStarter:
    """Starts handler coroutines for one server, on one event loop at a time.

    ``tasks`` owns each runner task (the server's: they are cancelled on shutdown), and logs
    a handler that fails in its first step as it would the handler's own task.
    """

    def __init__(self, tasks: OwnedTasks) -> None:
        self._tasks = tasks
        #: The runner waiting for a handler, once it has parked; None until then.
        self.parked: _Runner | None = None
        self._parking: _Runner | None = None

    def start(self, coro: Coroutine[Any, Any, Any]) -> bool:
        """Run ``coro`` up to its first suspension, as a task would; False (and nothing run)
        when no runner is parked yet on this loop, so the caller starts a task instead."""
        loop = asyncio.get_running_loop()
        runner = self.parked
        if runner is None or runner.loop is not loop:
            self._park(loop)
            return False
        task = runner.task
        current = asyncio.current_task(loop)
        if current is task:
            return False  # started by a handler's own first step: a task of its own
        context = contextvars.copy_context()
        references = getrefcount(task)
        if current is not None:
            _leave_task(loop, current)
        _enter_task(loop, task)
        try:
            yielded = context.run(coro.send, None)
        except StopIteration:
            yielded = _ENDED
        except asyncio.CancelledError:
            yielded = _ENDED  # it cancelled itself: its task would have ended so, silently
        except Exception as exc:
            self._tasks.failed(exc)
            yielded = _ENDED
        finally:
            _leave_task(loop, task)
            if current is not None:
                _enter_task(loop, current)
        if yielded is _ENDED:
            if getrefcount(task) != references or runner.callbacks != _callback_count(task):
                # The handler kept its task (to cancel it later, to be told when it ends):
                # that task ends now, as the handler's own would have, and is never reused.
                self._retire(runner, loop)
            return True
        # Suspended: the runner goes on with it, as its task, and another one parks.
        self.parked = None
        runner.go_on((coro, yielded, context))
        self._park(loop)
        return True

    def _retire(self, runner: _Runner, loop: asyncio.AbstractEventLoop) -> None:
        self.parked = None
        runner.go_on(None)
        self._park(loop)

    @property
    def idle_task(self) -> asyncio.Task[Any] | None:
        """The parked runner's task, which waits for a handler: one at most, not a leak."""
        return self.parked.task if self.parked is not None else None

    def _park(self, loop: asyncio.AbstractEventLoop) -> None:
        parking = self._parking
        if parking is None or parking.loop is not loop or parking.task.done():
            self._parking = _Runner(self, loop)
            self._tasks.own(self._parking.task)

    def _parked(self, runner: _Runner) -> None:
        if self._parking is runner:
            self._parking = None
            self.parked = runner
            runner.callbacks = _callback_count(runner.task)

    def _gone(self, runner: _Runner) -> None:
        if self.parked is runner:
            self.parked = None
        if self._parking is runner:
            self._parking = None


class _Runner:
    """A task that parks until a handler started as it suspends, then runs the rest of it."""

    __slots__ = ("_wake", "callbacks", "loop", "task")

    def __init__(self, starter: EagerStarter, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        #: How many done callbacks its task has while parked (its owner's).
        self.callbacks = 0
        self._wake: asyncio.Future[_Suspended | None] = loop.create_future()
        self.task = loop.create_task(self._run(starter))

    def go_on(self, suspended: _Suspended | None) -> None:
        """Go on with a suspended handler; with None, end (retired)."""
        self._wake.set_result(suspended)

    async def _run(self, starter: EagerStarter) -> Any:
        starter._parked(self)
        wake = self._wake
        try:
            suspended = await wake
        except asyncio.CancelledError:
            # The wait itself is cancelled when this task is cancelled while parked (the
            # server is stopping); one retired meanwhile has nothing to go on with.
            suspended = None if wake.cancelled() else wake.result()
            if suspended is None:
                starter._gone(self)
                raise
            # Cancelled after its handler suspended, before this task took it over (an
            # asyncio.timeout() of the handler's that expired at once): the cancellation is
            # the handler's, as it would have been had it run in a task from the start.
            coro, yielded, context = suspended
            if not (isinstance(yielded, asyncio.Future) and yielded.cancel()):
                return await _follow(coro, context, None, asyncio.CancelledError())
        if suspended is None:
            return None  # retired
        coro, yielded, context = suspended
        return await _follow(coro, context, yielded)


@types.coroutine
def _follow(
    coro: Coroutine[Any, Any, Any],
    context: contextvars.Context,
    yielded: Any,
    error: BaseException | None = None,
) -> Generator[Any, Any, Any]:
    """The rest of a suspended coroutine, in the task that awaits this: what it yields goes to
    the task, what the task sends or throws goes to it, each step in its own context."""
    run, send, throw = context.run, coro.send, coro.throw
    try:
        if error is not None:
            yielded = run(throw, error)
        while True:
            try:
                value = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                yielded = run(throw, exc)
            else:
                yielded = run(send, value)
    except StopIteration as stop:
        return stop.value
