"""The monitoring pages of the admin, with Django's test client: live sessions (search, filters,
sorting, paging, the session's page), nodes, alarms, the section's charts, the actions (each
message read back from the real in-memory channel layer, and carried out by a real node to a
real client), and who may see and do what."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.core.asgi import get_asgi_application
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from channels_sio import Socket
from channels_sio.asgi import get_application
from channels_sio.cluster.node import Node as ClusterNode
from channels_sio.cluster.protocol import ADMIN
from channels_sio.models import Alarm, LiveSession, LiveSocket, Node, NodeSample
from channels_sio.monitoring.actions import Action, AdminAction, send_action
from channels_sio.socketio import SocketIOServer
from channels_sio.templatetags.channels_sio_admin import nice_top
from channels_sio.testing import SocketIOCommunicator

SESSIONS = reverse("admin:channels_sio_livesession_changelist")
NODES = reverse("admin:channels_sio_node_changelist")
ALARMS = reverse("admin:channels_sio_alarm_changelist")
SECTION = reverse("admin:app_list", args=["channels_sio"])
CHANNEL = "channels_sio.node.test!one"
OTHER_CHANNEL = "channels_sio.node.test!two"


def session_url(sid: str) -> str:
    return reverse("admin:channels_sio_livesession_change", args=[sid])


def alarm_url(alarm: Alarm) -> str:
    return reverse("admin:channels_sio_alarm_change", args=[alarm.pk])


def make_node(
    node_id: str = "aaaa0001", channel: str = CHANNEL, gone: bool = False, sessions: int = 0
) -> Node:
    now = timezone.now()
    return Node.objects.create(
        id=node_id,
        host="web-1",
        pid=4242,
        channel=channel,
        started_at=now - timedelta(minutes=10),
        last_heartbeat=now - (timedelta(minutes=5) if gone else timedelta(seconds=1)),
        gone_at=now if gone else None,
        sessions=sessions,
        sockets=sessions,
        packets_in_per_s=1.5,
        packets_out_per_s=3.25,
        report={"orphans": [], "closes": {"transport close": 2}},
    )


def make_session(
    sid: str,
    node: Node,
    sockets: dict[str, list[str]] | None = None,
    *,
    age: int = 0,
    **fields: Any,
) -> LiveSession:
    """A session with a socket per namespace (``{namespace: rooms}``); the socket ids are
    ``<sid>-s<n>``, each also a room of its socket, as in socket.io."""
    sockets = {"/": []} if sockets is None else sockets
    now = timezone.now()
    socket_ids = [f"{sid}-s{n}" for n in range(len(sockets))]
    rooms = sorted({room for rooms in sockets.values() for room in rooms} | set(socket_ids))
    values: dict[str, Any] = {
        "transport": "websocket",
        "upgrade": "none",
        "address": "10.0.0.1",
        "user_agent": "Mozilla/5.0 test",
        "connected_at": now - timedelta(seconds=age),
        "last_pong_at": now - timedelta(seconds=3),
        "rtt_ms": 12.5,
        "packets_in": 10,
        "packets_out": 20,
        "bytes_in": 1000,
        "bytes_out": 2048,
        "fingerprint": f"address:10.0.0.1|{sid}",
        "handshake": {"headers": {"user-agent": "Mozilla/5.0 test"}, "query": "EIO=4"},
        "updated_at": now,
        **fields,
    }
    session = LiveSession.objects.create(
        sid=sid,
        node=node,
        namespaces="\n".join(sockets),
        socket_ids="\n".join(socket_ids),
        rooms="\n".join(rooms),
        **values,
    )
    for socket_id, (namespace, socket_rooms) in zip(socket_ids, sockets.items(), strict=True):
        LiveSocket.objects.create(
            id=socket_id,
            session=session,
            namespace=namespace,
            rooms=sorted([socket_id, *socket_rooms]),
            connected_at=now,
        )
    return session


def make_alarm(
    kind: str = Alarm.Kind.DUPLICATE,
    *,
    sids: list[str] | None = None,
    severity: str = Alarm.Severity.WARNING,
    node: str = "aaaa0001",
    fingerprint: str = "address:10.0.0.1|agent",
    resolved: bool = False,
    age: int = 0,
) -> Alarm:
    now = timezone.now()
    return Alarm.objects.create(
        kind=kind,
        severity=severity,
        fingerprint=fingerprint,
        node=node,
        sids=sids or [],
        details={"sessions": len(sids or [])},
        first_seen=now - timedelta(seconds=age + 60),
        last_seen=now - timedelta(seconds=age),
        count=3,
        resolved_at=now - timedelta(seconds=age) if resolved else None,
    )


def listed(response: Any) -> str:
    html = response.content.decode()
    found = re.search(r'<table id="result_list">.*?</table>', html, re.S)
    return found.group(0) if found else ""


def sids_listed(response: Any) -> set[str]:
    return set(re.findall(r'<th class="field-sid"><a href="[^"]*">([^<]+)</a>', listed(response)))


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


@pytest.fixture
def layer() -> Iterator[Any]:
    """The project's channel layer (in memory), emptied after the test."""
    found = get_channel_layer()
    yield found
    async_to_sync(found.flush)()


