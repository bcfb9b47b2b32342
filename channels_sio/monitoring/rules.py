"""The leak rules: what the lease holder finds in the registry, each rule tied to a failure.

Every rule reads the registry (the rows every node writes) and returns its current findings;
:mod:`.alarms` turns findings into alarm rows. Sessions are judged against their own node's
last heartbeat, the moment their row was true, rather than the evaluator's clock: a node whose
flushes are late is not full of zombies. Only the live sessions of nodes that heartbeat count,
except for the node gone rule.

Each rule, its severity, what it finds, and its fingerprint (what makes a finding one alarm):

* zombie (critical): a session with no pong (nor connection, when it never got one) for
  ping_interval + ping_timeout + zombie_grace: the heartbeat failed to close it. The sid.
* orphan (warning): sockets, clients, room entries or acknowledgements that no open session
  backs, listed by their node's audit for longer than stuck_grace. The node id.
* duplicate (warning): several live sessions of one client fingerprint, the second open for
  longer than duplicate_grace: a client that reconnects without closing. The fingerprint.
* storm (warning): more than storm_threshold parse errors and refusals from one address within
  storm_window, summed over the nodes. The address.
* stuck (warning): a session mid-upgrade for upgrade_timeout + stuck_grace, or in no namespace
  for connect_timeout + stuck_grace. The sid.
* node gone (critical): a node that stopped heartbeating left sessions. The node id.
* slow consumer (warning): sessions of one address closed for a full send queue within
  slow_consumer_window: a client that stops reading. The address.

The slow consumer's fingerprint is the address, not the node: what to find is the client that
stops reading, and a node's alarm would merge unrelated clients into one count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, DateTimeField, ExpressionWrapper, F, QuerySet
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Coalesce

from .. import conf
from ..models import Alarm, LiveSession, Node, NodeSample
from .registry import STORM_KINDS, batches, delete_sessions

__all__ = [
    "MAX_FINDINGS",
    "Evaluation",
    "Finding",
    "SessionWatch",
    "Thresholds",
    "evaluate",
    "mark_gone",
    "purge",
]

#: Findings one rule reports at most per evaluation; when it finds more, the alarms of its
#: kind that it did not list are left as they are (neither seen nor resolved).
MAX_FINDINGS = 200
#: Sessions the stuck rule reads per state (most are not stuck: they just opened).
STUCK_ROWS = 5 * MAX_FINDINGS
#: Session ids an alarm names at most (its details say how many there were).
MAX_SIDS = 50
#: Rows a purge deletes per statement, and statements per evaluation.
PURGE_BATCH = 1000
PURGE_BATCHES = 10

Kind = Alarm.Kind
Severity = Alarm.Severity
_MID_UPGRADE = ("probing", "upgrading")


def _ms(value: int) -> timedelta:
    return timedelta(milliseconds=value)


@dataclass(frozen=True)
class Thresholds:
    """The settings the rules read (``CHANNELS_SIO`` and its ``monitoring`` dict)."""

    ping_interval: timedelta
    ping_timeout: timedelta
    upgrade_timeout: timedelta
    connect_timeout: timedelta
    node_timeout: timedelta
    flush_interval: timedelta
    zombie_grace: timedelta
    duplicate_grace: timedelta
    storm_window: timedelta
    storm_threshold: int
    stuck_grace: timedelta
    slow_consumer_window: timedelta
    retention: timedelta

    @classmethod
    def from_settings(cls) -> Thresholds:
        values = {**conf.MONITORING_DEFAULTS, **(conf.monitoring_settings() or {})}
        return cls(
            ping_interval=_ms(conf.get("ping_interval")),
            ping_timeout=_ms(conf.get("ping_timeout")),
            upgrade_timeout=_ms(conf.get("upgrade_timeout")),
            connect_timeout=_ms(conf.get("connect_timeout")),
            node_timeout=_ms(conf.get("node_timeout")),
            flush_interval=_ms(values["flush_interval"]),
            zombie_grace=_ms(values["zombie_grace"]),
            duplicate_grace=_ms(values["duplicate_grace"]),
            storm_window=_ms(values["storm_window"]),
            storm_threshold=values["storm_threshold"],
            stuck_grace=_ms(values["stuck_grace"]),
            slow_consumer_window=_ms(values["slow_consumer_window"]),
            retention=_ms(values["retention"]),
        )

    @property
    def zombie_after(self) -> timedelta:
        return self.ping_interval + self.ping_timeout + self.zombie_grace

    @property
    def node_gone_after(self) -> timedelta:
        return max(3 * self.flush_interval, self.node_timeout)

    @property
    def stuck_upgrade_after(self) -> timedelta:
        return self.upgrade_timeout + self.stuck_grace

    @property
    def stuck_connect_after(self) -> timedelta:
        return self.connect_timeout + self.stuck_grace


@dataclass(frozen=True)
class Finding:
    """One thing a rule found; ``kind`` and ``fingerprint`` make it one alarm."""

    kind: str
    fingerprint: str
    severity: str
    node: str = ""
    sids: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.fingerprint


@dataclass
class Evaluation:
    """The findings of one evaluation; ``complete``: the kinds whose findings are all listed
    (an open alarm of such a kind that was not found again is resolved)."""

    findings: list[Finding] = field(default_factory=list)
    complete: set[str] = field(default_factory=set)


class SessionWatch:
    """Since when the evaluating node has seen each session in a state the registry does not
    date: mid-upgrade, and in no namespace after it left the ones it joined. It lives in the
    lease holder's memory; a new holder starts from the open alarms, so the lease moving
    neither resolves nor delays an alarm raised before."""

    def __init__(self) -> None:
        self.upgrading: dict[str, datetime] = {}
        self.unjoined: dict[str, datetime] = {}

    def clear(self) -> None:
        self.upgrading.clear()
        self.unjoined.clear()


@dataclass
class _Context:
    using: str
    thresholds: Thresholds
    now: datetime
    watch: SessionWatch
    _reports: list[tuple[str, dict[str, Any]]] | None = None

    @property
    def live(self) -> QuerySet[LiveSession]:
        """The live sessions of the nodes that heartbeat."""
        return LiveSession.objects.using(self.using).filter(
            state=LiveSession.State.LIVE, node__gone_at__isnull=True
        )

    def reports(self) -> list[tuple[str, dict[str, Any]]]:
        """The report of each node that heartbeats (a report of another shape is skipped);
        read once per evaluation."""
        if self._reports is None:
            nodes = Node.objects.using(self.using).filter(gone_at__isnull=True).order_by("id")
            self._reports = [
                (node_id, report)
                for node_id, report in nodes.values_list("id", "report")
                if isinstance(report, dict)
            ]
        return self._reports


Rule = Callable[[_Context], tuple[list[Finding], bool]]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _before_heartbeat(after: timedelta) -> ExpressionWrapper[CombinedExpression]:
    """Its node's last heartbeat minus ``after``: the time a session's row is compared with."""
    return ExpressionWrapper(F("node__last_heartbeat") - after, output_field=DateTimeField())


def _capped(found: list[Finding]) -> tuple[list[Finding], bool]:
    return found[:MAX_FINDINGS], len(found) <= MAX_FINDINGS


def _one_node(nodes: Iterable[str]) -> str:
    distinct = set(nodes)
    return distinct.pop() if len(distinct) == 1 else ""


# -- the rules ----------------------------------------------------------------------------


def zombies(ctx: _Context) -> tuple[list[Finding], bool]:
    rows = (
        ctx.live.annotate(heard=Coalesce("last_pong_at", "connected_at"))
        .filter(heard__lt=_before_heartbeat(ctx.thresholds.zombie_after))
        .order_by("heard", "sid")
        .values_list("sid", "node_id", "heard", "address", "transport", "node__last_heartbeat")
    )
    found = [
        Finding(
            Kind.ZOMBIE,
            sid,
            Severity.CRITICAL,
            node_id,
            (sid,),
            {
                "last_heard": _iso(heard),
                "silent_s": round((heartbeat - heard).total_seconds(), 1),
                "address": address,
                "transport": transport,
            },
        )
        for sid, node_id, heard, address, transport, heartbeat in rows[: MAX_FINDINGS + 1]
    ]
    return _capped(found)


def orphans(ctx: _Context) -> tuple[list[Finding], bool]:
    found = []
    for node_id, report in ctx.reports():
        items = report.get("orphans")
        if not isinstance(items, list) or not items:
            continue
        sids = sorted(
            {str(item["sid"]) for item in items if isinstance(item, dict) and item.get("sid")}
        )
        kinds = Counter(str(item.get("what")) for item in items if isinstance(item, dict))
        found.append(
            Finding(
                Kind.ORPHAN,
                node_id,
                Severity.WARNING,
                node_id,
                tuple(sids[:MAX_SIDS]),
                {"orphans": items, "by_kind": dict(kinds)},
            )
        )
    return _capped(found)


def duplicates(ctx: _Context) -> tuple[list[Finding], bool]:
    # The second session is older than the grace exactly when two of them are.
    cut = ctx.now - ctx.thresholds.duplicate_grace
    fingerprints = list(
        ctx.live.exclude(fingerprint="")
        .filter(connected_at__lt=cut)
        .values("fingerprint")
        .annotate(sessions=Count("sid"))
        .filter(sessions__gte=2)
        .order_by("fingerprint")
        .values_list("fingerprint", flat=True)[: MAX_FINDINGS + 1]
    )
    groups: dict[str, list[tuple[str, str, datetime, str]]] = {}
    for chunk in batches(fingerprints[:MAX_FINDINGS]):
        rows = (
            ctx.live.filter(fingerprint__in=chunk)
            .order_by("fingerprint", "connected_at", "sid")
            .values_list("fingerprint", "sid", "node_id", "connected_at", "address")
        )
        for fingerprint, sid, node_id, connected_at, address in rows:
            groups.setdefault(fingerprint, []).append((sid, node_id, connected_at, address))
    found = []
    for fingerprint, sessions in groups.items():
        found.append(
            Finding(
                Kind.DUPLICATE,
                fingerprint,
                Severity.WARNING,
                _one_node(node for _, node, _, _ in sessions),
                tuple(sid for sid, _, _, _ in sessions[:MAX_SIDS]),
                {
                    "sessions": len(sessions),
                    "nodes": sorted({node for _, node, _, _ in sessions}),
                    "addresses": sorted({address for _, _, _, address in sessions}),
                    "oldest": _iso(sessions[0][2]),
                    "newest": _iso(sessions[-1][2]),
                },
            )
        )
    return found, len(fingerprints) <= MAX_FINDINGS


def _by_address(ctx: _Context, key: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Each address of the nodes' ``report[key]``, with each node's entry for it."""
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for node_id, report in ctx.reports():
        entries = report.get(key)
        if not isinstance(entries, dict):
            continue
        for address, entry in entries.items():
            if isinstance(entry, dict):
                found.setdefault(address, []).append((node_id, entry))
    return found


