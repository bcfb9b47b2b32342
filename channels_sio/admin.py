"""The admin of channels_sio, under "Socket.IO".

Read-only: the recovery sessions and packet log of the database store, the contents of any
other store (memory, Redis), read through the store itself, and the registry the nodes keep
(live sessions with their sockets, nodes, leak alarms). Rows belong to whoever writes them:
nothing is added, edited or deleted here. The actions that need the change permission reach
out instead: a live session's node is sent the admin's request over the channel layer
(monitoring/actions.py), and an alarm can be resolved.

Settings are read in the views only, so that ``override_settings`` and a project's own
configuration apply to every request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.db import router, transaction
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import capfirst

from . import conf
from .models import (
    Alarm,
    LiveSession,
    LiveSocket,
    Node,
    RecoveryPacket,
    RecoverySession,
    RecoveryStoreContents,
)
from .monitoring.actions import Action, AdminAction, send_action
from .monitoring.alarms import describe
from .recovery.database import DatabaseStore
from .recovery.store import KeptSession, LoggedPacket, RecoveryStore, unpack_buffers
from .socketio.packet import validate_event_name

__all__ = [
    "AlarmAdmin",
    "LiveSessionAdmin",
    "NodeAdmin",
    "RecoveryPacketAdmin",
    "RecoverySessionAdmin",
    "RecoveryStoreContentsAdmin",
]

logger = logging.getLogger("channels_sio.admin")

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
    _TabularInline = admin.TabularInline[Any, Any]
else:  # generic for the type checker only: ModelAdmin[...] fails at run time
    _ModelAdmin = admin.ModelAdmin
    _TabularInline = admin.TabularInline

#: How many sessions and packets the store contents page shows.
BROWSE_LIMIT = 100
#: Longer previews of data are cut here.
PREVIEW_LENGTH = 200


def _preview(value: Any) -> str:
    """JSON for a glance: bytes as their size, cut to ``PREVIEW_LENGTH`` characters."""

    def binary(item: Any) -> str:
        if isinstance(item, bytes | bytearray | memoryview):
            return f"<{len(item)} bytes>"
        return repr(item)

    text = json.dumps(value, ensure_ascii=False, default=binary)
    return text if len(text) <= PREVIEW_LENGTH else text[: PREVIEW_LENGTH - 1] + "…"


def _rooms(rooms: Any, except_rooms: Any = ()) -> str:
    shown = ", ".join(sorted(rooms)) if rooms else "all"
    if except_rooms:
        shown += f" except {', '.join(sorted(except_rooms))}"
    return shown


class ReadOnlyAdmin(_ModelAdmin):
    """Shows rows that only the store writes: nothing can be added, changed or deleted."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RecoverySession)
class RecoverySessionAdmin(ReadOnlyAdmin):
    """The sessions the database store keeps for reconnecting clients."""

    list_display = ["pid", "sid", "namespace", "user_id", "disconnected_at", "expires_at"]
    list_filter = ["namespace"]
    search_fields = ["^pid", "^sid"]
    search_help_text = "The start of a private id (pid) or socket id (sid)."
    ordering = ["-disconnected_at"]
    fields = [
        "pid",
        "sid",
        "namespace",
        "rooms",
        "data",
        "user_id",
        "position",
        "disconnected_at",
        "expires_at",
    ]


@admin.register(RecoveryPacket)
class RecoveryPacketAdmin(ReadOnlyAdmin):
    """The packet log of the database store."""

    list_display = ["offset", "namespace", "event", "rooms_display", "created"]
    list_filter = ["namespace"]
    # A socket id is a room: a packet sent to one socket has its sid in room_names.
    search_fields = ["event", "room_names", "=exclude_sid"]
    search_help_text = "An event name, a room or a socket id."
    ordering = ["-id"]
    # The log can be long: no second COUNT(*) of the whole table on each page.
    show_full_result_count = False
    fields = [
        "offset",
        "namespace",
        "event",
        "payload",
        "attachments_display",
        "rooms_display",
        "exclude_sid",
        "created",
    ]
    readonly_fields = ["offset", "attachments_display", "rooms_display"]

    @admin.display(description="offset", ordering="id")
    def offset(self, obj: RecoveryPacket) -> str:
        return str(obj.pk)

    @admin.display(description="rooms")
    def rooms_display(self, obj: RecoveryPacket) -> str:
        return _rooms(obj.rooms, obj.except_rooms)

    @admin.display(description="attachments")
    def attachments_display(self, obj: RecoveryPacket) -> str:
        buffers = unpack_buffers(bytes(obj.attachments))
        return ", ".join(f"{len(buffer)} bytes" for buffer in buffers) or "none"