def received(layer: Any, channel: str = CHANNEL) -> list[dict[str, Any]]:
    """Every message waiting on ``channel``."""

    async def drain() -> list[dict[str, Any]]:
        found = []
        while True:
            try:
                async with asyncio.timeout(0.05):
                    found.append(await layer.receive(channel))
            except TimeoutError:
                return found

    return async_to_sync(drain)()


def action(client: Client, name: str, sids: list[str], url: str = SESSIONS, **fields: Any) -> Any:
    return client.post(url, {"action": name, "_selected_action": sids, **fields}, follow=True)


# -- the section page ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_section_lists_the_monitoring_pages_with_nothing_to_add(admin_client: Client) -> None:
    page = admin_client.get(SECTION).content.decode()
    for url in (SESSIONS, NODES, ALARMS):
        assert f'href="{url}"' in page
    for name in ("Live sessions", "Nodes", "Alarms", "Recovery sessions"):
        assert f">{name}<" in page
    assert not re.search(r"channels_sio/\w+/add/", page)
    assert "Live sockets" not in page  # an inline of the sessions
    assert 'class="breadcrumbs"' in page


@pytest.mark.django_db
def test_the_section_charts_sessions_per_node_and_alarms(admin_client: Client) -> None:
    now = timezone.now()
    make_node("aaaa0001", sessions=3)
    make_node("bbbb0002", channel=OTHER_CHANNEL, sessions=1)
    for minutes, first, second in ((50, 1, 0), (30, 2, 1), (29, 3, 1), (1, 3, 1)):
        NodeSample.objects.create(
            node="aaaa0001", at=now - timedelta(minutes=minutes), sessions=first
        )
        NodeSample.objects.create(
            node="bbbb0002", at=now - timedelta(minutes=minutes), sessions=second
        )
    NodeSample.objects.create(node="aaaa0001", at=now - timedelta(hours=2), sessions=99)  # too old
    make_alarm(age=600)  # open since 11 minutes
    make_alarm(severity=Alarm.Severity.CRITICAL, fingerprint="other", resolved=True, age=300)
    make_alarm(fingerprint="long ago", resolved=True, age=7200)
    html = admin_client.get(SECTION).content.decode()
    charts = re.search(r'<div id="csio-charts".*?</div>\s*<div id="content-main">', html, re.S)
    assert charts is not None, "the charts come before the list of pages"
    sessions = re.search(r'<figure[^>]*id="csio-sessions-chart".*?</figure>', html, re.S)
    alarms = re.search(r'<figure[^>]*id="csio-alarms-chart".*?</figure>', html, re.S)
    assert sessions is not None
    assert alarms is not None
    # Two nodes and their sum; the lone sample 50 minutes ago is a dot, the runs are lines.
    assert sessions.group(0).count('class="csio-series') == 3
    assert "aaaa0001 (web-1:4242): 3" in sessions.group(0)
    assert "all nodes: 4" in sessions.group(0)
    assert "<strong>4</strong> now, on 2 nodes up" in sessions.group(0)
    assert len(re.findall(r"<polyline", sessions.group(0))) == 3
    assert len(re.findall(r"<circle", sessions.group(0))) == 6
    assert ">99<" not in sessions.group(0)
    assert ">4<" in sessions.group(0)  # the axis: 0, 2, 4
    # Each minute with an open alarm has a bar; the critical one is stacked in its minutes.
    assert 'class="csio-critical-bar"' in alarms.group(0)
    bars = re.findall(r"<title>(\d\d:\d\d): (\d) warning, (\d) critical</title>", alarms.group(0))
    assert 10 <= len(bars) <= 12
    assert {(w, c) for _, w, c in bars} == {("1", "0"), ("1", "1")}
    assert "<strong>1</strong> now" in alarms.group(0)


@pytest.mark.django_db
def test_the_charts_say_when_there_is_nothing_yet(admin_client: Client) -> None:
    html = admin_client.get(SECTION).content.decode()
    assert "No node wrote a sample in the last hour" in html
    assert "<strong>0</strong> now, on 0 nodes up" in html


