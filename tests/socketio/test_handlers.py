"""Which handlers cannot wait, and running them at once (channels_sio.socketio.handlers)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from channels_sio.socketio.handlers import Handlers, cannot_wait, run_at_once


async def returns(x: Any) -> Any:
    return x


async def raises(x: Any) -> Any:
    raise LookupError(x)


async def calls_but_never_awaits(x: Any) -> Any:
    return [str(x), len(str(x)), returns]  # a coroutine function named, not called


async def awaits(x: Any) -> Any:
    await asyncio.sleep(0)
    return x


async def uses_async_with(lock: asyncio.Lock) -> None:
    async with lock:
        pass


async def uses_async_for(items: AsyncIterator[int]) -> list[int]:
    result = []
    async for item in items:
        result.append(item)
    return result


async def uses_async_comprehension(items: AsyncIterator[int]) -> list[int]:
    return [item async for item in items]


async def awaits_in_a_comprehension(coros: list[Any]) -> list[Any]:
    return [await coro for coro in coros]


async def awaits_in_dead_code(x: Any) -> Any:
    if x is None:
        await asyncio.sleep(0)  # never runs here, but could: the handler can wait
    return x


def plain(x: Any) -> Any:
    return x


async def defines_a_waiting_inner(x: Any) -> Any:
    async def inner() -> None:
        await asyncio.sleep(0)

    return inner  # the inner function's await is not this handler's


class Methods:
    async def returns(self, x: Any) -> Any:
        return x

    async def awaits(self, x: Any) -> Any:
        await asyncio.sleep(0)
        return x

    async def __call__(self, x: Any) -> Any:
        return x


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        pytest.param(returns, True, id="returns"),
        pytest.param(raises, True, id="raises"),
        pytest.param(calls_but_never_awaits, True, id="no-await"),
        pytest.param(defines_a_waiting_inner, True, id="inner-function-awaits"),
        pytest.param(Methods().returns, True, id="method"),
        pytest.param(awaits, False, id="await"),
        pytest.param(uses_async_with, False, id="async-with"),
        pytest.param(uses_async_for, False, id="async-for"),
        pytest.param(uses_async_comprehension, False, id="async-comprehension"),
        pytest.param(awaits_in_a_comprehension, False, id="await-in-comprehension"),
        pytest.param(awaits_in_dead_code, False, id="await-not-reached"),
        pytest.param(Methods().awaits, False, id="method-awaits"),
        pytest.param(plain, False, id="plain-def"),
        pytest.param(lambda x: x, False, id="lambda"),
        pytest.param(functools.partial(returns, 1), False, id="partial"),
        pytest.param(Methods(), False, id="async-call-object"),
    ],
)
def test_cannot_wait(handler: Any, expected: bool) -> None:
    assert cannot_wait(handler) is expected


def test_run_at_once_returns_the_result() -> None:
    assert run_at_once(returns, 42) == 42
    assert run_at_once(Methods().returns, "x") == "x"


def test_run_at_once_raises_what_the_handler_raises() -> None:
    with pytest.raises(LookupError, match="key"):
        run_at_once(raises, "key")


def test_run_at_once_with_wrong_arguments_raises_type_error() -> None:
    with pytest.raises(TypeError):
        run_at_once(returns, 1, 2)


VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="outside")


async def sets_var(value: str) -> str:
    previous = VAR.get()
    VAR.set(value)
    return previous


def test_run_at_once_keeps_context_variables_to_the_handler() -> None:
    assert run_at_once(sets_var, "inside") == "outside"
    assert VAR.get() == "outside"


def test_run_at_once_refuses_a_handler_that_suspends() -> None:
    """Only reachable by misuse: such a handler is closed, not left half-run."""
    with pytest.raises(RuntimeError, match="suspended"):
        run_at_once(awaits, 1)


def test_registry_knows_which_handlers_run_at_once() -> None:
    handlers = Handlers()
    handlers.register("quick", returns)
    handlers.register("slow", awaits)
    handlers.register("sync", plain)
    assert handlers.runs_at_once(returns)
    assert not handlers.runs_at_once(awaits)
    assert not handlers.runs_at_once(plain)
    assert not handlers.runs_at_once(sets_var)  # never registered
