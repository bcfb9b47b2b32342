"""The leak rules over registry rows made by hand, on SQLite and PostgreSQL: each rule's
boundary, the rows it ignores, nodes marked gone, and the purge."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from channels_sio.models import Alarm, LiveSession, LiveSocket, Node, NodeSample
from channels_sio.monitoring import rules
from channels_sio.monitoring.rules import Finding, SessionWatch, Thresholds

from .conftest import Rows, thresholds

pytestmark = pytest.mark.django_db(databases="__all__")

Kind = Alarm.Kind


def found(
    rows: Rows, kind: str, limits: Thresholds | None = None, watch: SessionWatch | None = None
) -> dict[str, Finding]:
    """The findings of ``kind`` now, by fingerprint."""
    evaluation = rules.evaluate(
        rows.using, limits or thresholds(), rows.now, watch or SessionWatch()
    )
    assert kind in evaluation.complete
    return {f.fingerprint: f for f in evaluation.findings if f.kind == kind}


# -- zombie -------------------------------------------------------------------------------


def test_a_session_silent_past_the_heartbeat_bound_is_a_zombie(rows: Rows) -> None:
    rows.node(heartbeat_ago=0.1)
    rows.session("answering", pong_ago=1.0)
    rows.session("silent", pong_ago=3.0)  # 2.9 s before its node's heartbeat: over 2.5 s
    rows.session("never-ponged", pong_ago=None, connected_ago=3.0)
    rows.session("new", pong_ago=None, connected_ago=1.0)
    zombies = found(rows, Kind.ZOMBIE)
    assert sorted(zombies) == ["never-ponged", "silent"]
    zombie = zombies["silent"]
    assert zombie.severity == Alarm.Severity.CRITICAL
    assert zombie.node == "n1"
    assert zombie.sids == ("silent",)
    assert zombie.details["silent_s"] == pytest.approx(2.9, abs=0.11)


def test_sessions_are_judged_against_their_own_nodes_heartbeat(rows: Rows) -> None:
    # The node's last flush was 10 s ago: its rows say what was true then, not now.
    rows.node("late", heartbeat_ago=10.0)
    rows.session("fine-then", "late", pong_ago=11.0, connected_ago=60.0)
    rows.node("gone", heartbeat_ago=30.0, gone_ago=5.0)
    rows.session("of-a-gone-node", "gone", pong_ago=40.0, state=LiveSession.State.GONE)
    assert found(rows, Kind.ZOMBIE) == {}


def test_a_rule_that_finds_too_many_lists_some_and_resolves_none(
    rows: Rows, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "MAX_FINDINGS", 2)
    rows.node()
    for n in range(3):
        rows.session(f"silent-{n}", pong_ago=10.0 + n)
    evaluation = rules.evaluate(rows.using, thresholds(), rows.now, SessionWatch())
    zombies = [f.fingerprint for f in evaluation.findings if f.kind == Kind.ZOMBIE]
    assert zombies == ["silent-2", "silent-1"]  # the longest silent first
    assert Kind.ZOMBIE not in evaluation.complete
    assert Kind.DUPLICATE in evaluation.complete


# -- orphan -------------------------------------------------------------------------------


def test_orphans_in_a_nodes_report_are_one_alarm_for_the_node(rows: Rows) -> None:
    orphan = {"what": "socket", "id": "s1", "namespace": "/", "sid": "gone-sid", "since": 1.0}
    room = {"what": "room entry", "id": "s2", "namespace": "/", "sid": "", "since": 1.0}
    rows.node("n1", report={"orphans": [orphan, room]})
    rows.node("n2", report={"orphans": []})
    rows.node("n3", gone_ago=1.0, heartbeat_ago=20.0, report={"orphans": [orphan]})
    rows.node("n4", report={"orphans": "not a list"})
    [(fingerprint, finding)] = found(rows, Kind.ORPHAN).items()
    assert fingerprint == "n1"
    assert finding.node == "n1"
    assert finding.sids == ("gone-sid",)
    assert finding.details["orphans"] == [orphan, room]
    assert finding.details["by_kind"] == {"socket": 1, "room entry": 1}


# -- duplicate ----------------------------------------------------------------------------


def test_two_live_sessions_of_one_fingerprint_past_the_grace_are_a_duplicate(rows: Rows) -> None:
    rows.node("n1")
    rows.node("n2")
    client = "address:10.0.0.1|ua"
    rows.session("old", "n1", fingerprint=client, connected_ago=60.0)
    rows.session("second", "n2", fingerprint=client, connected_ago=5.0)
    rows.session("third", "n2", fingerprint=client, connected_ago=0.1)
    rows.session("lone", "n1", fingerprint="address:10.0.0.2|ua", connected_ago=60.0)
    rows.session("anonymous-1", "n1", fingerprint="", connected_ago=60.0)
    rows.session("anonymous-2", "n1", fingerprint="", connected_ago=60.0)
    [(fingerprint, finding)] = found(rows, Kind.DUPLICATE).items()
    assert fingerprint == client
    assert finding.sids == ("old", "second", "third")  # oldest first
    assert finding.node == ""  # on two nodes
    assert finding.details["sessions"] == 3
    assert finding.details["nodes"] == ["n1", "n2"]


def test_a_client_reconnecting_within_the_grace_is_no_duplicate(rows: Rows) -> None:
    rows.node()
    rows.session("old", fingerprint="pid:p1", connected_ago=60.0)
    rows.session("new", fingerprint="pid:p1", connected_ago=0.5)  # the old one closes soon
    rows.session("gone", fingerprint="pid:p1", connected_ago=30.0, state=LiveSession.State.GONE)
    assert found(rows, Kind.DUPLICATE) == {}


# -- storm --------------------------------------------------------------------------------


def test_parse_errors_and_refusals_from_one_address_are_summed_over_the_nodes(rows: Rows) -> None:
    rows.node("n1", report={"storm": {"10.9.9.9": {"parse error": 3}, "10.1.1.1": {"refused": 5}}})
    rows.node("n2", report={"storm": {"10.9.9.9": {"refused": 3, "slow": 100}}})
    rows.node("n3", gone_ago=1.0, report={"storm": {"10.1.1.1": {"refused": 50}}})
    [(address, finding)] = found(rows, Kind.STORM).items()
    assert address == "10.9.9.9"  # 6 > 5; 10.1.1.1 has 5, not more than the threshold
    assert finding.details["events"] == 6
    assert finding.details["by_kind"] == {"parse error": 3, "refused": 3}
    assert finding.details["nodes"] == ["n1", "n2"]
    assert finding.severity == Alarm.Severity.WARNING


# -- stuck --------------------------------------------------------------------------------


def test_a_session_in_no_namespace_past_the_connect_timeout_is_stuck(rows: Rows) -> None:
    rows.node(heartbeat_ago=0.0)
    rows.session("nowhere", namespaces="", connected_ago=2.0)
    rows.session("just-opened", namespaces="", connected_ago=1.0)
    rows.session("joined", namespaces="/", connected_ago=60.0)
    [(sid, finding)] = found(rows, Kind.STUCK).items()
    assert sid == "nowhere"
    assert finding.details["reason"] == "no namespace"


def test_a_session_that_left_every_namespace_is_stuck_once_seen_so_past_the_bound(
    rows: Rows,
) -> None:
    rows.node()
    left = rows.session("left", namespaces="", connected_ago=600.0)
    LiveSession.objects.using(rows.using).filter(pk=left.pk).update(packets_in=2)  # in, out
    watch = SessionWatch()
    assert found(rows, Kind.STUCK, watch=watch) == {}  # an old session, yet it just left
    rows.now += timedelta(seconds=1)
    assert found(rows, Kind.STUCK, watch=watch) == {}
    rows.now += timedelta(seconds=1)  # 2 s > connect_timeout + stuck_grace
    [(sid, finding)] = found(rows, Kind.STUCK, watch=watch).items()
    assert (sid, finding.details["reason"]) == ("left", "no namespace")
    LiveSession.objects.using(rows.using).filter(pk=left.pk).update(namespaces="/chat")
    assert found(rows, Kind.STUCK, watch=watch) == {}
    assert watch.unjoined == {}


def test_a_session_mid_upgrade_is_stuck_once_seen_so_past_the_upgrade_bound(rows: Rows) -> None:
    rows.node()
    rows.session("probing", upgrade="probing")
    rows.session("upgraded", upgrade="upgraded")
    watch = SessionWatch()
    assert found(rows, Kind.STUCK, watch=watch) == {}
    rows.now += timedelta(seconds=1)
    assert found(rows, Kind.STUCK, watch=watch) == {}
    rows.now += timedelta(seconds=1)  # 2 s > upgrade_timeout + stuck_grace
    [(sid, finding)] = found(rows, Kind.STUCK, watch=watch).items()
    assert sid == "probing"
    assert finding.details["reason"] == "upgrade"
    # A new holder of the lease knows it from the open alarm: no resolve, no new alarm.
    Alarm.objects.using(rows.using).create(
        kind=Kind.STUCK,
        severity="warning",
        fingerprint="probing",
        details=finding.details,
        first_seen=rows.now,
        last_seen=rows.now,
    )
    assert list(found(rows, Kind.STUCK, watch=SessionWatch())) == ["probing"]
    # Upgraded meanwhile: forgotten.
    LiveSession.objects.using(rows.using).filter(sid="probing").update(upgrade="upgraded")
    assert found(rows, Kind.STUCK, watch=watch) == {}
    assert watch.upgrading == {}


# -- node gone ----------------------------------------------------------------------------


def test_a_node_that_stopped_heartbeating_is_marked_gone_with_its_sessions(rows: Rows) -> None:
    rows.node("dead", heartbeat_ago=5.0)  # over max(3 x 200 ms, node_timeout 2 s)
    rows.session("left-1", "dead", sockets=1)
    rows.session("left-2", "dead")
    rows.node("empty", heartbeat_ago=5.0)
    rows.node("alive", heartbeat_ago=1.0)
    rows.session("fine", "alive")
    limits = thresholds()
    assert sorted(rules.mark_gone(rows.using, limits, rows.now)) == ["dead", "empty"]
    nodes = Node.objects.using(rows.using)
    assert nodes.get(id="dead").gone_at == rows.now
    assert nodes.get(id="alive").gone_at is None
    states = dict(LiveSession.objects.using(rows.using).values_list("sid", "state"))
    assert states == {"left-1": "gone", "left-2": "gone", "fine": "live"}
    [(node_id, finding)] = found(rows, Kind.NODE_GONE, limits).items()
    assert node_id == "dead"  # "empty" left no session: no alarm
    assert finding.severity == Alarm.Severity.CRITICAL
    assert finding.sids == ("left-1", "left-2")
    assert finding.details["sessions"] == 2
    assert finding.details["pid"] == 1234
    # Marking again changes nothing.
    assert rules.mark_gone(rows.using, limits, rows.now + timedelta(seconds=1)) == []
    assert nodes.get(id="dead").gone_at == rows.now


def test_a_node_is_gone_after_three_flushes_or_node_timeout_whichever_is_longer(
    rows: Rows,
) -> None:
    rows.node("slow-flusher", heartbeat_ago=1.5)
    assert rules.mark_gone(rows.using, thresholds(), rows.now) == []  # within node_timeout
    limits = thresholds(flush_interval=1000)  # 3 flushes: 3 s, longer than node_timeout
    assert rules.mark_gone(rows.using, limits, rows.now + timedelta(seconds=1)) == []
    assert rules.mark_gone(rows.using, limits, rows.now + timedelta(seconds=2)) == ["slow-flusher"]


# -- slow consumer ------------------------------------------------------------------------


def test_sessions_closed_for_a_full_send_queue_are_a_slow_consumer(rows: Rows) -> None:
    slow: dict[str, Any] = {"10.5.5.5": {"count": 2, "sids": ["a", "b"], "last": 1.0}}
    rows.node("n1", report={"slow": slow})
    rows.node("n2", report={"slow": {"10.5.5.5": {"count": 1, "sids": ["c"], "last": 1.0}}})
    rows.node("n3", report={"slow": {}})
    [(address, finding)] = found(rows, Kind.SLOW_CONSUMER).items()
    assert address == "10.5.5.5"
    assert finding.sids == ("a", "b", "c")
    assert finding.details["closed"] == 3
    assert finding.node == ""


def test_a_healthy_registry_has_no_finding(rows: Rows) -> None:
    rows.node("n1", report={"orphans": [], "storm": {}, "slow": {}})
    for n in range(5):
        rows.session(f"s{n}", fingerprint=f"address:10.0.0.{n}|ua", sockets=1)
    evaluation = rules.evaluate(rows.using, thresholds(), rows.now, SessionWatch())
    assert evaluation.findings == []
    assert evaluation.complete == set(rules.RULES)


# -- purge --------------------------------------------------------------------------------


def test_rows_gone_for_longer_than_the_retention_are_purged_in_batches(
    rows: Rows, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "PURGE_BATCH", 2)
    rows.node("long-gone", gone_ago=120.0, heartbeat_ago=130.0)
    for n in range(5):
        rows.session(f"old-{n}", "long-gone", state=LiveSession.State.GONE, sockets=1)
    rows.node("just-gone", gone_ago=10.0, heartbeat_ago=20.0)
    rows.session("recent", "just-gone", state=LiveSession.State.GONE, sockets=1)
    rows.node("alive")
    samples = NodeSample.objects.using(rows.using)
    for age in (5, 70, 80, 90):
        samples.create(node="alive", at=rows.ago(age), sessions=1)
    alarms = Alarm.objects.using(rows.using)
    for name, resolved in (("open", None), ("recent", 5), ("old", 70)):
        alarms.create(
            kind=Alarm.Kind.STUCK,
            severity=Alarm.Severity.WARNING,
            fingerprint=name,
            first_seen=rows.ago(100),
            last_seen=rows.ago(80),
            resolved_at=None if resolved is None else rows.ago(resolved),
        )
    removed = rules.purge(rows.using, thresholds(), rows.now)
    assert removed == 5 + 1 + 3 + 1  # sessions, the node, samples, the old resolved alarm
    assert sorted(alarms.values_list("fingerprint", flat=True)) == ["open", "recent"]
    assert sorted(Node.objects.using(rows.using).values_list("id", flat=True)) == [
        "alive",
        "just-gone",
    ]
    assert list(LiveSession.objects.using(rows.using).values_list("sid", flat=True)) == ["recent"]
    assert list(LiveSocket.objects.using(rows.using).values_list("id", flat=True)) == [
        "recent-socket-0"
    ]
    assert samples.count() == 1


def test_a_purge_stops_after_its_batches_and_goes_on_next_time(
    rows: Rows, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "PURGE_BATCH", 2)
    monkeypatch.setattr(rules, "PURGE_BATCHES", 2)
    rows.node("long-gone", gone_ago=120.0, heartbeat_ago=130.0)
    for n in range(5):
        rows.session(f"old-{n}", "long-gone", state=LiveSession.State.GONE)
    assert rules.purge(rows.using, thresholds(), rows.now) == 4
    assert Node.objects.using(rows.using).filter(id="long-gone").exists()  # sessions left
    assert rules.purge(rows.using, thresholds(), rows.now) == 2
    assert not Node.objects.using(rows.using).exists()
