"""Signals of channels_sio: leak alarms raised and resolved, for mail, Sentry or Slack.

Both are sent with ``sender=Alarm`` and ``alarm=<the Alarm row>``, once per alarm, after the
evaluation that raised or resolved it was committed. They are sent from the monitoring thread
of the node that holds the rules lease (a plain thread, never the event loop), so receivers are
ordinary synchronous functions that may use the ORM; a slow receiver delays the next
evaluation, never a client. A receiver that raises is logged (``channels_sio.monitoring``) and
does not keep the others from running::

    from django.dispatch import receiver
    from channels_sio.signals import leak_detected

    @receiver(leak_detected)
    def page_someone(sender, alarm, **kwargs):
        if alarm.severity == "critical":
            mail_admins(f"Socket.IO: {alarm}", repr(alarm.details))
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = ["leak_detected", "leak_resolved"]

#: A leak rule found something new: ``alarm`` is the open Alarm row just created.
leak_detected = Signal()

#: The condition of an open alarm cleared: ``alarm`` is the row, ``resolved_at`` now set.
leak_resolved = Signal()
