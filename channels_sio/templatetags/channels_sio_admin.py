"""The charts of the admin's "Socket.IO" page: sessions per node and open alarms over the last
hour, drawn as inline SVG on the server (no script, no CDN) from ``NodeSample`` and ``Alarm``.

``{% load channels_sio_admin %}{% socketio_charts %}`` in a template with the request in its
context; each chart is shown to users who may view (or change) what it counts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django import template
from django.db.models import Q, Sum
from django.utils import timezone

from ..models import Alarm, Node, NodeSample

__all__ = ["alarms_chart", "sessions_chart", "socketio_charts"]

register = template.Library()

#: The charts' span, and how many bars / points it is cut into (one a minute).
WINDOW = timedelta(hours=1)
BUCKETS = 60
#: Nodes drawn as lines of their own; the others are summed into one line.
MAX_NODE_LINES = 6
#: Rows read at most (the newest): a node samples every flush, 720 an hour at 5 s.
MAX_SAMPLES = 50_000
MAX_ALARMS = 10_000
#: Geometry (SVG user units; the SVG scales to the page's width).
WIDTH = 720
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 10, 22
SESSIONS_HEIGHT = 180
ALARMS_HEIGHT = 110
PALETTE = ["#2f7ed8", "#e07b00", "#2ca02c", "#9467bd", "#17a2b8", "#8c564b", "#7f7f7f"]
TOTAL_COLOR = "#555"


@dataclass
class Line:
    """One series: polylines for its runs of minutes with data, dots for lone minutes."""

    label: str
    color: str
    now: int | None
    segments: list[str] = field(default_factory=list)
    dots: list[tuple[float, float]] = field(default_factory=list)
    total: bool = False


@dataclass
class Bar:
    x: float
    width: float
    warning_y: float
    warning_height: float
    critical_y: float
    critical_height: float
    title: str


@dataclass
class Axis:
    """The frame shared by both charts: plot area, time ticks, value ticks."""

    height: int
    top: int = TOP
    left: int = LEFT
    right: int = WIDTH - RIGHT
    #: (x, label, text-anchor): the first and last labels stay inside the picture.
    x_ticks: list[tuple[float, str, str]] = field(default_factory=list)
    y_ticks: list[tuple[float, int]] = field(default_factory=list)

    @property
    def bottom(self) -> int:
        return self.height - BOTTOM

    @property
    def plot_width(self) -> float:
        return self.right - self.left

    def x(self, bucket: float) -> float:
        return round(self.left + bucket * self.plot_width / BUCKETS, 1)

    def y(self, value: float, top: int) -> float:
        return round(self.bottom - value / top * (self.bottom - self.top), 1)


def nice_top(value: int) -> int:
    """The axis maximum for ``value``: 2, 4, 6, 8 or 10 times a power of ten, so that its half
    is a whole number too."""
    scale = 1
    while True:
        for step in (2, 4, 6, 8, 10):
            if value <= step * scale:
                return step * scale
        scale *= 10


def _axis(height: int, start: datetime, top: int) -> Axis:
    axis = Axis(height)
    anchors = ["start", "middle", "middle", "middle", "end"]
    for quarter, anchor in enumerate(anchors):
        moment = timezone.localtime(start + quarter * WINDOW / 4)
        axis.x_ticks.append((axis.x(quarter * BUCKETS / 4), moment.strftime("%H:%M"), anchor))
    axis.y_ticks = [(axis.y(value, top), value) for value in (0, top // 2, top)]
    return axis


def _bucket(moment: datetime, start: datetime) -> int:
    index = int((moment - start) / WINDOW * BUCKETS)
    return min(max(index, 0), BUCKETS - 1)


def _draw(line: Line, values: dict[int, int], axis: Axis, top: int) -> Line:
    run: list[str] = []
    for bucket in [*range(BUCKETS), BUCKETS]:  # one past the end closes the last run
        value = values.get(bucket)
        if value is not None:
            run.append(f"{axis.x(bucket + 0.5)},{axis.y(value, top)}")
            continue
        if len(run) > 1:
            line.segments.append(" ".join(run))
        elif run:
            x, y = run[0].split(",")
            line.dots.append((float(x), float(y)))
        run = []
    return line


def sessions_chart(now: datetime) -> dict[str, Any]:
    """Sessions per node, each minute's highest sample, with their sum when several nodes."""
    start = now - WINDOW
    rows = list(
        NodeSample.objects.filter(at__gt=start, at__lte=now)
        .order_by("-at")
        .values_list("node", "at", "sessions")[:MAX_SAMPLES]
    )
    per_node: dict[str, dict[int, int]] = defaultdict(dict)
    latest: dict[str, int] = {}
    for node, at, sessions in rows:  # newest first
        latest.setdefault(node, sessions)
        bucket = _bucket(at, start)
        per_node[node][bucket] = max(per_node[node].get(bucket, 0), sessions)
    order = sorted(per_node, key=lambda node: (-latest[node], node))
    shown, others = order[:MAX_NODE_LINES], order[MAX_NODE_LINES:]
    series: list[tuple[str, dict[int, int], int | None]] = []
    described = {
        node.id: f"{node.id} ({node.host}:{node.pid})" for node in Node.objects.filter(id__in=shown)
    }
    for node in shown:
        series.append((described.get(node, node), per_node[node], latest[node]))
    if others:
        summed: dict[int, int] = defaultdict(int)
        for node in others:
            for bucket, value in per_node[node].items():
                summed[bucket] += value
        series.append((f"{len(others)} other nodes", summed, sum(latest[n] for n in others)))
    total: dict[int, int] = defaultdict(int)
    for values in per_node.values():
        for bucket, value in values.items():
            total[bucket] += value
    top = nice_top(max(total.values(), default=0))
    axis = _axis(SESSIONS_HEIGHT, start, top)
    lines = [
        _draw(Line(label, PALETTE[index % len(PALETTE)], last), values, axis, top)
        for index, (label, values, last) in enumerate(series)
    ]
    if len(per_node) > 1:
        now_total = sum(latest.values())
        lines.append(_draw(Line("all nodes", TOTAL_COLOR, now_total, total=True), total, axis, top))
    live = Node.objects.filter(gone_at__isnull=True).aggregate(sessions=Sum("sessions"))
    return {
        "axis": axis,
        "lines": lines,
        "empty": not rows,
        "nodes_up": Node.objects.filter(gone_at__isnull=True).count(),
        "sessions_now": live["sessions"] or 0,
    }


