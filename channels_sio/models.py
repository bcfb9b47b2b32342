"""Models of channels_sio: the database store of connection state recovery (its packet log and
kept sessions), and a place in the admin for the contents of the other stores."""

from __future__ import annotations

from django.db import models

__all__ = ["RecoveryPacket", "RecoverySession", "RecoveryStoreContents"]


class RecoveryPacket(models.Model):
    """One recorded EVENT of the packet log. Its id is its offset: ids only grow, so reading
    after an offset is ``id > offset`` in one index range."""

    namespace = models.CharField(
        max_length=255, help_text="A namespace's name, or #n for the n-th dynamic family."
    )
    #: data[0], kept apart for the admin's list and search.
    event = models.TextField(blank=True)
    payload = models.TextField(help_text="The event and its arguments as JSON (no offset).")
    attachments = models.BinaryField(default=b"", blank=True)
    rooms = models.JSONField(default=list, blank=True, help_text="Empty: every socket.")
    except_rooms = models.JSONField(default=list, blank=True)
    #: The rooms one per line: a plain text column that substring search works on in every
    #: database (JSON containment is not portable; a socket's own id is one of its rooms).
    room_names = models.TextField(blank=True, editable=False)
    exclude_sid = models.CharField(
        max_length=255, blank=True, default="", help_text="The sender, when it excluded itself."
    )
    created = models.DateTimeField()

    class Meta:
        verbose_name = "recovery packet"
        verbose_name_plural = "recovery packets"
        indexes = [
            # read_after: namespace IN (...) AND id > offset ORDER BY id
            models.Index(fields=["namespace", "id"], name="csio_packet_namespace_id"),
            # purge: created < horizon
            models.Index(fields=["created"], name="csio_packet_created"),
        ]

    def __str__(self) -> str:
        return f"{self.namespace} {self.event!r} #{self.pk}"


class RecoverySession(models.Model):
    """The session of a socket that disconnected for a recoverable reason, kept until it is
    restored (once) or expires."""

    pid = models.CharField("private id", max_length=255, unique=True)
    sid = models.CharField("socket id", max_length=255)
    namespace = models.CharField(max_length=255)
    rooms = models.JSONField(default=list, blank=True)
    data = models.JSONField(default=dict, blank=True, help_text="socket.data")
    # NULL, not "": None means anonymous / no position in SessionRecord, and "" is neither.
    user_id = models.CharField(  # noqa: DJ001
        "user", max_length=255, null=True, blank=True, help_text="The Django user's pk."
    )
    position = models.CharField(  # noqa: DJ001
        max_length=64, null=True, blank=True, help_text="The log's end when it disconnected."
    )
    disconnected_at = models.DateTimeField("disconnected")
    expires_at = models.DateTimeField("expires")

    class Meta:
        verbose_name = "recovery session"
        verbose_name_plural = "recovery sessions"
        indexes = [
            # purge (expires_at <= now) and browsing (latest to expire first)
            models.Index(fields=["expires_at"], name="csio_session_expires"),
            # the admin lists the newest first
            models.Index(fields=["disconnected_at"], name="csio_session_disconnected"),
        ]

    def __str__(self) -> str:
        return f"{self.namespace} {self.sid} (pid {self.pid})"


class RecoveryStoreContents(models.Model):
    """No table: gives the admin index an entry for the contents of a store that is not the
    database (memory, Redis), which the admin reads through the store itself."""

    class Meta:
        managed = False
        default_permissions = ()
        verbose_name = "recovery store contents"
        verbose_name_plural = "recovery store contents"

    def __str__(self) -> str:
        return "recovery store contents"