@pytest.mark.django_db
def test_each_chart_needs_the_permission_to_view_what_it_counts(client: Client) -> None:
    staff = User.objects.create_user("staff", password="x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_alarm"))
    client.force_login(staff)
    html = client.get(SECTION).content.decode()
    assert 'id="csio-alarms-chart"' in html
    assert 'id="csio-sessions-chart"' not in html


@pytest.mark.parametrize(
    ("value", "top"),
    [
        (0, 2),
        (1, 2),
        (2, 2),
        (3, 4),
        (7, 8),
        (9, 10),
        (11, 20),
        (21, 40),
        (99, 100),
        (101, 200),
        (4500, 6000),
    ],
)
def test_the_axis_top_has_a_whole_half(value: int, top: int) -> None:
    assert nice_top(value) == top


# -- live sessions: the list --------------------------------------------------------------------


@pytest.mark.django_db
def test_sessions_are_listed_newest_first_with_their_columns(admin_client: Client) -> None:
    node = make_node()
    make_session("sid-old", node, {"/": [], "/chat": ["lobby"]}, age=60)
    make_session("sid-new", node, username="ann", user_id="7", rtt_ms=None)
    make_session("sid-mid", node, transport="polling", upgrade="probing", age=30)
    page = admin_client.get(SESSIONS)
    table = listed(page)
    assert "polling (probing)" in table
    assert table.index("sid-new") < table.index("sid-old")
    for heading in ("User", "Address", "Transport", "Namespaces", "Rooms", "Node", "RTT", "State"):
        assert heading in table
    assert "ann (7)" in table
    assert "anonymous" in table
    assert "/, /chat" in table
    assert ">lobby<" in table  # rooms, without the sockets' own
    assert "sid-old-s0" not in table
    assert "12.5 ms" in table
    assert "10 / 20" in table
    assert 'class="csio-badge csio-ok">live<' in table


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("sid-b", {"sid-b"}),  # a session id
        ("sid-a-s1", {"sid-a"}),  # a socket id
        ("bob", {"sid-b"}),  # a username
        ("42", {"sid-b"}),  # a user id
        ("10.0.0.9", {"sid-a"}),  # an address
        ("lobby", {"sid-a"}),  # a room
        ("nothing-like-it", set()),
    ],
)
def test_sessions_are_searched(admin_client: Client, query: str, found: set[str]) -> None:
    node = make_node()
    make_session("sid-a", node, {"/": [], "/chat": ["lobby"]}, address="10.0.0.9")
    make_session("sid-b", node, {"/chat": ["kitchen"]}, username="bob", user_id="42")
    assert sids_listed(admin_client.get(SESSIONS, {"q": query})) == found


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "found"),
    [
        ({"node__id__exact": "bbbb0002"}, {"sid-c"}),
        ({"transport": "polling"}, {"sid-b"}),
        ({"namespace": "/chat"}, {"sid-a", "sid-b"}),  # not /chat2, a line of its own
        ({"namespace": "/"}, {"sid-a"}),
        ({"namespace": "/chat2"}, {"sid-c"}),
        ({"namespace": "-"}, {"sid-d"}),  # joined none
        ({"state__exact": "gone"}, {"sid-c"}),
    ],
)
def test_sessions_are_filtered(
    admin_client: Client, query: dict[str, str], found: set[str]
) -> None:
    one = make_node()
    two = make_node("bbbb0002", channel=OTHER_CHANNEL, gone=True)
    make_session("sid-a", one, {"/": [], "/chat": []})
    make_session("sid-b", one, {"/chat": []}, transport="polling")
    make_session("sid-c", two, {"/chat2": []}, state="gone")
    make_session("sid-d", one, {})
    page = admin_client.get(SESSIONS, query)
    assert page.status_code == 200
    assert sids_listed(page) == found


@pytest.mark.django_db
def test_the_namespace_filter_offers_the_namespaces_in_use(admin_client: Client) -> None:
    node = make_node()
    make_session("sid-a", node, {"/": [], "/chat": []})
    html = admin_client.get(SESSIONS).content.decode()
    for value in ("%2F", "%2Fchat", "-"):
        assert f'href="?namespace={value}"' in html


