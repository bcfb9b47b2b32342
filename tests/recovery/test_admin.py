"""The recovery pages of the admin: the database store's sessions and packets (read-only
changelists with search and filters), and the contents of any other store, read through the
store; then all of it in headless Chromium, on a running example project."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Permission, User
from django.core import checks
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from channels_sio import conf
from channels_sio.models import RecoveryPacket, RecoverySession
from channels_sio.recovery import PacketRecord
from channels_sio.socketio.adapter import SessionRecord
from tests.support.ci import require
from tests.support.servers import EXAMPLE_DIR, ServerProcess

SESSIONS = reverse("admin:channels_sio_recoverysession_changelist")
PACKETS = reverse("admin:channels_sio_recoverypacket_changelist")
STORE = reverse("admin:channels_sio_recoverystorecontents_changelist")


def recovery(store: str) -> dict[str, Any]:
    return {"connection_state_recovery": {"store": store, "max_disconnection_duration": 60_000}}


def make_session(pid: str, sid: str, namespace: str = "/chat", age: int = 0) -> RecoverySession:
    disconnected = timezone.now() - timedelta(seconds=age)
    return RecoverySession.objects.create(
        pid=pid,
        sid=sid,
        namespace=namespace,
        rooms=[sid, "lobby"],
        data={"username": "ann"},
        user_id="7",
        position="0",
        disconnected_at=disconnected,
        expires_at=disconnected + timedelta(minutes=2),
    )


def make_packet(
    event: str, rooms: list[str], namespace: str = "/chat", exclude_sid: str = ""
) -> RecoveryPacket:
    return RecoveryPacket.objects.create(
        namespace=namespace,
        event=event,
        payload=f'["{event}",{{"_placeholder":true,"num":0}}]',
        attachments=b"\x00\x00\x00\x03abc",
        rooms=rooms,
        room_names="\n".join(rooms),
        exclude_sid=exclude_sid,
        created=timezone.now(),
    )


def listed(response: Any) -> str:
    """The changelist's result table, or the whole page when it has none."""
    html = response.content.decode()
    found = re.search(r'<table id="result_list">.*?</table>', html, re.S)
    return found.group(0) if found else html


# -- the admin's definitions ------------------------------------------------------------------


def test_admin_checks_pass() -> None:
    assert checks.run_checks(tags=[checks.Tags.admin]) == []


@pytest.mark.django_db
def test_the_index_lists_the_recovery_pages(admin_client: Client) -> None:
    page = admin_client.get(reverse("admin:app_list", args=["channels_sio"])).content.decode()
    for url in (SESSIONS, PACKETS, STORE):
        assert f'href="{url}"' in page
    assert "Recovery store contents" in page
    assert not re.search(r"channels_sio/\w+/add/", page)


# -- recovery sessions ---------------------------------------------------------------------


@pytest.mark.django_db
def test_sessions_are_listed_newest_first(admin_client: Client) -> None:
    make_session("pid-old", "sid-old", age=60)
    make_session("pid-new", "sid-new", namespace="/other")
    table = listed(admin_client.get(SESSIONS))
    assert table.index("pid-new") < table.index("pid-old")
    for heading in ("Private id", "Socket id", "Namespace", "User", "Disconnected", "Expires"):
        assert heading in table


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "found"), [("sid-a", "pid-a"), ("pid-b", "pid-b")])
def test_sessions_are_searched_by_pid_and_sid(admin_client: Client, query: str, found: str) -> None:
    make_session("pid-a", "sid-a")
    make_session("pid-b", "sid-b")
    table = listed(admin_client.get(SESSIONS, {"q": query}))
    assert set(re.findall(r"pid-\w", table)) == {found}


@pytest.mark.django_db
def test_sessions_are_filtered_by_namespace(admin_client: Client) -> None:
    make_session("pid-a", "sid-a", namespace="/chat")
    make_session("pid-b", "sid-b", namespace="/other")
    page = admin_client.get(SESSIONS, {"namespace": "/other"})
    table = listed(page)
    assert "pid-b" in table
    assert "pid-a" not in table
    assert 'href="?namespace=%2Fchat"' in page.content.decode()  # the filter's choices


# -- recovery packets ----------------------------------------------------------------------


