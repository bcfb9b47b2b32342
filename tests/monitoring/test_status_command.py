"""``manage.py socketio_status``: the nodes, live sessions and open alarms, as tables or JSON;
exit status 2 with ``--fail-on`` when an open alarm of at least that severity exists."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from channels_sio.management.commands import socketio_status
from channels_sio.models import Alarm

from .conftest import Rows

pytestmark = pytest.mark.django_db(databases="__all__")


def status(using: str, *args: str) -> tuple[int, str]:
    """The command's exit status and output."""
    out = StringIO()
    try:
        call_command("socketio_status", "--database", using, *args, stdout=out, no_color=True)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


def alarm(
    using: str, kind: str, severity: str, fingerprint: str, *, resolved: bool = False
) -> None:
    now = timezone.now()
    Alarm.objects.using(using).create(
        kind=kind,
        severity=severity,
        fingerprint=fingerprint,
        node="n1",
        sids=["s1", "s2"],
        details={"sessions": 2},
        first_seen=now,
        last_seen=now,
        count=3,
        resolved_at=now if resolved else None,
    )


@pytest.fixture
def registry(rows: Rows) -> Rows:
    rows.node("n1", heartbeat_ago=0.5)
    rows.node("n2", heartbeat_ago=600, gone_ago=500)
    rows.session("sid-old", "n1", connected_ago=125, namespaces="/\n/chat", address="10.0.0.7")
    rows.session("sid-new", "n1", connected_ago=5, namespaces="", address="10.0.0.8")
    alarm(rows.using, Alarm.Kind.DUPLICATE, "warning", "address:10.0.0.7|ua")
    alarm(rows.using, Alarm.Kind.ZOMBIE, "critical", "sid-zombie", resolved=True)
    return rows


def test_tables_of_nodes_sessions_and_open_alarms(registry: Rows) -> None:
    code, out = status(registry.using)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Nodes (2)"
    assert lines[1].split()[:4] == ["NODE", "HOST", "PID", "STATE"]
    assert lines[2].split()[:4] == ["n1", "host", "1234", "live"]
    assert lines[3].split()[:4] == ["n2", "host", "1234", "gone"]
    assert "Live sessions (2 of 2)" in lines
    sessions = lines[lines.index("Live sessions (2 of 2)") + 1 :]
    assert sessions[0].split() == [
        "SID",
        "NODE",
        "STATE",
        "TRANSPORT",
        "ADDRESS",
        "USER",
        "NAMESPACES",
        "CONNECTED",
        "RTT",
    ]
    assert sessions[1].split() == [
        "sid-new",
        "n1",
        "live",
        "websocket",
        "10.0.0.8",
        "-",
        "-",
        "5s",
        "-",
    ]
    assert sessions[2].split()[:8] == [
        "sid-old",
        "n1",
        "live",
        "websocket",
        "10.0.0.7",
        "-",
        "/,/chat",
        "2m05s",
    ]
    assert "Open alarms (1)" in lines
    assert "duplicate client (warning): 2 live sessions of address:10.0.0.7|ua" in out
    assert "seen 3 times" in out
    assert "sid-zombie" not in out  # resolved


def test_json_and_the_session_limit(registry: Rows) -> None:
    code, out = status(registry.using, "--json", "--limit", "1")
    assert code == 0
    data = json.loads(out)
    assert [node["id"] for node in data["nodes"]] == ["n1", "n2"]
    assert [node["state"] for node in data["nodes"]] == ["live", "gone"]
    assert [session["sid"] for session in data["sessions"]] == ["sid-new"]
    assert data["sessions_total"] == 2
    [open_alarm] = data["alarms"]
    assert open_alarm["kind"] == "duplicate"
    assert open_alarm["sids"] == ["s1", "s2"]
    assert open_alarm["summary"].startswith("duplicate client (warning)")
    _, everything = status(registry.using, "--json", "--limit", "0")
    assert len(json.loads(everything)["sessions"]) == 2


def test_fail_on_exits_2_for_an_open_alarm_of_that_severity_or_worse(registry: Rows) -> None:
    code, out = status(registry.using, "--fail-on", "warning")
    assert code == socketio_status.ALARM_STATUS == 2
    assert "1 open alarm(s) of severity warning or worse" in out
    assert status(registry.using, "--fail-on", "critical")[0] == 0  # the critical one resolved
    alarm(registry.using, Alarm.Kind.NODE_GONE, "critical", "n2")
    code, out = status(registry.using, "--json", "--fail-on", "critical")
    assert code == 2
    data = json.loads(out[: out.rindex("}") + 1])
    assert [a["severity"] for a in data["alarms"]] == ["critical", "warning"]  # worst first


def test_an_empty_registry(using: str) -> None:
    code, out = status(using, "--fail-on", "warning")
    assert code == 0
    assert out.splitlines() == ["Nodes (0)", "Live sessions (0 of 0)", "Open alarms (0)"]


def test_missing_tables_are_an_error_that_says_what_to_run(
    using: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socketio_status, "missing_tables", lambda using: ["channels_sio_node"])
    code, out = status(using)
    assert code == 1
    assert "run `manage.py migrate channels_sio`" in out