@pytest.mark.django_db
def test_sessions_are_sorted_and_paged(admin_client: Client) -> None:
    node = make_node()
    for n in range(55):
        make_session(f"sid-{n:02}", node, rtt_ms=float(n), age=n)
    first = admin_client.get(SESSIONS)
    assert len(sids_listed(first)) == 50
    assert "sid-00" in sids_listed(first)
    second = admin_client.get(SESSIONS, {"p": "2"})
    assert sids_listed(second) == {f"sid-{n}" for n in range(50, 55)}
    # The RTT column (the 11th, after the checkbox) sorts, highest first with "-".
    column = 1 + [
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
    ].index("rtt")
    by_rtt = listed(admin_client.get(SESSIONS, {"o": f"-{column}"}))
    assert by_rtt.index("sid-54") < by_rtt.index("sid-53") < by_rtt.index("sid-10")


@pytest.mark.django_db
def test_the_live_lists_refresh_themselves_at_the_flush_interval(
    admin_client: Client, settings: Any
) -> None:
    settings.CHANNELS_SIO = {"monitoring": {"flush_interval": 2500}}
    for url in (SESSIONS, NODES, ALARMS):
        html = admin_client.get(url).content.decode()
        assert re.search(r'<button type="button" id="csio-refresh"[^>]*data-interval="2500"', html)
        assert "channels_sio/refresh.js" in html
        assert 'id="monitoring-off"' not in html
    settings.CHANNELS_SIO = {"monitoring": False}
    html = admin_client.get(SESSIONS).content.decode()
    assert "csio-refresh" not in html
    assert 'id="monitoring-off"' in html


# -- live sessions: a session's page ----------------------------------------------------------


@pytest.mark.django_db
def test_a_session_page_shows_handshake_sockets_counters_and_rtt(admin_client: Client) -> None:
    node = make_node()
    session = make_session(
        "sid-a", node, {"/": [], "/chat": ["lobby", "kitchen"]}, username="ann", user_id="7"
    )
    alarm = make_alarm(sids=["sid-a", "sid-z"])
    make_alarm(sids=["sid-a"], resolved=True, fingerprint="old one")
    page = admin_client.get(session_url("sid-a"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "View live session" in html  # read-only, whatever the permissions
    assert 'name="_save"' not in html
    assert '<pre class="csio-json">' in html
    assert "&quot;user-agent&quot;: &quot;Mozilla/5.0 test&quot;" in html
    assert "12.5 ms" in html
    assert "2048 (2.0\xa0KB)" in html
    assert "ann (7)" in html
    # The sockets, with their rooms (their own room implied).
    assert "sid-a-s1" in html
    assert "kitchen, lobby" in html
    # Links: its node, the sessions of its client, its open alarms (not the resolved one).
    assert f'href="{reverse("admin:channels_sio_node_change", args=[node.pk])}"' in html
    assert "?fingerprint=address%3A10.0.0.1%7Csid-a" in html
    assert f'href="{alarm_url(alarm)}"' in html
    assert "old one" not in html
    # The actions, for this one session (the user may change live sessions).
    for name in ("disconnect", "join_room", "leave_room", "emit_event"):
        assert f'name="action" value="{name}"' in html
    assert 'class="breadcrumbs"' in html
    assert session.sid in html


@pytest.mark.django_db
def test_a_session_page_offers_no_action_to_who_may_only_view(client: Client) -> None:
    make_session("sid-a", make_node())
    staff = User.objects.create_user("viewer", password="x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_livesession"))
    client.force_login(staff)
    html = client.get(session_url("sid-a")).content.decode()
    assert "sid-a-s0" in html
    assert 'name="action"' not in html


# -- live sessions: the actions, as messages on the channel layer -------------------------------


@pytest.mark.django_db
def test_disconnect_sends_one_message_to_each_sessions_node(
    admin_client: Client, layer: Any
) -> None:
    one = make_node()
    two = make_node("bbbb0002", channel=OTHER_CHANNEL)
    make_session("sid-a", one)
    make_session("sid-b", two)
    make_session("sid-c", one)
    page = action(admin_client, "disconnect", ["sid-a", "sid-b"])
    assert page.status_code == 200
    assert messages_of(page) == ["Disconnect: sent to the node of 2 sessions."]
    assert received(layer) == [
        {
            "type": ADMIN,
            "action": "disconnect",
            "sid": "sid-a",
            "socket": "",
            "namespace": "",
            "room": "",
            "event": "",
            "args": [],
            "by": "admin",
        }
    ]
    assert [message["sid"] for message in received(layer, OTHER_CHANNEL)] == ["sid-b"]
    # Logged in each session's history.
    entry = LogEntry.objects.get(object_id="sid-a")
    assert entry.get_change_message() == "Disconnect (sent to its node)"


@pytest.mark.django_db
def test_an_action_says_which_sessions_it_could_not_reach(admin_client: Client, layer: Any) -> None:
    alive, gone = make_node(), make_node("bbbb0002", channel=OTHER_CHANNEL, gone=True)
    silent = make_node("cccc0003", channel="")  # never wrote its channel
    make_session("sid-a", alive)
    make_session("sid-b", gone, state="gone")
    make_session("sid-c", silent)
    page = action(admin_client, "disconnect", ["sid-a", "sid-b", "sid-c"])
    assert messages_of(page) == [
        "Disconnect: sent to the node of 1 session.",
        "Not sent to 2 sessions, whose node is gone: sid-b, sid-c.",
    ]
    assert [message["sid"] for message in received(layer)] == ["sid-a"]
    assert received(layer, OTHER_CHANNEL) == []


@pytest.mark.django_db
def test_an_action_says_when_a_nodes_channel_is_full(admin_client: Client, layer: Any) -> None:
    make_session("sid-a", make_node())
    for _ in range(layer.capacity):
        async_to_sync(layer.send)(CHANNEL, {"type": "filler"})
    page = action(admin_client, "disconnect", ["sid-a"])
    [message] = messages_of(page)
    assert message.startswith("Not sent to 1 session: the channel of its node is full")


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "verb"), [("join_room", "join"), ("leave_room", "leave")])
def test_join_and_leave_ask_for_the_room_first(
    admin_client: Client, layer: Any, name: str, verb: str
) -> None:
    node = make_node()
    make_session("sid-a", node, {"/": [], "/chat": []})
    make_session("sid-b", node, {"/admin": []})
    page = action(admin_client, name, ["sid-a", "sid-b"])
    html = page.content.decode()
    assert page.templates[0].name == "admin/channels_sio/livesession/action_form.html"
    assert 'class="breadcrumbs"' in html
    assert f'name="action" value="{name}"' in html
    assert html.count('name="_selected_action"') == 2
    for namespace in ("/", "/admin", "/chat"):
        assert f'<option value="{namespace}">{namespace}</option>' in html
    assert received(layer) == []  # nothing yet
    # No room: asked again.
    page = action(admin_client, name, ["sid-a"], apply="yes", room="", namespace="")
    assert "This field is required." in page.content.decode()
    assert received(layer) == []
    page = action(
        admin_client, name, ["sid-a", "sid-b"], apply="yes", room="vip", namespace="/chat"
    )
    assert messages_of(page) == [f"{verb.capitalize()} room 'vip': sent to the node of 2 sessions."]
    sent = sorted(received(layer), key=lambda message: message["sid"])
    assert [(m["sid"], m["action"], m["room"], m["namespace"]) for m in sent] == [
        ("sid-a", verb, "vip", "/chat"),
        ("sid-b", verb, "vip", "/chat"),
    ]


