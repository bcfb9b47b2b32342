"""The admin of channels_sio, read-only: the recovery sessions and packet log of the database
store, and the contents of any other store (memory, Redis), read through the store itself.

Settings are read in the views only, so that ``override_settings`` and a project's own
configuration apply to every request.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from . import conf
from .models import RecoveryPacket, RecoverySession, RecoveryStoreContents
from .recovery.database import DatabaseStore
from .recovery.store import KeptSession, LoggedPacket, RecoveryStore, unpack_buffers

__all__ = ["RecoveryPacketAdmin", "RecoverySessionAdmin", "RecoveryStoreContentsAdmin"]

logger = logging.getLogger("channels_sio.admin")

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:  # generic for the type checker only: ModelAdmin[...] fails at run time
    _ModelAdmin = admin.ModelAdmin

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