@dataclass(frozen=True)
class _SessionRow:
    pid: str
    sid: str
    namespace: str
    rooms: str
    user_id: str | None
    position: str | None
    data: str
    expires: datetime

    @classmethod
    def of(cls, kept: KeptSession) -> _SessionRow:
        session = kept.session
        return cls(
            pid=session.pid,
            sid=session.sid,
            namespace=session.namespace,
            rooms=_rooms(session.rooms),
            user_id=session.user_id,
            position=session.position,
            data=_preview(session.data),
            expires=datetime.fromtimestamp(kept.expires, UTC),
        )


@dataclass(frozen=True)
class _PacketRow:
    offset: str
    namespace: str
    event: str
    arguments: str
    rooms: str
    exclude_sid: str | None
    created: datetime

    @classmethod
    def of(cls, logged: LoggedPacket) -> _PacketRow:
        packet = logged.packet
        event = packet.data[0] if packet.data else ""
        return cls(
            offset=logged.offset,
            namespace=packet.namespace,
            event=event if isinstance(event, str) else _preview(event),
            arguments=_preview(packet.data[1:]),
            rooms=_rooms(packet.rooms, packet.except_rooms),
            exclude_sid=packet.exclude_sid,
            created=datetime.fromtimestamp(logged.created, UTC),
        )


async def _browse(
    store: RecoveryStore, namespace: str | None, search: str | None
) -> tuple[list[KeptSession], list[LoggedPacket]]:
    sessions = await store.browse_sessions(namespace=namespace, search=search, limit=BROWSE_LIMIT)
    packets = await store.browse_packets(namespace=namespace, limit=BROWSE_LIMIT)
    return sessions, packets


@admin.register(RecoveryStoreContents)
class RecoveryStoreContentsAdmin(_ModelAdmin):
    """One page, in place of a changelist: the sessions and newest packets of the configured
    store, read with ``browse_sessions`` / ``browse_packets``. For the database store it
    points to the two changelists above, which can search and page through everything."""

    change_list_template = "admin/channels_sio/recovery_store.html"

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # The model has no permissions of its own: the page shows recovery sessions, so it
        # takes the permission to view those.
        return request.user.has_perm("channels_sio.view_recoverysession")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        # The changelist only: there is no table behind the model for the other views.
        name = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.changelist_view), name=name)]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        namespace = request.GET.get("namespace", "").strip()
        search = request.GET.get("q", "").strip()
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Recovery store contents",
            "namespace": namespace,
            "search": search,
            "limit": BROWSE_LIMIT,
            **(extra_context or {}),
        }
        try:
            recovery = conf.recovery()
            context["recovery_on"] = recovery is not None
            if recovery is not None:
                store = recovery.store
                context["store_name"] = type(store).__name__
                if isinstance(store, DatabaseStore):
                    context["in_database"] = True
                else:
                    sessions, packets = async_to_sync(_browse)(
                        store, namespace or None, search or None
                    )
                    context["sessions"] = [_SessionRow.of(kept) for kept in sessions]
                    context["packets"] = [_PacketRow.of(logged) for logged in packets]
        except Exception as exc:
            # A misconfigured or unreachable store is what the page must then show, not a 500.
            logger.exception("the admin could not read the recovery store")
            context["error"] = f"{type(exc).__name__}: {exc}"
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.change_list_template, context)


# -- the registry: live sessions, nodes, alarms -------------------------------------------------

