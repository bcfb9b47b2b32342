"""HandshakeLimiter: a token bucket per address, in bounded memory, on a clock the test turns."""

from __future__ import annotations

import pytest

from channels_sio.engineio.ratelimit import HandshakeLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_up_to_the_limit_then_one_per_share_of_the_window() -> None:
    clock = Clock()
    limiter = HandshakeLimiter(3, 6_000, clock=clock)  # a token every 2 s
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(2.0)
    clock.now += 1.0
    assert limiter.take("a") == pytest.approx(1.0)  # refused attempts cost nothing
    clock.now += 1.0
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(2.0)
    # After a whole window the bucket is full again, never fuller.
    clock.now += 60.0
    assert [limiter.take("a") for _ in range(4)][-2:] == [0.0, pytest.approx(2.0)]


def test_addresses_have_buckets_of_their_own() -> None:
    limiter = HandshakeLimiter(1, 10_000, clock=Clock())
    assert limiter.take("10.0.0.1") == 0.0
    assert limiter.take("10.0.0.1") > 0
    assert limiter.take("10.0.0.2") == 0.0
    assert limiter.take("::1") == 0.0


def test_the_table_is_bounded_and_forgets_the_address_seen_least_recently() -> None:
    limiter = HandshakeLimiter(1, 10_000, max_addresses=3, clock=Clock())
    for address in ("a", "b", "c"):
        limiter.take(address)
    assert limiter.take("a") > 0  # "a" is now the most recent; "b" the least
    limiter.take("d")
    assert len(limiter) == 3
    assert limiter.take("b") == 0.0  # forgotten, so full again (and "c" goes)
    assert limiter.take("a") > 0
    assert limiter.take("d") > 0
    for n in range(10_000):
        limiter.take(f"flood-{n}")
    assert len(limiter) == 3


@pytest.mark.parametrize("args", [(0, 1), (1, 0), (-1, 1)])
def test_values_must_be_positive(args: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        HandshakeLimiter(*args)