def storms(ctx: _Context) -> tuple[list[Finding], bool]:
    threshold = ctx.thresholds.storm_threshold
    found = []
    for address, entries in sorted(_by_address(ctx, "storm").items()):
        by_kind: Counter[str] = Counter()
        for _, counts in entries:
            by_kind.update({k: int(n) for k, n in counts.items() if k in STORM_KINDS})
        total = sum(by_kind.values())
        if total > threshold:
            nodes = [node_id for node_id, _ in entries]
            found.append(
                Finding(
                    Kind.STORM,
                    address,
                    Severity.WARNING,
                    _one_node(nodes),
                    (),
                    {
                        "events": total,
                        "by_kind": dict(by_kind),
                        "threshold": threshold,
                        "window_s": ctx.thresholds.storm_window.total_seconds(),
                        "nodes": nodes,
                    },
                )
            )
    return _capped(found)


def stuck(ctx: _Context) -> tuple[list[Finding], bool]:
    thresholds, now, watch = ctx.thresholds, ctx.now, ctx.watch
    # A new holder knows, from the open alarms, of the sessions stuck before it took over.
    open_alarms = {
        alarm.fingerprint: alarm
        for alarm in Alarm.objects.using(ctx.using).filter(
            kind=Kind.STUCK, resolved_at__isnull=True
        )
    }

    def since(sid: str, reason: str, after: timedelta, seen: dict[str, datetime]) -> datetime:
        alarm = open_alarms.get(sid)
        if sid in seen:
            return seen[sid]
        if alarm is not None and alarm.details.get("reason") == reason:
            return alarm.first_seen - after
        return now

    found = []
    after = thresholds.stuck_connect_after
    unjoined = list(
        ctx.live.filter(namespaces="")
        .order_by("connected_at", "sid")
        .values_list(
            "sid",
            "node_id",
            "connected_at",
            "packets_in",
            "address",
            "transport",
            "node__last_heartbeat",
        )[: STUCK_ROWS + 1]
    )
    unjoined_since: dict[str, datetime] = {}
    for sid, node_id, connected_at, packets_in, address, transport, heartbeat in unjoined:
        if packets_in == 0:
            # Never joined one (a CONNECT is a message): its connect timeout started with it.
            began, stuck_for = connected_at, heartbeat - connected_at
        else:
            # It left every namespace it joined: stuck since the holder first saw it so.
            began = unjoined_since[sid] = since(sid, "no namespace", after, watch.unjoined)
            stuck_for = now - began
        if stuck_for >= after:
            details = {"reason": "no namespace", "since": _iso(began), "address": address}
            found.append(
                Finding(
                    Kind.STUCK,
                    sid,
                    Severity.WARNING,
                    node_id,
                    (sid,),
                    {**details, "connected_at": _iso(connected_at), "transport": transport},
                )
            )
    watch.unjoined = unjoined_since

    after = thresholds.stuck_upgrade_after
    upgrading = list(
        ctx.live.filter(upgrade__in=_MID_UPGRADE)
        .order_by("connected_at", "sid")
        .values_list("sid", "node_id", "upgrade", "address")[: STUCK_ROWS + 1]
    )
    upgrading_since: dict[str, datetime] = {}
    for sid, node_id, upgrade, address in upgrading:
        began = upgrading_since[sid] = since(sid, "upgrade", after, watch.upgrading)
        if now - began >= after:
            details = {"reason": "upgrade", "since": _iso(began), "address": address}
            found.append(
                Finding(
                    Kind.STUCK,
                    sid,
                    Severity.WARNING,
                    node_id,
                    (sid,),
                    {**details, "upgrade": upgrade},
                )
            )
    watch.upgrading = upgrading_since
    complete = len(unjoined) <= STUCK_ROWS and len(upgrading) <= STUCK_ROWS
    return found[:MAX_FINDINGS], complete and len(found) <= MAX_FINDINGS


