"""Receivers of the leak signals in the scenarios' server processes (a handler module of
settings_monitoring): each reads its alarm back through the ORM, as a user's receiver that
mails or pages would, and logs a line the tests look for in the server's log."""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.dispatch import receiver

from channels_sio.models import Alarm
from channels_sio.signals import leak_detected, leak_resolved

logger = logging.getLogger("tests.monitoring")


def _line(signal: str, alarm: Alarm) -> None:
    stored = Alarm.objects.filter(pk=alarm.pk).values_list("resolved_at", flat=True).first()
    logger.info(
        "signal %s %s %s resolved=%s thread=%s",
        signal,
        alarm.kind,
        alarm.fingerprint,
        stored is not None,
        threading.current_thread().name,
    )


@receiver(leak_detected)
def detected(sender: Any, alarm: Alarm, **kwargs: Any) -> None:
    _line("leak_detected", alarm)


@receiver(leak_resolved)
def resolved(sender: Any, alarm: Alarm, **kwargs: Any) -> None:
    _line("leak_resolved", alarm)