@pytest.mark.django_db
def test_emit_asks_for_an_event_and_json_arguments(admin_client: Client, layer: Any) -> None:
    make_session("sid-a", make_node())
    page = action(admin_client, "emit_event", ["sid-a"])
    html = page.content.decode()
    assert 'value="admin test"' in html
    for event, args, error in (
        ("connect", "[]", "reserved"),
        ("hello", "{not json", "Not JSON"),
        ("hello", '{"a": 1}', "A JSON array"),
    ):
        page = action(admin_client, "emit_event", ["sid-a"], apply="yes", event=event, args=args)
        assert error in page.content.decode()
    assert received(layer) == []
    page = action(
        admin_client, "emit_event", ["sid-a"], apply="yes", event="hello", args='["hi", {"n": 1}]'
    )
    assert messages_of(page) == ["Emit 'hello': sent to the node of 1 session."]
    [sent] = received(layer)
    assert (sent["action"], sent["event"], sent["args"]) == ("emit", "hello", ["hi", {"n": 1}])


@pytest.mark.django_db
def test_an_action_from_a_session_page_goes_back_to_it(admin_client: Client, layer: Any) -> None:
    make_session("sid-a", make_node())
    back = session_url("sid-a")
    page = action(admin_client, "join_room", ["sid-a"], _next=back)
    assert f'name="_next" value="{back}"' in page.content.decode()
    page = admin_client.post(
        SESSIONS,
        {
            "action": "join_room",
            "_selected_action": ["sid-a"],
            "apply": "yes",
            "room": "r",
            "namespace": "",
            "_next": back,
        },
    )
    assert page.status_code == 302
    assert page["Location"] == back
    # Somewhere else is refused: back to the list.
    page = admin_client.post(
        SESSIONS,
        {
            "action": "join_room",
            "_selected_action": ["sid-a"],
            "apply": "yes",
            "room": "r",
            "namespace": "",
            "_next": "https://elsewhere.example/",
        },
    )
    assert page["Location"] == SESSIONS
    assert len(received(layer)) == 2


