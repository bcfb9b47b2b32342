"""The monitoring pages of the admin in headless Chromium, on a running example project (daphne's
runserver, a fresh SQLite file, the registry written by the server's own node): official
socket.io-client instances connect, the admin sees their sessions appear, disconnects one (its
client reports "io server disconnect"), emits to another, and sees a duplicate-client alarm
raised and then resolved; anonymous and non-staff users are refused.

With ``CSIO_DOCS_SCREENSHOTS=1`` the screenshots of each page go to docs/images/ (otherwise to
the test's temporary directory).
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from channels_sio.monitoring.service import Monitor
from tests.recovery.test_admin import CHROMIUM_ARGS, chromium, manage  # noqa: F401 (fixture)
from tests.support.ci import require
from tests.support.driver import Driver, driver  # noqa: F401 (fixture)
from tests.support.servers import ServerProcess

SETTINGS = "tests.monitoring.settings_admin"
ADMIN_PASSWORD = "admin-password"
ALICE_PASSWORD = "alice-password"
SESSIONS = reverse("admin:channels_sio_livesession_changelist")
NODES = reverse("admin:channels_sio_node_changelist")
ALARMS = reverse("admin:channels_sio_alarm_changelist")
SECTION = reverse("admin:app_list", args=["channels_sio"])
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
VIEWPORT = {"width": 1200, "height": 800}
#: Long enough for a flush (0.5 s), the rules (0.5 s), the duplicate grace (1 s) and a reload.
WAIT = 15_000


def monitor_written() -> bool:
    """Whether the registry writer exists yet (service.py is written alongside this test)."""
    return "NotImplementedError" not in inspect.getsource(Monitor)


@pytest.fixture(scope="module")
def monitoring_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The example project with a fast registry, a superuser and a user who is not staff."""
    require(monitor_written(), "the registry writer (channels_sio/monitoring/service.py)")
    database = tmp_path_factory.mktemp("monitoring") / "db.sqlite3"
    env = {"EXAMPLE_DB": str(database), "DJANGO_DEBUG": "1"}
    manage_with(SETTINGS, "migrate", "--noinput", env=env)
    manage_with(
        SETTINGS,
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        f"User.objects.create_superuser('admin', password={ADMIN_PASSWORD!r})\n"
        f"User.objects.create_user('alice', password={ALICE_PASSWORD!r})\n",
        env=env,
    )
    server = ServerProcess("runserver", SETTINGS, env, ready_path="/")
    server.start()
    yield server
    server.stop()


def manage_with(settings: str, *args: str, env: dict[str, str]) -> None:
    manage(*args, env={**env, "DJANGO_SETTINGS_MODULE": settings})


def seed_history(server: ServerProcess) -> None:
    """For the documentation's picture only: the hour before the test, as samples of the
    server's node (the test itself lasts a minute, too short a line to show)."""
    manage_with(
        SETTINGS,
        "shell",
        "-c",
        "import math\n"
        "from datetime import timedelta\n"
        "from django.utils import timezone\n"
        "from channels_sio.models import Node, NodeSample\n"
        "node = Node.objects.get()\n"
        "now = timezone.now()\n"
        "NodeSample.objects.bulk_create(NodeSample(node=node.id, at=now - timedelta(minutes=m),"
        " sessions=round(12 + 8 * math.sin(m / 9))) for m in range(3, 60))\n",
        env=server.extra_env,
    )


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    if os.environ.get("CSIO_DOCS_SCREENSHOTS"):
        DOCS_IMAGES.mkdir(exist_ok=True)
        return DOCS_IMAGES
    return tmp_path