def gone_nodes(ctx: _Context) -> tuple[list[Finding], bool]:
    sessions = LiveSession.objects.using(ctx.using).filter(node__gone_at__isnull=False)
    counts = list(
        sessions.values("node_id")
        .annotate(sessions=Count("sid"))
        .order_by("node_id")
        .values_list("node_id", "sessions")[: MAX_FINDINGS + 1]
    )
    nodes = Node.objects.using(ctx.using).in_bulk([node_id for node_id, _ in counts])
    found = []
    for node_id, count in counts[:MAX_FINDINGS]:
        node = nodes[node_id]
        sids = sessions.filter(node_id=node_id).order_by("sid").values_list("sid", flat=True)
        found.append(
            Finding(
                Kind.NODE_GONE,
                node_id,
                Severity.CRITICAL,
                node_id,
                tuple(sids[:MAX_SIDS]),
                {
                    "host": node.host,
                    "pid": node.pid,
                    "sessions": count,
                    "last_heartbeat": _iso(node.last_heartbeat),
                    "gone_at": _iso(node.gone_at),
                },
            )
        )
    return found, len(counts) <= MAX_FINDINGS


def slow_consumers(ctx: _Context) -> tuple[list[Finding], bool]:
    found = []
    for address, entries in sorted(_by_address(ctx, "slow").items()):
        count = sum(int(entry.get("count", 0)) for _, entry in entries)
        if not count:
            continue
        sids = [str(sid) for _, entry in entries for sid in entry.get("sids", ())]
        nodes = [node_id for node_id, _ in entries]
        found.append(
            Finding(
                Kind.SLOW_CONSUMER,
                address,
                Severity.WARNING,
                _one_node(nodes),
                tuple(sids[:MAX_SIDS]),
                {
                    "closed": count,
                    "window_s": ctx.thresholds.slow_consumer_window.total_seconds(),
                    "nodes": nodes,
                },
            )
        )
    return _capped(found)