def test_an_admin_action_is_checked_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="room"):
        AdminAction(Action.JOIN)
    with pytest.raises(ValueError, match="reserved"):
        AdminAction(Action.EMIT, event="disconnect")
    with pytest.raises(ValueError, match="explode"):
        AdminAction("explode")  # type: ignore[arg-type]
    sid, found = AdminAction.from_message(
        AdminAction(Action.EMIT, event="e", args=(1,)).message("s")
    )
    assert (sid, found) == ("s", AdminAction(Action.EMIT, event="e", args=(1,)))


# -- the actions, carried out by a real node --------------------------------------------------


@pytest.fixture
async def node(settings: Any) -> AsyncIterator[ClusterNode]:
    """A node on the in-memory channel layer serving an isolated Socket.IO server (monitoring
    off: this test writes the registry itself)."""
    settings.CHANNELS_SIO = {"monitoring": False}
    server = SocketIOServer(sync_runner=database_sync_to_async)
    started = ClusterNode(server)
    await started.start()
    yield started
    await started.stop()
    await server.shutdown()


async def frames_until_closed(client: SocketIOCommunicator) -> list[str]:
    """The text frames the server sends until it closes the WebSocket."""
    found = []
    async with asyncio.timeout(2):
        while True:
            output = await client.ws.receive_output()
            if output["type"] == "websocket.close":
                return found
            if output.get("text"):
                found.append(output["text"])


async def closed(server: SocketIOServer, sid: str) -> None:
    async with asyncio.timeout(2):
        while sid in server.engine.sessions:  # noqa: ASYNC110 (closing is asynchronous)
            await asyncio.sleep(0.01)


@pytest.mark.django_db(transaction=True)
async def test_a_node_carries_out_the_admins_actions(node: ClusterNode) -> None:
    server = node.server
    sockets: list[Socket] = []
    server.on("connect", lambda socket, auth: sockets.append(socket))
    server.of("/chat").on("connect", lambda socket, auth: sockets.append(socket))
    app = get_application(get_asgi_application(), server=server)
    one = SocketIOCommunicator(app)
    two = SocketIOCommunicator(app)
    await one.connect()
    await two.connect()
    other_namespace = SocketIOCommunicator(app, namespace="/chat")
    await other_namespace.connect()
    sid_one, sid_two = one.handshake["sid"], two.handshake["sid"]
    assert sid_one.startswith(node.id)
    assert node.channel is not None

    def register() -> None:
        row = make_node(node.id, channel=node.channel)  # type: ignore[arg-type]
        make_session(sid_one, row)
        make_session(sid_two, row)
        User.objects.create_superuser("boss", password="x")

    await database_sync_to_async(register)()
    admin = Client()
    await sync_to_async(admin.login)(username="boss", password="x")

    async def post(**data: Any) -> None:
        response = await sync_to_async(admin.post)(SESSIONS, data)
        assert response.status_code == 302

    # Join and leave: the node puts the socket in the room and takes it out.
    await post(
        action="join_room", _selected_action=[sid_one], apply="yes", room="vip", namespace=""
    )
    async with asyncio.timeout(2):
        while "vip" not in sockets[0].rooms:  # noqa: ASYNC110 (the node acts on its own loop)
            await asyncio.sleep(0.01)
    await post(
        action="leave_room", _selected_action=[sid_one], apply="yes", room="vip", namespace=""
    )
    async with asyncio.timeout(2):
        while "vip" in sockets[0].rooms:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    # Emit: the client gets the event, with its arguments.
    await post(
        action="emit_event",
        _selected_action=[sid_two],
        apply="yes",
        event="admin test",
        args='["hello", 1]',
        namespace="",
    )
    assert await two.expect_event("admin test") == ["hello", 1]
    assert await one.receive_nothing()
    # Disconnect: a DISCONNECT packet, then the connection closes; the other client stays.
    await post(action="disconnect", _selected_action=[sid_one])
    frames = await frames_until_closed(one)
    assert "41" in frames
    await closed(server, sid_one)
    assert sid_two in server.engine.sessions
    # A session this node does not have (it closed since the flush): nothing happens.
    assert not await node.admin_actions.perform("no-such-sid", AdminAction(Action.DISCONNECT))
    await two.disconnect()
    await other_namespace.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_node_disconnects_one_namespace_or_a_session_in_none(node: ClusterNode) -> None:
    server = node.server
    app = get_application(get_asgi_application(), server=server)
    client = SocketIOCommunicator(app, namespace="/chat")
    server.of("/chat")
    await client.connect()
    sid = client.handshake["sid"]
    actions = node.admin_actions
    # The socket of one namespace leaves it: the connection stays.
    assert await actions.perform(sid, AdminAction(Action.DISCONNECT, namespace="/chat"))
    assert "41/chat," in await client.ws.receive_from()
    assert sid in server.engine.sessions
    assert not server.clients[sid].sockets
    # A session in no namespace is closed at the Engine.IO level.
    assert await actions.perform(sid, AdminAction(Action.DISCONNECT))
    await frames_until_closed(client)
    await closed(server, sid)


