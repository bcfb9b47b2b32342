"""Alarm life cycle: raised once (a warning, ``leak_detected``), seen again silently (count,
last seen), resolved when its finding is gone (info, ``leak_resolved``), raised anew as a new
row after that; a rule that listed only part of its findings resolves nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from channels_sio.models import Alarm
from channels_sio.monitoring import alarms
from channels_sio.monitoring.rules import RULES, Evaluation, Finding
from channels_sio.signals import leak_detected, leak_resolved

pytestmark = pytest.mark.django_db(databases="__all__")

Kind = Alarm.Kind


@pytest.fixture
def received() -> Iterator[list[tuple[str, Alarm]]]:
    """The signals sent while the test runs: ("detected" | "resolved", alarm)."""
    got: list[tuple[str, Alarm]] = []

    def detected(sender: Any, alarm: Alarm, **kwargs: Any) -> None:
        assert sender is Alarm
        got.append(("detected", alarm))

    def resolved(sender: Any, alarm: Alarm, **kwargs: Any) -> None:
        got.append(("resolved", alarm))

    leak_detected.connect(detected)
    leak_resolved.connect(resolved)
    yield got
    leak_detected.disconnect(detected)
    leak_resolved.disconnect(resolved)


def duplicate(*sids: str) -> Finding:
    return Finding(
        Kind.DUPLICATE,
        "address:10.0.0.1|ua",
        Alarm.Severity.WARNING,
        "n1",
        sids,
        {"sessions": len(sids)},
    )


def run(using: str, *findings: Finding, at: float = 0.0, complete: bool = True) -> alarms.Outcome:
    """One evaluation that found ``findings``, ``at`` seconds after a fixed time."""
    now = START + timedelta(seconds=at)
    evaluation = Evaluation(list(findings), set(RULES) if complete else set())
    with transaction.atomic(using=using):
        outcome = alarms.reconcile(using, evaluation, now)
    alarms.announce(outcome)
    return outcome


START = timezone.now()


def test_an_alarm_is_raised_seen_and_resolved_once_each(
    using: str, received: list[tuple[str, Alarm]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="channels_sio.monitoring")
    run(using, duplicate("a", "b"), at=0)
    [alarm] = Alarm.objects.using(using).all()
    assert (alarm.kind, alarm.severity, alarm.node) == ("duplicate", "warning", "n1")
    assert (alarm.count, alarm.sids, alarm.resolved_at) == (1, ["a", "b"], None)
    assert alarm.first_seen == alarm.last_seen == START
    assert [(what, a.pk) for what, a in received] == [("detected", alarm.pk)]
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "duplicate client (warning): 2 live sessions of address:10.0.0.1|ua" in warning.message

    caplog.clear()
    run(using, duplicate("a", "b", "c"), at=1)
    run(using, duplicate("a", "b", "c"), at=2)
    alarm.refresh_from_db(using=using)
    assert (alarm.count, alarm.sids, alarm.details) == (3, ["a", "b", "c"], {"sessions": 3})
    assert (alarm.first_seen, alarm.last_seen) == (START, START + timedelta(seconds=2))
    assert len(received) == 1, "no signal while it lasts"
    assert caplog.records == [], "no log while it lasts"

    run(using, at=3)
    alarm.refresh_from_db(using=using)
    assert alarm.resolved_at == START + timedelta(seconds=3)
    assert not alarm.is_open
    assert [(what, a.pk) for what, a in received][1:] == [("resolved", alarm.pk)]
    [info] = caplog.records
    assert info.levelno == logging.INFO
    assert "leak alarm resolved" in info.message

    run(using, at=4)
    assert len(received) == 2

    # Found again: a new incident, a new row.
    run(using, duplicate("d", "e"), at=5)
    assert Alarm.objects.using(using).count() == 2
    latest = Alarm.objects.using(using).get(resolved_at__isnull=True)
    assert (latest.count, latest.first_seen) == (1, START + timedelta(seconds=5))
    assert received[-1] == ("detected", latest)


def test_one_alarm_per_kind_and_fingerprint(using: str, received: list[tuple[str, Alarm]]) -> None:
    zombie = Finding(Kind.ZOMBIE, "sid-1", "critical", "n1", ("sid-1",))
    stuck = Finding(Kind.STUCK, "sid-1", "warning", "n1", ("sid-1",))
    run(using, zombie, stuck, zombie, at=0)
    assert sorted(Alarm.objects.using(using).values_list("kind", flat=True)) == [
        "stuck",
        "zombie",
    ]
    run(using, zombie, at=1)
    assert [what for what, _ in received] == ["detected", "detected", "resolved"]
    assert received[-1][1].kind == "stuck"


def test_an_incomplete_rule_resolves_none_of_its_alarms(
    using: str, received: list[tuple[str, Alarm]]
) -> None:
    run(using, duplicate("a", "b"), at=0)
    run(using, at=1, complete=False)
    assert Alarm.objects.using(using).get().resolved_at is None
    assert len(received) == 1


def test_a_failing_receiver_is_logged_and_the_others_run(
    using: str, received: list[tuple[str, Alarm]], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(sender: Any, alarm: Alarm, **kwargs: Any) -> None:
        raise RuntimeError("the mail server is down")

    leak_detected.connect(broken)
    try:
        run(using, duplicate("a", "b"))
    finally:
        leak_detected.disconnect(broken)
    assert [what for what, _ in received] == ["detected"]
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.name == "django.dispatch"
    assert error.exc_info is not None
    assert "the mail server is down" in str(error.exc_info[1])