#: Namespaces offered by the live sessions' filter (dynamic namespaces can be many).
NAMESPACE_CHOICES = 50
#: The live pages reload at the flush interval, never more often than this (ms).
MIN_REFRESH = 1_000
#: The longest arguments of an emitted test event (characters of JSON).
MAX_EMIT_ARGS = 10_000
#: Session ids an alarm's page and list link at most.
ALARM_SIDS_SHOWN = 50
#: What each rule's alarm means, and the setting that tunes it (docs/admin.md says more).
ALARM_MEANINGS: dict[str, str] = {
    Alarm.Kind.ZOMBIE: "A session with no pong (nor connection, when it never got one) for "
    "ping_interval + ping_timeout + zombie_grace: its heartbeat failed to close it (ws#2193).",
    Alarm.Kind.ORPHAN: "Sockets, Socket.IO clients, room entries or acknowledgements that no "
    "open session backs, listed by their node's own audit for longer than stuck_grace.",
    Alarm.Kind.DUPLICATE: "Several live sessions of one client fingerprint, the second open "
    "for longer than duplicate_grace: a client that reconnects without closing "
    "(socket.io#5128).",
    Alarm.Kind.STORM: "More than storm_threshold parse errors and refused handshakes or "
    "CONNECTs from one address within storm_window, summed over the nodes.",
    Alarm.Kind.STUCK: "A session mid-upgrade for upgrade_timeout + stuck_grace, or in no "
    "namespace for connect_timeout + stuck_grace.",
    Alarm.Kind.NODE_GONE: "A node that stopped heartbeating left sessions: a process that died "
    "without its goodbye (SIGKILL, out of memory, a lost machine).",
    Alarm.Kind.SLOW_CONSUMER: "Sessions of one address closed because their send queue went "
    "over max_queued_packets, within slow_consumer_window: a client that stops reading.",
}


def _lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line]


def _line_is(field: str, value: str) -> Q:
    """Rows whose newline-separated ``field`` has ``value`` as one of its lines (portable:
    plain text lookups, where JSON containment is not)."""
    return (
        Q(**{field: value})
        | Q(**{f"{field}__startswith": value + "\n"})
        | Q(**{f"{field}__endswith": "\n" + value})
        | Q(**{f"{field}__contains": "\n" + value + "\n"})
    )


def _pretty_json(value: Any) -> str:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre class="csio-json">{}</pre>', text)


def _change_url(model: str, pk: Any) -> str:
    return reverse(f"admin:channels_sio_{model}_change", args=[pk])


def _changelist_url(model: str, **query: str) -> str:
    url = reverse(f"admin:channels_sio_{model}_changelist")
    return f"{url}?{urlencode(query)}" if query else url


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    seconds = max(0.0, (timezone.now() - moment).total_seconds())
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def refresh_interval() -> int | None:
    """How often the live pages reload (ms): the nodes' flush interval; None when monitoring is
    off (nothing changes then)."""
    try:
        values = conf.monitoring_settings()
        if values is None:
            return None
        return max(int(values["flush_interval"]), MIN_REFRESH)
    except (ImproperlyConfigured, KeyError, TypeError, ValueError):
        return None  # a malformed CHANNELS_SIO: the system checks report it