@pytest.mark.django_db
def test_packets_are_listed_newest_first_with_their_rooms(admin_client: Client) -> None:
    first = make_packet("first", [])
    second = make_packet("second", ["lobby", "sid-x"], exclude_sid="sid-y")
    table = listed(admin_client.get(PACKETS))
    assert table.index("second") < table.index("first")
    assert f">{second.pk}<" in table
    assert f">{first.pk}<" in table
    assert "lobby, sid-x" in table
    assert ">all<" in table  # no rooms: every socket of the namespace


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "found"),
    [("joined", "joined"), ("sid-to-one", "private"), ("sid-sender", "from-one"), ("lob", "room")],
)
def test_packets_are_searched_by_event_room_and_sid(
    admin_client: Client, query: str, found: str
) -> None:
    make_packet("joined", [])
    make_packet("private", ["sid-to-one"])
    make_packet("from-one", [], exclude_sid="sid-sender")
    make_packet("room", ["lobby"])
    table = listed(admin_client.get(PACKETS, {"q": query}))
    events = {"joined", "private", "from-one", "room"}
    shown = {event for event in events if f">{event}<" in table}
    assert shown == {found}


@pytest.mark.django_db
def test_packets_are_filtered_by_namespace(admin_client: Client) -> None:
    make_packet("here", [], namespace="/chat")
    make_packet("there", [], namespace="/other")
    table = listed(admin_client.get(PACKETS, {"namespace": "/other"}))
    assert ">there<" in table
    assert ">here<" not in table