def log_in(page: Any, url: str, username: str, password: str) -> None:
    page.goto(url + "/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def open_client(clients: Driver, url: str, name: str, agent: str) -> str:
    """An official client on the default namespace; its Engine.IO session id."""
    state = clients("open", name=name, url=url, nsp="/", headers={"User-Agent": agent})
    return str(state["eio"])


@pytest.mark.browser
@pytest.mark.node
def test_the_monitoring_pages_in_chromium(
    chromium: Path,  # noqa: F811
    monitoring_server: ServerProcess,
    driver: Driver,  # noqa: F811
    screenshots: Path,
) -> None:
    from playwright.sync_api import expect, sync_playwright

    url = monitoring_server.url
    first = open_client(driver, url, "first", "csio-admin-first")
    second = open_client(driver, url, "second", "csio-admin-second")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            # Nobody logged in: the admin's login page.
            anonymous = browser.new_context().new_page()
            anonymous.set_default_timeout(WAIT)
            anonymous.goto(url + SESSIONS)
            expect(anonymous).to_have_url(re.compile(r"/admin/login/\?next="))
            # A user who is not staff: logged in on the site, refused by the admin.
            alice = browser.new_context().new_page()
            alice.set_default_timeout(WAIT)
            alice.goto(url + "/accounts/login/")
            alice.get_by_label("Username").fill("alice")
            alice.get_by_label("Password").fill(ALICE_PASSWORD)
            alice.get_by_role("button", name="Log in").click()
            alice.goto(url + SESSIONS)
            expect(alice).to_have_url(re.compile(r"/admin/login/\?next="))
            expect(alice.locator("#content")).to_contain_text(
                "You are authenticated as alice, but are not authorized to access this page"
            )
            log_in(alice, url, "alice", ALICE_PASSWORD)
            expect(alice.locator(".errornote").first).to_contain_text("staff account")
            # She chats meanwhile: the admin sees her session under her name.
            alice.goto(url + "/chat/")
            expect(alice.locator("#connection-state")).to_have_text("connected")

            admin = browser.new_context(viewport=VIEWPORT).new_page()
            admin.set_default_timeout(WAIT)
            log_in(admin, url, "admin", ADMIN_PASSWORD)
            app = admin.locator("#content-main .app-channels_sio")
            for name in ("Live sessions", "Nodes", "Alarms"):
                expect(app.get_by_role("link", name=name, exact=True)).to_be_visible()

            # The live sessions: both clients, then a third one that connects while the page
            # is open shows up on its own (the page reloads itself).
            app.get_by_role("link", name="Live sessions", exact=True).click()
            expect(admin.locator(".breadcrumbs")).to_contain_text("Live sessions")
            # The navigation sidebar folded: room for the columns (the admin remembers it).
            admin.locator("#toggle-nav-sidebar").click()
            results = admin.locator("#result_list")
            expect(results).to_contain_text(first)
            expect(results).to_contain_text(second)
            expect(results).to_contain_text("alice")
            expect(admin.locator("#csio-refresh")).to_have_text("Pause refresh")
            third = open_client(driver, url, "third", "csio-admin-third")
            expect(results).to_contain_text(third)
            # Paused, it stays as it is.
            admin.locator("#csio-refresh").click()
            expect(admin.locator("#csio-refresh")).to_have_text("Resume refresh")
            fourth = open_client(driver, url, "fourth", "csio-admin-fourth")
            admin.wait_for_timeout(2_000)
            expect(results).not_to_contain_text(fourth)
            admin.locator("#csio-refresh").click()
            expect(results).to_contain_text(fourth)
            admin.screenshot(path=str(screenshots / "admin-live-sessions.png"))
            # Search by a session id.
            admin.locator("#searchbar").fill(second)
            admin.locator("#searchbar").press("Enter")
            expect(admin.locator("#result_list tbody tr")).to_have_count(1)

            # A session's page: its handshake and sockets; disconnect it from there.
            admin.get_by_role("link", name=second, exact=True).click()
            expect(admin.locator(".breadcrumbs")).to_contain_text(second)
            expect(admin.locator(".field-handshake_display")).to_contain_text("csio-admin-second")
            expect(admin.locator(".field-namespace").first).to_contain_text("/")
            admin.screenshot(path=str(screenshots / "admin-live-session.png"))
            admin.locator("#csio-disconnect").click()
            expect(admin.locator(".messagelist")).to_contain_text(
                "Disconnect: sent to the node of 1 session."
            )
            assert driver("disconnected", name="second") == "io server disconnect"
            assert driver("state", name="first")["connected"]
            admin.goto(url + SESSIONS)
            expect(results).not_to_contain_text(second)

            # Emit a test event to the first client, from the changelist's action.
            admin.locator(f'input.action-select[value="{first}"]').check()
            admin.locator('select[name="action"]').select_option("emit_event")
            admin.get_by_role("button", name="Go").click()
            expect(admin.locator(".breadcrumbs")).to_contain_text("Emit a test event")
            admin.get_by_label("Event").fill("admin test")
            admin.get_by_label("Arguments").fill('["from chromium"]')
            admin.screenshot(path=str(screenshots / "admin-emit.png"))
            admin.get_by_role("button", name="Emit a test event").click()
            expect(admin.locator(".messagelist")).to_contain_text("Emit 'admin test': sent")
            [event] = driver("wait", name="first", event="admin test")
            # Then its offset: the example project recovers connections.
            assert event[:2] == ["admin test", "from chromium"]

            # Two clients that look alike: a duplicate-client alarm, with links to both.
            dup_one = open_client(driver, url, "dup-one", "csio-admin-duplicate")
            dup_two = open_client(driver, url, "dup-two", "csio-admin-duplicate")
            admin.goto(url + ALARMS + "?status=open")
            expect(admin.locator("#result_list")).to_contain_text("duplicate client")
            admin.screenshot(path=str(screenshots / "admin-alarms.png"))
            admin.locator("#result_list").get_by_role("link", name="duplicate client").first.click()
            sessions = admin.locator(".field-sessions_display")
            expect(sessions.get_by_role("link", name=dup_one)).to_be_visible()
            expect(sessions.get_by_role("link", name=dup_two)).to_be_visible()
            admin.screenshot(path=str(screenshots / "admin-alarm.png"))
            # One of them leaves: the rule resolves its alarm.
            driver("close", name="dup-two")
            admin.goto(url + ALARMS + "?status=resolved")
            expect(admin.locator("#result_list")).to_contain_text("duplicate client")
            admin.goto(url + ALARMS + "?status=open")
            expect(admin.locator("#result_list")).to_have_count(0)

            # The nodes: this server's one, up.
            admin.goto(url + NODES)
            expect(admin.locator("#result_list tbody tr")).to_have_count(1)
            expect(admin.locator("#result_list")).to_contain_text("up")
            admin.screenshot(path=str(screenshots / "admin-nodes.png"))

            # The section page: the charts of the last hour, with that alarm.
            if screenshots == DOCS_IMAGES:
                seed_history(monitoring_server)
            admin.goto(url + SECTION)
            expect(admin.locator("#csio-sessions-chart figcaption")).to_contain_text("1 node up")
            expect(admin.locator("#csio-sessions-chart g.csio-series").first).to_be_attached()
            expect(admin.locator("#csio-alarms-chart rect").first).to_be_attached()
            admin.screenshot(path=str(screenshots / "admin-section.png"))
        finally:
            browser.close()
