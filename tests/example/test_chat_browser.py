"""The chat demo in headless Chromium: two users in one room, typing, acknowledged messages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, WebSocketRoute, expect, sync_playwright

from tests.support.servers import ServerProcess

from .conftest import USERS

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOM = "python"
QUIET_ROOM = "django"  # no history from the other test


@pytest.fixture
def browser(chromium_path: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_chat(browser: Browser, server: ServerProcess, username: str) -> Page:
    """A new browser context (its own cookies) logged in as ``username``, on /chat/."""
    page = browser.new_context(viewport={"width": 1000, "height": 640}).new_page()
    page.set_default_timeout(10_000)
    page.goto(server.url + "/chat/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/chat/$"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(USERS[username])
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(server.url + "/chat/")
    expect(page.locator("#username")).to_have_text(username)
    expect(page.locator("#connection-state")).to_have_text("connected")
    return page


def join(page: Page, room: str) -> None:
    page.locator(f'#room-list button[data-room="{room}"]').click()
    expect(page.locator("#room-title")).to_have_text(f"# {room}")
    expect(page.locator("#text")).to_be_enabled()


def test_two_users_chat(browser: Browser, chat_server: ServerProcess, tmp_path: Path) -> None:
    alice = open_chat(browser, chat_server, "alice")
    bob = open_chat(browser, chat_server, "bob")

    join(alice, ROOM)
    join(bob, ROOM)
    expect(alice.locator("#messages .notice").last).to_have_text("bob joined")
    expect(alice.locator("#members")).to_have_text("2 here: alice, bob")
    expect(bob.locator("#members")).to_have_text("2 here: alice, bob")
    expect(alice.locator(f'#room-list button[data-room="{ROOM}"] .count')).to_have_text("2")

    # Alice types: Bob sees the typing notice.
    alice.locator("#text").press_sequentially("Hello Bob")
    expect(bob.locator("#typing")).to_have_text("alice is typing…")

    # Alice sends: the server's acknowledgement ticks it; Bob gets it with her name.
    alice.locator("#text").press("Enter")
    mine = alice.locator("#messages .message.own").last
    expect(mine.locator(".text")).to_have_text("Hello Bob")
    expect(mine.locator(".tick")).to_have_text("sent ✓")
    expect(mine.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
    received = bob.locator("#messages .message:not(.own)").last
    expect(received.locator(".author")).to_have_text("alice")
    expect(received.locator(".text")).to_have_text("Hello Bob")
    expect(bob.locator("#typing")).to_have_text("")

    # Bob answers; Alice sees it.
    bob.locator("#text").fill("Hi Alice!")
    bob.get_by_role("button", name="Send").click()
    expect(bob.locator("#messages .message.own .tick").last).to_have_text("sent ✓")
    answer = alice.locator("#messages .message:not(.own)").last
    expect(answer.locator(".author")).to_have_text("bob")
    expect(answer.locator(".text")).to_have_text("Hi Alice!")

    for page in (alice, bob):
        expect(page.locator("#connection-state")).to_have_text("connected")
    alice.screenshot(path=str(tmp_path / "chat-alice.png"))
    bob.screenshot(path=str(tmp_path / "chat-bob.png"))

    # Bob leaves: Alice is told, and the room is hers alone.
    bob.get_by_role("button", name="Leave").click()
    expect(alice.locator("#messages .notice").last).to_have_text("bob left")
    expect(alice.locator("#members")).to_have_text("1 here: alice")


def test_a_user_whose_connection_drops_gets_the_messages_sent_meanwhile(
    browser: Browser, chat_server: ServerProcess
) -> None:
    alice = open_chat(browser, chat_server, "alice")
    bob = open_chat(browser, chat_server, "bob")
    join(alice, QUIET_ROOM)
    join(bob, QUIET_ROOM)
    expect(alice.locator("#members")).to_have_text("2 here: alice, bob")

    # From now on Alice's WebSockets go through the test, which can cut them as a network
    # failure would: the page sees its connection drop, the server sees "transport close".
    cut: list[tuple[WebSocketRoute, WebSocketRoute]] = []

    def through_the_test(route: WebSocketRoute) -> None:
        cut.append((route, route.connect_to_server()))

    alice.route_web_socket(re.compile(r"/socket\.io/"), through_the_test)
    alice.reload()
    expect(alice.locator("#connection-state")).to_have_text("connected")
    join(alice, QUIET_ROOM)
    for _ in range(100):  # until it upgraded to WebSocket (10 s at most)
        if cut:
            break
        alice.wait_for_timeout(100)
    assert len(cut) == 1

    page_side, server_side = cut[0]
    page_side.close()
    server_side.close()
    expect(alice.locator("#connection-state")).not_to_have_text("connected")
    for text in ("while you were away", "and one more"):
        bob.locator("#text").fill(text)
        bob.locator("#text").press("Enter")
        expect(bob.locator("#messages .message.own .tick").last).to_have_text("sent ✓")

    # socket.io-client reconnects by itself: the same socket, in the same room, with both.
    expect(alice.locator("#connection-state")).to_have_text(
        "connected (recovered, 2 missed messages)", timeout=15_000
    )
    texts = alice.locator("#messages .message:not(.own) .text")
    expect(texts).to_have_text(["while you were away", "and one more"])
    expect(alice.locator("#room-title")).to_have_text(f"# {QUIET_ROOM}")
    expect(alice.locator("#text")).to_be_enabled()
    # Bob saw her go, and come back.
    expect(bob.locator("#messages .notice").last).to_have_text("alice joined")
    expect(bob.locator("#members")).to_have_text("2 here: alice, bob")