def _safe_next(request: HttpRequest) -> str | None:
    """Where to go back to after an action started from a session's page."""
    target = request.POST.get("_next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


class RegistryAdmin(_ModelAdmin):
    """Rows the nodes and their rules write. Viewing takes the view permission; the change
    permission allows the actions and nothing else: no object can be edited, added or deleted
    here. The changelist reloads itself at the flush interval, with a pause control."""

    change_list_template = "admin/channels_sio/live_change_list.html"
    list_per_page = 50

    class Media:
        css = {"all": ["channels_sio/admin.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # For the actions (asked without an object); an object's page is view-only.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        refresh = refresh_interval()
        context = {
            # What the list is, not "Select ... to change": nothing here is changed.
            "title": capfirst(self.opts.verbose_name_plural),
            "refresh_ms": refresh,
            "refresh_seconds": f"{refresh / 1000:g}" if refresh else "",
            "monitoring_off": refresh is None,
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = {"can_act": self.has_change_permission(request), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)


class _StatusFilter(admin.SimpleListFilter):
    """A status told by whether a time is set: ``names`` are (not set yet, set)."""

    title = "status"
    parameter_name = "status"
    field: str
    names: tuple[str, str]

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in self.names]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value in self.names:
            return queryset.filter(**{f"{self.field}__isnull": value == self.names[0]})
        return queryset


class NodeStatusFilter(_StatusFilter):
    field = "gone_at"
    names = ("up", "gone")


@admin.register(Node)
class NodeAdmin(RegistryAdmin):
    """The server processes, as each last reported itself."""

    list_display = [
        "id",
        "host",
        "pid",
        "started_at",
        "heartbeat",
        "sessions_link",
        "sockets",
        "packets_per_s",
        "status",
    ]
    list_filter = [NodeStatusFilter, "host"]
    search_fields = ["=id", "host", "=pid"]
    search_help_text = "A node id, a host or a process id."
    ordering = ["-last_heartbeat"]
    fieldsets = [
        (None, {"fields": ["id", "host", "pid", "channel", "status"]}),
        ("Life", {"fields": ["started_at", "last_heartbeat", "gone_at"]}),
        (
            "Load",
            {"fields": ["sessions_link", "sockets", "packets_in_per_s", "packets_out_per_s"]},
        ),
        ("Report", {"fields": ["report_display"]}),
    ]
    readonly_fields = [
        "id",
        "host",
        "pid",
        "channel",
        "status",
        "started_at",
        "last_heartbeat",
        "gone_at",
        "sessions_link",
        "sockets",
        "packets_in_per_s",
        "packets_out_per_s",
        "report_display",
    ]

    @admin.display(description="last heartbeat", ordering="last_heartbeat")
    def heartbeat(self, obj: Node) -> str:
        return _ago(obj.last_heartbeat)

    @admin.display(description="sessions", ordering="sessions")
    def sessions_link(self, obj: Node) -> str:
        url = _changelist_url("livesession", node__id__exact=obj.id)
        return format_html('<a href="{}">{}</a>', url, obj.sessions)

    @admin.display(description="packets / s (in, out)", ordering="packets_in_per_s")
    def packets_per_s(self, obj: Node) -> str:
        return f"{obj.packets_in_per_s:.1f} / {obj.packets_out_per_s:.1f}"

    @admin.display(description="status", ordering="gone_at")
    def status(self, obj: Node) -> str:
        if obj.gone_at is None:
            return format_html('<span class="csio-badge csio-ok">{}</span>', "up")
        return format_html(
            '<span class="csio-badge csio-critical">{}</span> {}', "gone", _ago(obj.gone_at)
        )

    @admin.display(description="report")
    def report_display(self, obj: Node) -> str:
        return _pretty_json(obj.report)


class LiveSocketInline(_TabularInline):
    """A session's sockets: one per namespace it joined."""

    model = LiveSocket
    fields = ["id", "namespace", "rooms_display", "pid", "recovered", "connected_at"]
    readonly_fields = ["id", "namespace", "rooms_display", "pid", "recovered", "connected_at"]
    extra = 0
    can_delete = False
    show_change_link = False

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # Part of its session: whoever may view the session sees its sockets.
        return any(
            request.user.has_perm(f"channels_sio.{perm}_livesession") for perm in ("view", "change")
        )

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    @admin.display(description="rooms")
    def rooms_display(self, obj: LiveSocket) -> str:
        # Its own room (its id) is implied.
        return ", ".join(room for room in obj.rooms if room != obj.id) or "—"


class NamespaceFilter(admin.SimpleListFilter):
    """Sessions with a socket in one namespace, or in none (they never joined one)."""

    title = "namespace"
    parameter_name = "namespace"
    NONE = "-"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = (
            LiveSocket.objects.order_by("namespace")
            .values_list("namespace", flat=True)
            .distinct()[:NAMESPACE_CHOICES]
        )
        return [*((name, name) for name in names), (self.NONE, "none")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        if value == self.NONE:
            return queryset.filter(namespaces="")
        return queryset.filter(_line_is("namespaces", value))


class _TargetForm(forms.Form):
    """Which sockets of the selected sessions an action is for."""

    namespace = forms.ChoiceField(
        required=False,
        help_text="Only the sockets of this namespace; every socket of each session otherwise.",
    )

    def __init__(self, *args: Any, namespaces: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "every namespace"), *((name, name) for name in sorted(set(namespaces)))]
        field = self.fields["namespace"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices


class RoomForm(_TargetForm):
    room = forms.CharField(max_length=255)


class EmitForm(_TargetForm):
    event = forms.CharField(max_length=255, initial="admin test")
    args = forms.CharField(
        label="Arguments",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        initial='["hello from the admin"]',
        required=False,
        help_text='A JSON array: the event\'s arguments, e.g. ["hello", {"n": 1}].',
    )

    def clean_event(self) -> str:
        event = str(self.cleaned_data["event"])
        try:
            validate_event_name(event)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        return event

    def clean_args(self) -> list[Any]:
        text = str(self.cleaned_data.get("args") or "[]")
        if len(text) > MAX_EMIT_ARGS:
            raise ValidationError(f"At most {MAX_EMIT_ARGS} characters.")
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"Not JSON: {exc}") from exc
        if not isinstance(value, list):
            raise ValidationError('A JSON array, e.g. [] or ["hello"].')
        return value


@admin.register(LiveSession)
class LiveSessionAdmin(RegistryAdmin):
    """The Engine.IO sessions open on every node, with their sockets; the actions reach the
    node that owns each one."""

    change_form_template = "admin/channels_sio/livesession/change_form.html"
    action_form_template = "admin/channels_sio/livesession/action_form.html"
    list_display = [
        "sid",
        "user",
        "address",
        "transport_display",
        "namespaces_display",
        "rooms_display",
        "node_column",
        "connected_at",
        "last_pong",
        "rtt",
        "packets",
        "queued",
        "state_display",
    ]
    list_select_related = ["node"]
    list_filter = ["node", "transport", NamespaceFilter, "state"]
    search_fields = ["sid", "socket_ids", "username", "=user_id", "address", "rooms"]
    search_help_text = "A session id, a socket id, a username or user id, an address or a room."
    ordering = ["-connected_at"]
    actions = ["disconnect", "join_room", "leave_room", "emit_event"]
    inlines = [LiveSocketInline]
    fieldsets = [
        (
            None,
            {"fields": ["sid", "state_display", "node_link", "transport_display", "connected_at"]},
        ),
        ("Client", {"fields": ["address", "user", "user_agent", "fingerprint_link"]}),
        ("Health", {"fields": ["last_pong_at", "rtt", "queued", "alarms_display"]}),
        (
            "Counters",
            {"fields": ["packets_in", "packets_out", "bytes_in_display", "bytes_out_display"]},
        ),
        ("Rooms", {"fields": ["namespaces_display", "rooms_display", "updated_at"]}),
        ("Handshake", {"fields": ["handshake_display"]}),
    ]
    readonly_fields = [
        "sid",
        "state_display",
        "node_link",
        "transport_display",
        "connected_at",
        "address",
        "user",
        "user_agent",
        "fingerprint_link",
        "last_pong_at",
        "rtt",
        "queued",
        "alarms_display",
        "packets_in",
        "packets_out",
        "bytes_in_display",
        "bytes_out_display",
        "namespaces_display",
        "rooms_display",
        "updated_at",
        "handshake_display",
    ]

    #: The actions a session's page offers besides "Disconnect" (they ask for more first).
    SESSION_ACTIONS = [
        ("join_room", "Join room…"),
        ("leave_room", "Leave room…"),
        ("emit_event", "Emit…"),
    ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = {"session_actions": self.SESSION_ACTIONS, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    # -- columns and fields -------------------------------------------------------------------

    @admin.display(description="user", ordering="username")
    def user(self, obj: LiveSession) -> str:
        if obj.user_id is None:
            return "anonymous"
        return f"{obj.username} ({obj.user_id})" if obj.username else str(obj.user_id)

    @admin.display(description="transport", ordering="transport")
    def transport_display(self, obj: LiveSession) -> str:
        if obj.upgrade == "upgraded":
            return f"{obj.transport} (upgraded)"
        if obj.upgrade in ("probing", "upgrading"):
            return f"{obj.transport} ({obj.upgrade})"
        return obj.transport

    @admin.display(description="namespaces", ordering="namespaces")
    def namespaces_display(self, obj: LiveSession) -> str:
        return ", ".join(_lines(obj.namespaces)) or "none"

    @admin.display(description="rooms")
    def rooms_display(self, obj: LiveSession) -> str:
        # A socket's own room is its id: those are in the socket ids.
        own = set(_lines(obj.socket_ids))
        return ", ".join(room for room in _lines(obj.rooms) if room not in own) or "—"

    @admin.display(description="last pong", ordering="last_pong_at")
    def last_pong(self, obj: LiveSession) -> str:
        return _ago(obj.last_pong_at)

    @admin.display(description="RTT", ordering="rtt_ms")
    def rtt(self, obj: LiveSession) -> str:
        return "—" if obj.rtt_ms is None else f"{obj.rtt_ms:.1f} ms"

    @admin.display(description="packets in / out", ordering="packets_in")
    def packets(self, obj: LiveSession) -> str:
        return f"{obj.packets_in} / {obj.packets_out}"

    @admin.display(description="state", ordering="state")
    def state_display(self, obj: LiveSession) -> str:
        css = "csio-ok" if obj.state == LiveSession.State.LIVE else "csio-critical"
        return format_html('<span class="csio-badge {}">{}</span>', css, obj.get_state_display())

    @admin.display(description="node", ordering="node")
    def node_column(self, obj: LiveSession) -> str:
        return str(obj.node_id)

    @admin.display(description="node")
    def node_link(self, obj: LiveSession) -> str:
        return format_html('<a href="{}">{}</a>', _change_url("node", obj.node_id), obj.node)

    @admin.display(description="fingerprint")
    def fingerprint_link(self, obj: LiveSession) -> str:
        if not obj.fingerprint:
            return "—"
        url = _changelist_url("livesession", fingerprint=obj.fingerprint)
        return format_html('{} (<a href="{}">its sessions</a>)', obj.fingerprint, url)

    @admin.display(description="bytes in")
    def bytes_in_display(self, obj: LiveSession) -> str:
        return f"{obj.bytes_in} ({filesizeformat(obj.bytes_in)})"

    @admin.display(description="bytes out")
    def bytes_out_display(self, obj: LiveSession) -> str:
        return f"{obj.bytes_out} ({filesizeformat(obj.bytes_out)})"

    @admin.display(description="open alarms")
    def alarms_display(self, obj: LiveSession) -> str:
        alarms = Alarm.objects.filter(resolved_at__isnull=True, sids__icontains=obj.sid)
        found = [alarm for alarm in alarms.order_by("-last_seen")[:10] if obj.sid in alarm.sids]
        if not found:
            return "none"
        return format_html_join(
            ", ", '<a href="{}">{}</a>', ((_change_url("alarm", a.pk), a) for a in found)
        )

    @admin.display(description="handshake")
    def handshake_display(self, obj: LiveSession) -> str:
        return _pretty_json(obj.handshake)

    # -- actions -------------------------------------------------------------------------------

    def _send(
        self, request: HttpRequest, queryset: QuerySet[Any], action: AdminAction, done: str
    ) -> HttpResponse | None:
        sessions = list(queryset.select_related("node"))
        try:
            delivery = send_action(sessions, action)
        except Exception as exc:
            logger.exception("the admin could not send %s", action.action)
            self.message_user(
                request, f"Nothing was sent: {type(exc).__name__}: {exc}", messages.ERROR
            )
            return None
        if delivery.sent:
            sent = set(delivery.sent)
            _log(
                request,
                [session for session in sessions if session.sid in sent],
                f"{done} (sent to its node)",
            )
            self.message_user(
                request,
                f"{done}: sent to the node of {_count(delivery.sent, 'session')}.",
                messages.SUCCESS,
            )
        if delivery.gone:
            self.message_user(
                request,
                f"Not sent to {_count(delivery.gone, 'session')}, whose node is gone: "
                f"{', '.join(sorted(delivery.gone)[:10])}.",
                messages.WARNING,
            )
        if delivery.full:
            self.message_user(
                request,
                f"Not sent to {_count(delivery.full, 'session')}: the channel of its node is "
                f"full (is the node stuck?): {', '.join(sorted(delivery.full)[:10])}.",
                messages.ERROR,
            )
        return None

    @admin.action(description="Disconnect the selected sessions", permissions=["change"])
    def disconnect(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        action = AdminAction(Action.DISCONNECT, by=request.user.get_username())
        return self._send(request, queryset, action, "Disconnect")

    @admin.action(description="Make the selected sessions join a room…", permissions=["change"])
    def join_room(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        return self._form_action(request, queryset, Action.JOIN)

    @admin.action(description="Make the selected sessions leave a room…", permissions=["change"])
    def leave_room(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        return self._form_action(request, queryset, Action.LEAVE)

    @admin.action(description="Emit a test event to the selected sessions…", permissions=["change"])
    def emit_event(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        return self._form_action(request, queryset, Action.EMIT)

    def _form_action(
        self, request: HttpRequest, queryset: QuerySet[Any], kind: Action
    ) -> HttpResponse | None:
        """A page asking for the room or the event (as the delete confirmation does), then
        the messages."""
        sessions = list(queryset.select_related("node"))
        namespaces = {name for session in sessions for name in _lines(session.namespaces)}
        form_class: type[_TargetForm] = EmitForm if kind is Action.EMIT else RoomForm
        data = request.POST if request.POST.get("apply") == "yes" else None
        form = form_class(data, namespaces=namespaces)
        if form.is_valid():
            values = form.cleaned_data
            by = request.user.get_username()
            if kind is Action.EMIT:
                action = AdminAction(
                    kind,
                    values["namespace"],
                    event=values["event"],
                    args=tuple(values["args"]),
                    by=by,
                )
                done = f"Emit {values['event']!r}"
            else:
                action = AdminAction(kind, values["namespace"], room=values["room"], by=by)
                done = f"{kind.value.capitalize()} room {values['room']!r}"
            self._send(request, queryset, action, done)
            target = _safe_next(request)
            return HttpResponseRedirect(target) if target else None
        titles = {
            Action.JOIN: "Join a room",
            Action.LEAVE: "Leave a room",
            Action.EMIT: "Emit a test event",
        }
        context = {
            **self.admin_site.each_context(request),
            "title": titles[kind],
            "subtitle": None,
            "opts": self.opts,
            "form": form,
            "sessions": sessions,
            "rows": [
                (session, ", ".join(_lines(session.namespaces)) or "no namespace")
                for session in sessions
            ],
            "action": request.POST.get("action", ""),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "next": _safe_next(request) or "",
            "media": self.media + form.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.action_form_template, context)


def _log(request: HttpRequest, objects: list[Any], message: str) -> None:
    """One admin log entry per object, as the object's history shows it."""
    LogEntry.objects.log_actions(
        user_id=cast(int, request.user.pk),
        queryset=objects,
        action_flag=CHANGE,
        change_message=message,
    )


def _count(items: list[str], noun: str) -> str:
    return f"1 {noun}" if len(items) == 1 else f"{len(items)} {noun}s"


class AlarmStatusFilter(_StatusFilter):
    field = "resolved_at"
    names = ("open", "resolved")


@admin.register(Alarm)
class AlarmAdmin(RegistryAdmin):
    """What the leak rules found: open while the condition holds, resolved when it cleared
    (or when someone with the change permission resolved it)."""

    list_display = [
        "kind",
        "severity_display",
        "fingerprint",
        "node_link",
        "sessions_link",
        "first_seen",
        "last_seen",
        "count",
        "status",
    ]
    list_display_links = ["kind"]
    list_filter = [
        AlarmStatusFilter,
        "kind",
        "severity",
        ("node", admin.AllValuesFieldListFilter),
    ]
    search_fields = ["fingerprint", "=node", "sids"]
    search_help_text = "A fingerprint (an address, a user, a pid…), a node id or a session id."
    ordering = ["-last_seen"]
    actions = ["resolve"]
    fieldsets = [
        (
            None,
            {"fields": ["summary", "kind", "meaning", "severity_display", "status", "fingerprint"]},
        ),
        ("Where", {"fields": ["node_link", "sessions_display"]}),
        ("When", {"fields": ["first_seen", "last_seen", "count", "resolved_at"]}),
        ("Details", {"fields": ["details_display"]}),
    ]
    readonly_fields = [
        "summary",
        "kind",
        "meaning",
        "severity_display",
        "status",
        "fingerprint",
        "node_link",
        "sessions_display",
        "first_seen",
        "last_seen",
        "count",
        "resolved_at",
        "details_display",
    ]

    @admin.display(description="severity", ordering="severity")
    def severity_display(self, obj: Alarm) -> str:
        return format_html(
            '<span class="csio-badge csio-{}">{}</span>', obj.severity, obj.get_severity_display()
        )

    @admin.display(description="status", ordering="resolved_at")
    def status(self, obj: Alarm) -> str:
        if obj.resolved_at is None:
            return format_html('<span class="csio-badge csio-open">{}</span>', "open")
        return format_html('<span class="csio-badge csio-ok">{}</span>', "resolved")

    @admin.display(description="summary")
    def summary(self, obj: Alarm) -> str:
        return describe(obj)

    @admin.display(description="what it means")
    def meaning(self, obj: Alarm) -> str:
        return ALARM_MEANINGS.get(obj.kind, "")

    @admin.display(description="node", ordering="node")
    def node_link(self, obj: Alarm) -> str:
        if not obj.node:
            return "—"
        return format_html('<a href="{}">{}</a>', _change_url("node", obj.node), obj.node)

    def _sids(self, obj: Alarm) -> list[str]:
        return [sid for sid in (obj.sids or []) if isinstance(sid, str)][:ALARM_SIDS_SHOWN]

    @admin.display(description="sessions")
    def sessions_link(self, obj: Alarm) -> str:
        sids = self._sids(obj)
        if not sids:
            return "—"
        url = _changelist_url("livesession", sid__in=",".join(sids))
        return format_html('<a href="{}">{}</a>', url, _count(sids, "session"))

    @admin.display(description="sessions")
    def sessions_display(self, obj: Alarm) -> str:
        sids = self._sids(obj)
        if not sids:
            return "none"
        live = set(LiveSession.objects.filter(sid__in=sids).values_list("sid", flat=True))
        items = [
            format_html('<a href="{}">{}</a>', _change_url("livesession", sid), sid)
            if sid in live
            else format_html("{} (closed)", sid)
            for sid in sids
        ]
        listed = format_html_join(", ", "{}", ((item,) for item in items))
        if len(live) > 1:
            url = _changelist_url("livesession", sid__in=",".join(sorted(live)))
            return format_html('{} (<a href="{}">all of them</a>)', listed, url)
        return listed

    @admin.display(description="details")
    def details_display(self, obj: Alarm) -> str:
        return _pretty_json(obj.details)

    @admin.action(description="Resolve the selected alarms", permissions=["change"])
    def resolve(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        alarms = list(queryset.filter(resolved_at__isnull=True))
        if not alarms:
            self.message_user(request, "The selected alarms were resolved already.")
            return
        resolved = resolve_alarms(alarms)
        _log(request, resolved, "Resolved")
        self.message_user(
            request, f"{_count([str(a.pk) for a in resolved], 'alarm')} resolved.", messages.SUCCESS
        )


def resolve_alarms(alarms: list[Alarm]) -> list[Alarm]:
    """Resolve open ``alarms`` now; those still open when written, which are returned."""
    now = timezone.now()
    pks = [alarm.pk for alarm in alarms]
    using = router.db_for_write(Alarm)
    rows = Alarm.objects.using(using)
    with transaction.atomic(using=using):
        # Not one the rules resolved meanwhile: its resolved time stays theirs.
        still_open = list(rows.select_for_update().filter(pk__in=pks, resolved_at__isnull=True))
        rows.filter(pk__in=[alarm.pk for alarm in still_open]).update(resolved_at=now)
    for alarm in still_open:
        alarm.resolved_at = now
    return still_open
