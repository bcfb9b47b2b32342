"""The rules lease: one holder at a time, renewed by its holder, taken over once expired,
given up on a clean stop; on PostgreSQL, nodes racing for a free lease get it exactly once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from channels_sio.models import Lease
from channels_sio.monitoring import lease

from .conftest import require_postgres

NAME = lease.RULES_LEASE


@pytest.mark.django_db(databases="__all__")
def test_one_holder_at_a_time_until_it_expires(using: str) -> None:
    now = timezone.now()
    second = timedelta(seconds=1)

    def take(holder: str, at: float) -> bool:
        moment = now + at * second
        return lease.take(using, NAME, holder, moment, moment + 3 * second)

    assert take("a", 0)
    assert not take("b", 0.5)
    assert take("a", 1)  # renewed: now until 4 s
    assert not take("b", 3.5)
    assert take("b", 4.5)  # expired: taken over
    assert not take("a", 5)
    row = Lease.objects.using(using).get(name=NAME)
    assert (row.holder, row.expires_at) == ("b", now + 7.5 * second)
    lease.release(using, NAME, "a")  # not a's: nothing happens
    assert Lease.objects.using(using).filter(holder="b").exists()
    lease.release(using, NAME, "b")
    assert not Lease.objects.using(using).exists()
    assert take("a", 6)  # free at once


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_nodes_racing_for_a_free_lease_get_it_once() -> None:
    require_postgres()
    holders = [f"node-{n}" for n in range(8)]
    start = threading.Barrier(len(holders))
    now = timezone.now()

    def race(holder: str) -> bool:
        try:
            start.wait()
            return lease.take("postgres", NAME, holder, now, now + timedelta(seconds=3))
        finally:
            connections["postgres"].close()

    for _ in range(5):
        Lease.objects.using("postgres").all().delete()
        with ThreadPoolExecutor(len(holders)) as pool:
            won = [h for h, ok in zip(holders, pool.map(race, holders), strict=True) if ok]
        assert len(won) == 1, won
        assert Lease.objects.using("postgres").get(name=NAME).holder == won[0]
    # Expired: the racers take it over once too.
    Lease.objects.using("postgres").update(expires_at=now - timedelta(seconds=1))
    with ThreadPoolExecutor(len(holders)) as pool:
        assert sum(pool.map(race, holders)) == 1