@pytest.mark.django_db
def test_send_action_skips_sessions_of_gone_nodes(layer: Any) -> None:
    live = make_session("sid-a", make_node())
    gone = make_session("sid-b", make_node("bbbb0002", channel=OTHER_CHANNEL, gone=True))
    delivery = send_action([live, gone], AdminAction(Action.EMIT, event="e"))
    assert (delivery.sent, delivery.gone, delivery.full) == (["sid-a"], ["sid-b"], [])
    assert [message["event"] for message in received(layer)] == ["e"]


# -- nodes ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_nodes_are_listed_with_their_load_and_a_link_to_their_sessions(
    admin_client: Client,
) -> None:
    make_node(sessions=2)
    make_node("bbbb0002", channel=OTHER_CHANNEL, gone=True)
    table = listed(admin_client.get(NODES))
    assert table.index("aaaa0001") < table.index("bbbb0002")  # the freshest heartbeat first
    assert "web-1" in table
    assert "4242" in table
    assert "1.5 / 3.2" in table
    assert f'href="{SESSIONS}?node__id__exact=aaaa0001">2<' in table
    assert ">up<" in table
    assert ">gone<" in table
    gone_only = listed(admin_client.get(NODES, {"status": "gone"}))
    assert "bbbb0002" in gone_only
    assert "aaaa0001" not in gone_only
    page = admin_client.get(reverse("admin:channels_sio_node_change", args=["aaaa0001"]))
    assert "&quot;transport close&quot;: 2" in page.content.decode()  # its report


# -- alarms --------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "found"),
    [
        ({}, {"dup", "zombie", "old"}),
        ({"status": "open"}, {"dup", "zombie"}),
        ({"status": "resolved"}, {"old"}),
        ({"kind__exact": "zombie"}, {"zombie"}),
        ({"severity__exact": "critical"}, {"zombie"}),
        ({"node": "bbbb0002"}, {"old"}),
        ({"q": "sid-z"}, {"zombie"}),
    ],
)
def test_alarms_are_filtered(admin_client: Client, query: dict[str, str], found: set[str]) -> None:
    make_alarm(fingerprint="dup", sids=["sid-a", "sid-b"])
    make_alarm(Alarm.Kind.ZOMBIE, fingerprint="zombie", sids=["sid-z"], severity="critical")
    make_alarm(Alarm.Kind.STORM, fingerprint="old", node="bbbb0002", resolved=True)
    table = listed(admin_client.get(ALARMS, query))
    assert {name for name in ("dup", "zombie", "old") if f">{name}<" in table} == found


@pytest.mark.django_db
def test_an_alarm_links_to_its_sessions(admin_client: Client) -> None:
    node = make_node()
    make_session("sid-a", node)
    make_session("sid-b", node)
    alarm = make_alarm(sids=["sid-a", "sid-b", "sid-closed"])
    table = listed(admin_client.get(ALARMS))
    assert f'href="{SESSIONS}?sid__in=sid-a%2Csid-b%2Csid-closed">3 sessions<' in table
    listed_sessions = admin_client.get(SESSIONS, {"sid__in": "sid-a,sid-b,sid-closed"})
    assert sids_listed(listed_sessions) == {"sid-a", "sid-b"}
    html = admin_client.get(alarm_url(alarm)).content.decode()
    assert f'href="{session_url("sid-a")}"' in html
    assert f'href="{session_url("sid-b")}"' in html
    assert "sid-closed (closed)" in html
    assert "socket.io#5128" in html  # what the rule catches
    assert f'href="{reverse("admin:channels_sio_node_change", args=["aaaa0001"])}"' in html
    assert 'name="_save"' not in html