RULES: dict[str, Rule] = {
    Kind.ZOMBIE: zombies,
    Kind.ORPHAN: orphans,
    Kind.DUPLICATE: duplicates,
    Kind.STORM: storms,
    Kind.STUCK: stuck,
    Kind.NODE_GONE: gone_nodes,
    Kind.SLOW_CONSUMER: slow_consumers,
}


def evaluate(using: str, thresholds: Thresholds, now: datetime, watch: SessionWatch) -> Evaluation:
    """Every rule's findings now (a few queries per rule, none per session)."""
    ctx = _Context(using, thresholds, now, watch)
    evaluation = Evaluation()
    for kind, rule in RULES.items():
        findings, complete = rule(ctx)
        evaluation.findings.extend(findings)
        if complete:
            evaluation.complete.add(kind)
    return evaluation


# -- nodes that stopped, and rows past their retention ------------------------------------


def mark_gone(using: str, thresholds: Thresholds, now: datetime) -> list[str]:
    """Mark gone the nodes whose last heartbeat is older than ``node_gone_after``, and the
    sessions of every gone node; the ids of the nodes marked now."""
    cut = now - thresholds.node_gone_after
    stale = Node.objects.using(using).filter(gone_at__isnull=True, last_heartbeat__lt=cut)
    ids = list(stale.values_list("id", flat=True))
    if ids:
        # The condition again: a node that flushed meanwhile stays.
        stale.filter(id__in=ids).update(gone_at=now)
    # Joined with the node rows rather than by the ids above, for the same reason.
    sessions = LiveSession.objects.using(using).filter(
        state=LiveSession.State.LIVE, node__gone_at__isnull=False
    )
    sessions.update(state=LiveSession.State.GONE)
    return ids