def alarms_chart(now: datetime) -> dict[str, Any]:
    """The alarms open during each minute, critical ones stacked on warnings."""
    start = now - WINDOW
    rows = list(
        Alarm.objects.filter(first_seen__lte=now)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gt=start))
        .order_by("-first_seen")
        .values_list("severity", "first_seen", "resolved_at")[:MAX_ALARMS]
    )
    warning = [0] * BUCKETS
    critical = [0] * BUCKETS
    for severity, first_seen, resolved_at in rows:
        counts = critical if severity == Alarm.Severity.CRITICAL else warning
        first = _bucket(first_seen, start) if first_seen > start else 0
        last = _bucket(resolved_at, start) if resolved_at is not None else BUCKETS - 1
        for bucket in range(first, last + 1):
            counts[bucket] += 1
    top = nice_top(max((w + c for w, c in zip(warning, critical, strict=True)), default=0))
    axis = _axis(ALARMS_HEIGHT, start, top)
    bars = []
    width = round(axis.plot_width / BUCKETS - 1, 1)
    for bucket in range(BUCKETS):
        w, c = warning[bucket], critical[bucket]
        if not w and not c:
            continue
        w_top, c_top = axis.y(w, top), axis.y(w + c, top)
        moment = timezone.localtime(start + bucket * WINDOW / BUCKETS)
        bars.append(
            Bar(
                x=axis.x(bucket) + 0.5,
                width=width,
                warning_y=w_top,
                warning_height=round(axis.bottom - w_top, 1),
                critical_y=c_top,
                critical_height=round(w_top - c_top, 1),
                title=f"{moment:%H:%M}: {w} warning, {c} critical",
            )
        )
    open_alarms = Alarm.objects.filter(resolved_at__isnull=True)
    return {
        "axis": axis,
        "bars": bars,
        "open_now": open_alarms.count(),
        "critical_now": open_alarms.filter(severity=Alarm.Severity.CRITICAL).count(),
    }


def _may_view(user: Any, *models: str) -> bool:
    return any(
        user.has_perm(f"channels_sio.{perm}_{model}")
        for model in models
        for perm in ("view", "change")
    )


@register.inclusion_tag("admin/channels_sio/charts.html", takes_context=True)
def socketio_charts(context: template.Context) -> dict[str, Any]:
    """Both charts, each if the user may view what it counts."""
    request = context.get("request")
    user = getattr(request, "user", None)
    now = timezone.now()
    found: dict[str, Any] = {"width": WIDTH, "sessions": None, "alarms": None}
    if user is None:
        return found
    if _may_view(user, "livesession", "node"):
        found["sessions"] = sessions_chart(now)
    if _may_view(user, "alarm"):
        found["alarms"] = alarms_chart(now)
    return found