@pytest.mark.django_db
def test_a_packet_shows_its_payload_and_attachments(admin_client: Client) -> None:
    row = make_packet("upload", ["lobby"])
    page = admin_client.get(reverse("admin:channels_sio_recoverypacket_change", args=[row.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "_placeholder" in html
    assert "3 bytes" in html
    assert 'name="_save"' not in html  # view only


# -- read-only ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_nothing_can_be_added_changed_or_deleted(admin_client: Client) -> None:
    kept = make_session("pid-a", "sid-a")
    logged = make_packet("joined", [])
    for model, row in (("recoverysession", kept), ("recoverypacket", logged)):
        add = reverse(f"admin:channels_sio_{model}_add")
        change = reverse(f"admin:channels_sio_{model}_change", args=[row.pk])
        delete = reverse(f"admin:channels_sio_{model}_delete", args=[row.pk])
        changelist = reverse(f"admin:channels_sio_{model}_changelist")
        assert admin_client.get(add).status_code == 403
        assert admin_client.post(add, {"pid": "x", "namespace": "/"}).status_code == 403
        assert admin_client.post(change, {"namespace": "/changed"}).status_code == 403
        assert admin_client.get(delete).status_code == 403
        assert admin_client.post(delete, {"post": "yes"}).status_code == 403
        # No bulk delete action either.
        assert 'value="delete_selected"' not in admin_client.get(changelist).content.decode()
        admin_client.post(changelist, {"action": "delete_selected", "_selected_action": [row.pk]})
    assert RecoverySession.objects.get(pk=kept.pk).namespace == "/chat"
    assert RecoveryPacket.objects.filter(pk=logged.pk).exists()


# -- the store contents page -----------------------------------------------------------------


@pytest.mark.django_db
def test_the_store_page_says_when_recovery_is_off(admin_client: Client) -> None:
    with override_settings(CHANNELS_SIO={}):
        page = admin_client.get(STORE)
    assert page.status_code == 200
    assert "Connection state recovery is off" in page.content.decode()
    assert 'class="breadcrumbs"' in page.content.decode()


@pytest.mark.django_db
def test_the_store_page_points_to_the_changelists_for_the_database(admin_client: Client) -> None:
    with override_settings(CHANNELS_SIO=recovery("database")):
        html = admin_client.get(STORE).content.decode()
    assert "DatabaseStore" in html
    assert f'href="{SESSIONS}"' in html
    assert f'href="{PACKETS}"' in html


@pytest.fixture
def memory_store() -> Iterator[Any]:
    """The memory store configured, with two sessions and three packets in it."""
    with override_settings(CHANNELS_SIO=recovery("memory")):
        store = conf.recovery().store  # type: ignore[union-attr]
        async_to_sync(store.append)(
            [
                PacketRecord("/chat", ["joined", {"user": "ann"}], frozenset({"lobby"})),
                PacketRecord("/other", ["ping", b"\x00\x01"], exclude_sid="sid-sender"),
                PacketRecord("/chat", ["message", "hi"], frozenset({"sid-a"})),
            ]
        )
        async_to_sync(store.save_sessions)(
            [
                SessionRecord("pid-a", "sid-a", "/chat", frozenset({"sid-a"}), {"n": 1}, "7"),
                SessionRecord("pid-b", "sid-b", "/other", frozenset({"sid-b"}), {}, None, "1"),
            ]
        )
        yield store


@pytest.mark.django_db
def test_the_store_page_shows_a_memory_store(admin_client: Client, memory_store: Any) -> None:
    html = admin_client.get(STORE).content.decode()
    assert "MemoryStore" in html
    sessions = re.search(r'<table id="sessions"[^>]*>.*?</table>', html, re.S)
    packets = re.search(r'<table id="packets"[^>]*>.*?</table>', html, re.S)
    assert sessions is not None
    assert packets is not None
    assert "pid-a" in sessions.group(0)
    assert "pid-b" in sessions.group(0)
    rows = re.findall(r"<tr>\s*<td>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td>", packets.group(0))
    assert [(namespace, event) for _, namespace, event in rows] == [
        ("/chat", "message"),
        ("/other", "ping"),
        ("/chat", "joined"),
    ]
    assert "&lt;2 bytes&gt;" in packets.group(0)  # attachments shown by their size
    assert "sid-sender" in packets.group(0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "sessions", "events"),
    [
        ({"namespace": "/other"}, {"pid-b"}, {"ping"}),
        ({"q": "sid-a"}, {"pid-a"}, {"joined", "ping", "message"}),
        ({"q": "pid-b"}, {"pid-b"}, {"joined", "ping", "message"}),
        ({"q": "nobody"}, set(), {"joined", "ping", "message"}),
    ],
)
def test_the_store_page_filters_and_searches(
    admin_client: Client,
    memory_store: Any,
    query: dict[str, str],
    sessions: set[str],
    events: set[str],
) -> None:
    html = admin_client.get(STORE, query).content.decode()
    assert set(re.findall(r"<td>(pid-\w)</td>", html)) == sessions
    assert {e for e in ("joined", "ping", "message") if f"<td>{e}</td>" in html} == events
    for value in query.values():
        assert f'value="{value}"' in html  # the form keeps what was asked
    if not sessions:
        assert "No kept session matches." in html


@pytest.mark.django_db
def test_the_store_page_shows_a_store_that_fails(admin_client: Client) -> None:
    broken = {"store": "memory", "store_options": {"no_such_option": 1}}
    with override_settings(CHANNELS_SIO={"connection_state_recovery": broken}):
        page = admin_client.get(STORE)
    assert page.status_code == 200
    assert "could not be read" in page.content.decode()
    assert "no_such_option" in page.content.decode()


@pytest.mark.django_db
def test_the_store_page_is_for_staff_who_may_view_sessions(client: Client) -> None:
    assert client.get(STORE).status_code == 302  # to the admin's login
    staff = User.objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get(STORE).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_recoverysession"))
    with override_settings(CHANNELS_SIO={}):
        assert client.get(STORE).status_code == 200
    for url in (f"{STORE}1/change/", f"{STORE}add/"):
        assert client.get(url).status_code == 404  # the page has no other views


# -- in Chromium, on a running server ---------------------------------------------------------

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN_PASSWORD = "admin-password"
CHAT_PASSWORD = "alice-password"
SETTINGS = "tests.recovery.settings_admin"


def manage(*args: str, env: dict[str, str]) -> None:
    # The repository root on the path too: the settings module is under tests/.
    path = os.pathsep.join([str(EXAMPLE_DIR), str(EXAMPLE_DIR.parent)])
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=EXAMPLE_DIR,
        # Without REDIS_URL, as the server runs (tests/support/servers.py): one process, on
        # the in-memory channel layer, which the memory store needs (check E018).
        env={
            **{k: v for k, v in os.environ.items() if k != "REDIS_URL"},
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "PYTHONPATH": path,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stderr}"


@pytest.fixture(scope="module")
def chromium() -> Path:
    found = Path("/usr/bin/chromium")
    require(found.is_file(), "Debian's chromium (apt-get install chromium)")
    return found


@pytest.fixture(params=["database", "memory"], scope="module")
def admin_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The example project with recovery on (the store is the parameter), a fresh SQLite
    database, an admin and a chat user; daphne's runserver serves the admin's static files."""
    dist = EXAMPLE_DIR / "node_modules" / "socket.io-client" / "dist"
    require(dist.is_dir(), "socket.io-client in example_project/node_modules (npm ci)")
    database = tmp_path_factory.mktemp("admin") / "db.sqlite3"
    env = {"EXAMPLE_DB": str(database), "CSIO_ADMIN_STORE": request.param, "DJANGO_DEBUG": "1"}
    manage("migrate", "--noinput", env=env)
    manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        f"User.objects.create_superuser('admin', password={ADMIN_PASSWORD!r})\n"
        f"User.objects.create_user('alice', password={CHAT_PASSWORD!r})\n",
        env=env,
    )
    server = ServerProcess("runserver", SETTINGS, env, ready_path="/")
    server.start()
    yield server
    server.stop()


def reload_until(page: Any, selector: str, text: str, timeout: float = 10.0) -> None:
    """Reload until ``selector`` contains ``text``: the server writes the session a moment
    after the browser left."""
    from playwright.sync_api import expect

    deadline = time.monotonic() + timeout
    while True:
        page.reload()
        if text in (page.locator(selector).all_text_contents() or [""])[0]:
            return
        if time.monotonic() > deadline:
            expect(page.locator(selector)).to_contain_text(text)  # fails, saying what is there
        page.wait_for_timeout(200)


@pytest.mark.browser
def test_the_recovery_pages_in_chromium(
    chromium: Path, admin_server: ServerProcess, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    store = admin_server.extra_env["CSIO_ADMIN_STORE"]
    url = admin_server.url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            # Alice chats, then closes her tab: her session is kept, with what was sent.
            chat = browser.new_context().new_page()
            chat.set_default_timeout(10_000)
            chat.goto(url + "/chat/")
            chat.get_by_label("Username").fill("alice")
            chat.get_by_label("Password").fill(CHAT_PASSWORD)
            chat.get_by_role("button", name="Log in").click()
            expect(chat.locator("#connection-state")).to_have_text("connected")
            chat.locator('#room-list button[data-room="python"]').click()
            expect(chat.locator("#text")).to_be_enabled()
            chat.locator("#text").fill("hello")
            chat.locator("#text").press("Enter")
            expect(chat.locator("#messages .message.own .tick").last).to_have_text("sent ✓")
            chat.close()

            admin = browser.new_context().new_page()
            admin.set_default_timeout(10_000)
            admin.goto(url + "/admin/")
            admin.get_by_label("Username").fill("admin")
            admin.get_by_label("Password").fill(ADMIN_PASSWORD)
            admin.get_by_role("button", name="Log in").click()
            app = admin.locator("#content-main .app-channels_sio")
            for name in ("Recovery sessions", "Recovery packets", "Recovery store contents"):
                expect(app.get_by_role("link", name=name, exact=True)).to_be_visible()

            app.get_by_role("link", name="Recovery store contents", exact=True).click()
            expect(admin.locator(".breadcrumbs")).to_contain_text("Recovery store contents")
            if store == "database":
                expect(admin.locator("#store-in-database")).to_contain_text("DatabaseStore")
                admin.locator("#store-in-database").get_by_role(
                    "link", name="recovery sessions"
                ).click()
                expect(admin).to_have_url(url + SESSIONS)
                reload_until(admin, "#result_list", "/chat")
                sid = admin.locator("#result_list tbody tr td.field-sid").first.inner_text()
                admin.locator("#searchbar").fill(sid[:8])
                admin.locator("#searchbar").press("Enter")
                expect(admin.locator("#result_list tbody tr")).to_have_count(1)
                admin.goto(url + PACKETS)
                expect(admin.locator("#result_list")).to_contain_text("message")
                admin.get_by_role("link", name="/chat", exact=True).click()  # the filter
                expect(admin.locator("#result_list tbody tr").first).to_contain_text("/chat")
            else:
                expect(admin.locator("#store-name")).to_contain_text("MemoryStore")
                reload_until(admin, "#sessions", "/chat")
                expect(admin.locator("#packets")).to_contain_text("message")
                admin.screenshot(path=str(tmp_path / "recovery-store-memory.png"))
                sid = admin.locator("#sessions tbody tr td").nth(1).inner_text()
                admin.locator("#searchbar").fill(sid[:8])
                admin.locator("#searchbar").press("Enter")
                expect(admin.locator("#sessions tbody tr")).to_have_count(1)
                admin.locator("#namespace").fill("/nowhere")
                admin.get_by_role("button", name="Search").click()
                expect(admin.locator("#no-packets")).to_contain_text("/nowhere")
            admin.screenshot(path=str(tmp_path / f"recovery-admin-{store}.png"))
        finally:
            browser.close()