def purge(using: str, thresholds: Thresholds, now: datetime) -> int:
    """Delete the nodes gone for longer than ``retention`` with their sessions, and the node
    samples and alarms resolved longer ago than it: ``PURGE_BATCH`` rows per statement, at
    most ``PURGE_BATCHES`` batches of each per call (the rest at the next one). Runs in
    autocommit: each batch is a short transaction of its own. The number of rows deleted."""
    horizon = now - thresholds.retention
    removed = 0
    expired = LiveSession.objects.using(using).filter(node__gone_at__lt=horizon)
    for _ in range(PURGE_BATCHES):
        sids = list(expired.values_list("sid", flat=True)[:PURGE_BATCH])
        delete_sessions(using, sids)
        removed += len(sids)
        if len(sids) < PURGE_BATCH:
            # No session left on them: the nodes go too.
            nodes = Node.objects.using(using).filter(gone_at__lt=horizon)
            removed += nodes.exclude(live_sessions__isnull=False)._raw_delete(using)
            break
    for old in (
        NodeSample.objects.using(using).filter(at__lt=horizon),
        Alarm.objects.using(using).filter(resolved_at__lt=horizon),
    ):
        for _ in range(PURGE_BATCHES):
            keys = list(old.values_list("pk", flat=True)[:PURGE_BATCH])
            if keys:
                removed += old.model.objects.using(using).filter(pk__in=keys)._raw_delete(using)
            if len(keys) < PURGE_BATCH:
                break
    return removed