@pytest.mark.django_db
def test_alarms_are_resolved_by_who_may_change_them(admin_client: Client) -> None:
    first = make_alarm(fingerprint="one")
    second = make_alarm(fingerprint="two")
    done = make_alarm(fingerprint="done", resolved=True, age=100)
    before = done.resolved_at
    page = action(admin_client, "resolve", [first.pk, second.pk, done.pk], url=ALARMS)
    assert messages_of(page) == ["2 alarms resolved."]
    first.refresh_from_db()
    done.refresh_from_db()
    assert first.resolved_at is not None
    assert done.resolved_at == before
    assert LogEntry.objects.filter(object_id=str(first.pk)).get().get_change_message() == "Resolved"
    page = action(admin_client, "resolve", [first.pk], url=ALARMS)
    assert messages_of(page) == ["The selected alarms were resolved already."]


# -- permissions ------------------------------------------------------------------------------


def pages(session: LiveSession, alarm: Alarm) -> list[str]:
    return [
        SECTION,
        SESSIONS,
        NODES,
        ALARMS,
        session_url(session.sid),
        alarm_url(alarm),
        reverse("admin:channels_sio_node_change", args=[session.node_id]),
    ]


@pytest.mark.django_db
def test_anonymous_and_non_staff_users_are_sent_to_the_login(client: Client, layer: Any) -> None:
    session = make_session("sid-a", make_node())
    alarm = make_alarm()
    for url in pages(session, alarm):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login"))
    User.objects.create_user("alice", password="x")  # not staff
    client.login(username="alice", password="x")
    for url in pages(session, alarm):
        assert client.get(url)["Location"].startswith(reverse("admin:login")), url
    action(client, "disconnect", ["sid-a"])
    action(client, "resolve", [alarm.pk], url=ALARMS)
    assert received(layer) == []
    alarm.refresh_from_db()
    assert alarm.resolved_at is None


@pytest.mark.django_db
def test_staff_need_the_view_permission_to_see_and_the_change_one_to_act(
    client: Client, layer: Any
) -> None:
    session = make_session("sid-a", make_node())
    alarm = make_alarm()
    staff = User.objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff)
    for url in pages(session, alarm)[1:]:
        assert client.get(url).status_code == 403, url
    for codename in ("view_livesession", "view_alarm", "view_node"):
        staff.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(User.objects.get(pk=staff.pk))
    for url in pages(session, alarm):
        assert client.get(url).status_code == 200, url
    # Viewing only: no action is offered, and none runs.
    assert 'name="action"' not in client.get(SESSIONS).content.decode()
    assert 'name="action"' not in client.get(ALARMS).content.decode()
    action(client, "disconnect", ["sid-a"])
    action(client, "resolve", [alarm.pk], url=ALARMS)
    assert received(layer) == []
    alarm.refresh_from_db()
    assert alarm.resolved_at is None
    # With the change permissions, the actions run; the pages stay read-only.
    for codename in ("change_livesession", "change_alarm"):
        staff.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(User.objects.get(pk=staff.pk))
    action(client, "disconnect", ["sid-a"])
    action(client, "resolve", [alarm.pk], url=ALARMS)
    assert [message["sid"] for message in received(layer)] == ["sid-a"]
    alarm.refresh_from_db()
    assert alarm.resolved_at is not None
    assert client.post(session_url("sid-a"), {"address": "changed"}).status_code == 403


@pytest.mark.django_db
def test_nothing_can_be_added_changed_or_deleted(admin_client: Client) -> None:
    session = make_session("sid-a", make_node())
    alarm = make_alarm()
    for model, pk in (("livesession", session.pk), ("node", session.node_id), ("alarm", alarm.pk)):
        add = reverse(f"admin:channels_sio_{model}_add")
        change = reverse(f"admin:channels_sio_{model}_change", args=[pk])
        delete = reverse(f"admin:channels_sio_{model}_delete", args=[pk])
        changelist = reverse(f"admin:channels_sio_{model}_changelist")
        assert admin_client.get(add).status_code == 403
        assert admin_client.post(change, {"host": "x", "address": "x"}).status_code == 403
        assert admin_client.get(delete).status_code == 403
        assert admin_client.post(delete, {"post": "yes"}).status_code == 403
        assert 'value="delete_selected"' not in admin_client.get(changelist).content.decode()
    assert LiveSession.objects.get().address == "10.0.0.1"
    assert Node.objects.get().host == "web-1"
    assert Alarm.objects.filter(pk=alarm.pk).exists()


def test_a_timestamp_is_shown_as_an_age() -> None:
    from channels_sio.admin import _ago

    now = timezone.now()
    moments: list[tuple[datetime | None, str]] = [
        (None, "never"),
        (now - timedelta(seconds=5), "5 s ago"),
        (now - timedelta(minutes=10), "10 min ago"),
        (now - timedelta(hours=3), "3.0 h ago"),
    ]
    for moment, shown in moments:
        assert _ago(moment) == shown
