"""Leases in the database: one node at a time does a job (the leak rules' evaluation).

A lease is a row (:class:`~channels_sio.models.Lease`) naming its holder until ``expires_at``.
Its holder renews it before it expires; when the holder stops renewing (a crash, a stall), any
node takes it once it expired. Taking is one UPDATE, and an INSERT when there was no row; two
nodes racing for a free lease both run the UPDATE, and the database's row lock lets exactly one
of them see the old row. Clocks: expiry is compared with the taker's clock, so hosts need
clocks within a fraction of the lease (NTP does it); at worst two nodes evaluate the rules
for a moment, which repeats a count, never an alarm.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q

from ..models import Lease

__all__ = ["RULES_LEASE", "release", "take"]

#: The lease of the leak rules.
RULES_LEASE = "leak-rules"


def take(using: str, name: str, holder: str, now: datetime, expires_at: datetime) -> bool:
    """Take or renew lease ``name`` for ``holder`` until ``expires_at``; whether it is
    ``holder``'s now. Runs in its own transaction (a savepoint inside one)."""
    leases = Lease.objects.using(using).filter(name=name)
    with transaction.atomic(using=using):
        free = Q(expires_at__lt=now) | Q(holder=holder)
        if leases.filter(free).update(holder=holder, expires_at=expires_at):
            return True
        if leases.exists():
            return False  # another holder's, not expired
        try:
            with transaction.atomic(using=using):
                Lease.objects.using(using).create(name=name, holder=holder, expires_at=expires_at)
        except IntegrityError:
            return False  # another node inserted it first
    return True


def release(using: str, name: str, holder: str) -> None:
    """Give lease ``name`` up, if ``holder`` has it: another node takes it at once."""
    Lease.objects.using(using).filter(name=name, holder=holder).delete()
