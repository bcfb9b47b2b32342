"""A store's connections, one per event loop: made on a loop's first use, closed when that
loop ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["PerLoop"]

C = TypeVar("C")


class PerLoop(Generic[C]):
    """One ``C`` per event loop, made by ``make`` on that loop's first :meth:`get`, and closed
    by ``close`` when the loop finalizes its async generators (``asyncio.run`` and asgiref's
    ``async_to_sync`` do, as they end): the connection of a short-lived loop, such as one a
    sync caller ran, closes with it rather than leaking. Connections belong to their loop: the
    stores serve the server's, and now and then another one."""

    def __init__(self, make: Callable[[], C], close: Callable[[C], Awaitable[None]]) -> None:
        self._make = make
        self._close = close
        self._held: dict[asyncio.AbstractEventLoop, tuple[C, AsyncGenerator[None, None]]] = {}

    def loops(self) -> list[asyncio.AbstractEventLoop]:
        """The loops that hold one now."""
        return list(self._held)

    async def get(self) -> C:
        """The running loop's, made now if it has none."""
        loop = asyncio.get_running_loop()
        held = self._held.get(loop)
        if held is not None:
            return held[0]
        made = self._make()
        closer = self._close_at_end(loop, made)
        self._held[loop] = (made, closer)
        await anext(closer)  # ties it to the loop's end
        return made

    async def close(self) -> None:
        """Close this loop's now, another running loop's on that loop; a stopped loop's
        closes when that loop shuts down. A later :meth:`get` makes another."""
        current = asyncio.get_running_loop()
        for loop, (_, closer) in list(self._held.items()):
            if loop is current:
                await closer.aclose()
            elif loop.is_running():
                ending = asyncio.run_coroutine_threadsafe(_end(closer), loop)
                await asyncio.wrap_future(ending)

    async def _close_at_end(
        self, loop: asyncio.AbstractEventLoop, made: C
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            held = self._held.get(loop)
            if held is not None and held[0] is made:
                del self._held[loop]
            await self._close(made)


async def _end(closer: AsyncGenerator[None, None]) -> None:
    await closer.aclose()
