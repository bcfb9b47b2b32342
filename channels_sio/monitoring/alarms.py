"""Alarm life cycle: the findings of an evaluation against the open alarms.

* a finding with no open alarm of its kind and fingerprint opens one (first and last seen now,
  count 1), logged once as a warning, and sent as ``leak_detected``;
* a finding with an open alarm updates it (last seen, count + 1, the sids and details of now),
  silently;
* an open alarm whose finding is gone is resolved (``resolved_at``), logged at info, and sent
  as ``leak_resolved``, unless its rule listed only part of its findings this time.

:func:`reconcile` writes (four statements at most, in the caller's transaction);
:func:`announce` logs and sends the signals, once the caller committed, from the thread that
evaluated (the monitor's thread: see :mod:`channels_sio.signals`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connections
from django.dispatch import Signal

from ..models import Alarm
from ..signals import leak_detected, leak_resolved
from .registry import batches
from .rules import Evaluation

__all__ = ["Outcome", "announce", "describe", "reconcile"]

logger = logging.getLogger("channels_sio.monitoring")

_SEEN_FIELDS = ["severity", "node", "sids", "details", "last_seen", "count"]


@dataclass
class Outcome:
    """The alarms an evaluation opened and resolved, to announce after its commit."""

    raised: list[Alarm] = field(default_factory=list)
    resolved: list[Alarm] = field(default_factory=list)


def reconcile(using: str, evaluation: Evaluation, now: datetime) -> Outcome:
    """Open, update and resolve alarms after ``evaluation``, at ``now``."""
    alarms = Alarm.objects.using(using)
    open_alarms = {
        (alarm.kind, alarm.fingerprint): alarm for alarm in alarms.filter(resolved_at__isnull=True)
    }
    outcome = Outcome()
    seen: list[Alarm] = []
    for finding in {finding.key: finding for finding in evaluation.findings}.values():
        alarm = open_alarms.pop(finding.key, None)
        if alarm is None:
            outcome.raised.append(
                Alarm(
                    kind=finding.kind,
                    severity=finding.severity,
                    fingerprint=finding.fingerprint[:255],
                    node=finding.node[:16],
                    sids=list(finding.sids),
                    details=finding.details,
                    first_seen=now,
                    last_seen=now,
                    count=1,
                )
            )
            continue
        alarm.severity = finding.severity
        alarm.node = finding.node[:16]
        alarm.sids = list(finding.sids)
        alarm.details = finding.details
        alarm.last_seen = now
        alarm.count += 1
        seen.append(alarm)
    for (kind, _), alarm in open_alarms.items():
        if kind in evaluation.complete:
            alarm.resolved_at = now
            outcome.resolved.append(alarm)
    if outcome.raised:
        if connections[using].features.can_return_rows_from_bulk_insert:
            alarms.bulk_create(outcome.raised)
        else:
            # The signals carry the rows with their ids; MySQL gives none from a bulk insert.
            for alarm in outcome.raised:
                alarm.save(using=using, force_insert=True)
    if seen:
        alarms.bulk_update(seen, _SEEN_FIELDS, batch_size=100)
    for chunk in batches([alarm.pk for alarm in outcome.resolved]):
        alarms.filter(pk__in=chunk).update(resolved_at=now)
    return outcome


def describe(alarm: Alarm) -> str:
    """One line about ``alarm``, for logs and the status command."""
    details: dict[str, Any] = alarm.details if isinstance(alarm.details, dict) else {}
    kind = Alarm.Kind
    if alarm.kind == kind.ZOMBIE:
        what = f"session {alarm.fingerprint} silent for {details.get('silent_s')}s"
    elif alarm.kind == kind.ORPHAN:
        what = f"{len(details.get('orphans', ()))} orphan(s) on node {alarm.fingerprint}"
    elif alarm.kind == kind.DUPLICATE:
        what = f"{details.get('sessions')} live sessions of {alarm.fingerprint}"
    elif alarm.kind == kind.STORM:
        what = (
            f"{details.get('events')} parse errors and refusals from {alarm.fingerprint} "
            f"within {details.get('window_s')}s"
        )
    elif alarm.kind == kind.STUCK:
        what = f"session {alarm.fingerprint}: {details.get('reason')}"
    elif alarm.kind == kind.NODE_GONE:
        what = (
            f"node {alarm.fingerprint} ({details.get('host')}:{details.get('pid')}) stopped "
            f"heartbeating with {details.get('sessions')} session(s)"
        )
    elif alarm.kind == kind.SLOW_CONSUMER:
        what = (
            f"{details.get('closed')} session(s) of {alarm.fingerprint} closed for a full "
            f"send queue within {details.get('window_s')}s"
        )
    else:
        what = alarm.fingerprint
    return f"{alarm.get_kind_display()} ({alarm.severity}): {what}"


def announce(outcome: Outcome) -> None:
    """Log each alarm raised (warning) and resolved (info), and send its signal. A receiver
    that raises is logged (by Django, to ``django.dispatch``); the others still run."""
    for alarm in outcome.raised:
        logger.warning("leak alarm raised: %s", describe(alarm))
        _send(leak_detected, alarm)
    for alarm in outcome.resolved:
        logger.info("leak alarm resolved: %s", describe(alarm))
        _send(leak_resolved, alarm)


def _send(signal: Signal, alarm: Alarm) -> None:
    # send_robust logs a receiver's exception, with its traceback, to "django.dispatch".
    signal.send_robust(sender=Alarm, alarm=alarm)
