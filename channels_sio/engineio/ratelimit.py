"""A per-address limit on new sessions: a token bucket per address, kept in bounded memory."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["HandshakeLimiter"]


class HandshakeLimiter:
    """At most ``handshakes`` new sessions per address per ``window`` milliseconds.

    Each address has a bucket of ``handshakes`` tokens that refills evenly over ``window``; a
    handshake takes one token, and is refused when none is left. So a client may open its
    sessions in a burst, and then one every ``window / handshakes``. The table holds at most
    ``max_addresses`` addresses: past that, the one seen least recently is forgotten (it starts
    again with a full bucket), so a flood of addresses costs bounded memory. The limit is this
    process's: with several worker processes, a client that lands on each of them may open up to
    that many times more.
    """

    def __init__(
        self,
        handshakes: int,
        window: int,
        *,
        max_addresses: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if handshakes <= 0 or window <= 0 or max_addresses <= 0:
            raise ValueError("handshakes, window and max_addresses must be positive")
        self.capacity = float(handshakes)
        self.per_second = handshakes / (window / 1000)
        self.max_addresses = max_addresses
        self._clock = clock
        # address -> (tokens left, when they were counted); in the order last seen.
        self._buckets: dict[str, tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, address: str) -> float:
        """Take a token for ``address``: 0.0 if it had one, otherwise the seconds until it will."""
        now = self._clock()
        bucket = self._buckets.pop(address, None)
        if bucket is None:
            tokens = self.capacity
        else:
            left, then = bucket
            tokens = min(self.capacity, left + (now - then) * self.per_second)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.per_second
        self._buckets[address] = (tokens, now)  # re-inserted last: the most recently seen
        if len(self._buckets) > self.max_addresses:
            del self._buckets[next(iter(self._buckets))]
        return wait
