"""Models of channels_sio: the database store of connection state recovery (its packet log and
kept sessions), a place in the admin for the contents of the other stores, and the registry of
live sessions, nodes and leak alarms that every node keeps current."""

from __future__ import annotations

from django.db import models

__all__ = [
    "Alarm",
    "Lease",
    "LiveSession",
    "LiveSocket",
    "Node",
    "NodeSample",
    "RecoveryPacket",
    "RecoverySession",
    "RecoveryStoreContents",
]


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


class Node(models.Model):
    """A server process's node, as it last reported itself (every ``flush_interval``)."""

    id = models.CharField("node", max_length=16, primary_key=True)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField("process id")
    #: Its channel on the channel layer: where the admin's actions reach it.
    channel = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField("started")
    last_heartbeat = models.DateTimeField()
    #: Set when it stopped heartbeating (or said goodbye): its sessions are gone with it.
    gone_at = models.DateTimeField("gone", null=True, blank=True)
    sessions = models.PositiveIntegerField(default=0)
    sockets = models.PositiveIntegerField(default=0)
    packets_in_per_s = models.FloatField("packets in / s", default=0)
    packets_out_per_s = models.FloatField("packets out / s", default=0)
    #: What its leak rules read: orphans its audit found, recent closes by reason, refusals
    #: and parse errors by address, slow consumers.
    report = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "node"
        verbose_name_plural = "nodes"
        indexes = [models.Index(fields=["last_heartbeat"], name="csio_node_heartbeat")]

    def __str__(self) -> str:
        return f"{self.id} ({self.host}:{self.pid})"


class LiveSession(models.Model):
    """An Engine.IO session open on some node, with its sockets, as that node last wrote it."""

    class State(models.TextChoices):
        LIVE = "live", "live"
        GONE = "gone", "gone"  # its node stopped heartbeating

    sid = models.CharField("session id", max_length=64, primary_key=True)
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="live_sessions")
    state = models.CharField(max_length=8, choices=State.choices, default=State.LIVE)
    transport = models.CharField(max_length=16)
    upgrade = models.CharField("upgrade state", max_length=16, default="none")
    address = models.CharField(max_length=64, blank=True)
    user_agent = models.TextField(blank=True)
    # NULL for anonymous users: "" would be a primary key.
    user_id = models.CharField("user", max_length=255, null=True, blank=True)  # noqa: DJ001
    username = models.CharField(max_length=255, blank=True)
    connected_at = models.DateTimeField("connected")
    last_pong_at = models.DateTimeField("last pong", null=True, blank=True)
    rtt_ms = models.FloatField("RTT (ms)", null=True, blank=True)
    packets_in = models.PositiveBigIntegerField(default=0)
    packets_out = models.PositiveBigIntegerField(default=0)
    bytes_in = models.PositiveBigIntegerField(default=0)
    bytes_out = models.PositiveBigIntegerField(default=0)
    queued = models.PositiveIntegerField("send queue", default=0)
    #: One per line, for the changelist's search and filters (portable, unlike JSON lookups).
    namespaces = models.TextField(blank=True)
    socket_ids = models.TextField("socket ids", blank=True)
    rooms = models.TextField(blank=True)
    #: What tells one client from another (the duplicate-client rule): see docs/admin.md.
    fingerprint = models.CharField(max_length=255, blank=True)
    #: The request that opened it: headers, query, address (shown on its page).
    handshake = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = "live session"
        verbose_name_plural = "live sessions"
        indexes = [
            models.Index(fields=["node", "state"], name="csio_live_node_state"),
            models.Index(fields=["fingerprint"], name="csio_live_fingerprint"),
            models.Index(fields=["connected_at"], name="csio_live_connected"),
        ]

    def __str__(self) -> str:
        return self.sid


class LiveSocket(models.Model):
    """A Socket.IO socket of a live session: one namespace it joined."""

    id = models.CharField("socket id", max_length=64, primary_key=True)
    session = models.ForeignKey(LiveSession, on_delete=models.CASCADE, related_name="sockets")
    namespace = models.CharField(max_length=255)
    rooms = models.JSONField(default=list, blank=True)
    pid = models.CharField("recovery pid", max_length=64, blank=True)
    recovered = models.BooleanField(default=False)
    connected_at = models.DateTimeField("connected")

    class Meta:
        verbose_name = "live socket"
        verbose_name_plural = "live sockets"

    def __str__(self) -> str:
        return f"{self.namespace} {self.id}"


class Alarm(models.Model):
    """A leak rule's finding: open while its condition holds, resolved when it clears."""

    class Kind(models.TextChoices):
        ZOMBIE = "zombie", "zombie"
        ORPHAN = "orphan", "orphan"
        DUPLICATE = "duplicate", "duplicate client"
        STORM = "storm", "reconnect storm"
        STUCK = "stuck", "stuck"
        NODE_GONE = "node_gone", "node gone"
        SLOW_CONSUMER = "slow_consumer", "slow consumer"

    class Severity(models.TextChoices):
        WARNING = "warning", "warning"
        CRITICAL = "critical", "critical"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    #: What makes two findings one alarm: the kind's subject (a sid, an address, a node...).
    fingerprint = models.CharField(max_length=255)
    node = models.CharField(max_length=16, blank=True)
    sids = models.JSONField("session ids", default=list, blank=True)
    details = models.JSONField(default=dict, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    #: How many evaluations found it.
    count = models.PositiveIntegerField(default=1)
    resolved_at = models.DateTimeField("resolved", null=True, blank=True)

    class Meta:
        verbose_name = "alarm"
        verbose_name_plural = "alarms"
        indexes = [
            models.Index(fields=["kind", "fingerprint", "resolved_at"], name="csio_alarm_open"),
            models.Index(fields=["last_seen"], name="csio_alarm_last_seen"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.fingerprint}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class Lease(models.Model):
    """Who evaluates the leak rules now: one node at a time, until ``expires_at``."""

    name = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=16)
    expires_at = models.DateTimeField()

    class Meta:
        verbose_name = "lease"
        verbose_name_plural = "leases"

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder}"


class NodeSample(models.Model):
    """A node's session count at one flush: the admin's chart of the last hour."""

    node = models.CharField(max_length=16)
    at = models.DateTimeField()
    sessions = models.PositiveIntegerField()

    class Meta:
        verbose_name = "node sample"
        verbose_name_plural = "node samples"
        indexes = [models.Index(fields=["at"], name="csio_sample_at")]

    def __str__(self) -> str:
        return f"{self.node} {self.at:%H:%M:%S} {self.sessions}"
