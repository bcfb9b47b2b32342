"""Another site's page cannot open a socket with the user's session cookie: headless Chromium,
logged in to the server at http://127.0.0.1:<port>, runs socket.io-client from a page of a
second origin (another port of 127.0.0.1, so the browser does send the cookie: cookies ignore
ports, and the two are same-site). With the default ``cors_allowed_origins`` (same origin) both
transports are refused; a page of the server's own origin connects as the user; with that
second origin in the allow-list, its page connects as the user too."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.security.conftest import SECURITY_SETTINGS
from tests.support.ci import require
from tests.support.eio import REPO_DIR
from tests.support.servers import SERVER_KINDS, ServerProcess, free_port, manage

pytestmark = pytest.mark.browser

CLIENT = REPO_DIR / "tests" / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
PAGE = """<!doctype html><title>another site</title><script src="socket.io.min.js"></script>"""
#: Connects to ``/me`` of ``url`` over one transport and says what happened: the user the
#: server saw, or the client's error.
TRY = """async ([url, transport]) => await new Promise((resolve) => {
  const socket = io(url + "/me", {
    transports: [transport], withCredentials: true, reconnection: false, timeout: 4000,
  });
  socket.on("me", (name) => { socket.close(); resolve({ me: name }); });
  socket.on("connect_error", (err) => { socket.close(); resolve({ error: err.message }); });
})"""
USER = "ann"


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """A static site on another port: a page and socket.io-client's browser build."""
    require(CLIENT.is_file(), "socket.io-client in tests/node_modules (npm ci)")
    root = Path(__file__).parent / "_site"
    root.mkdir(exist_ok=True)
    (root / "index.html").write_text(PAGE)
    shutil.copy(CLIENT, root / "socket.io.min.js")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    shutil.rmtree(root)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], str]:
    """A migrated database with a user logged in: its env, and the session key of the login."""
    env = {
        "EXAMPLE_DB": str(tmp_path_factory.mktemp("security") / "db.sqlite3"),
        "PYTHONPATH": str(REPO_DIR),
    }
    manage(SECURITY_SETTINGS, env, "migrate", "--noinput")
    script = (
        "from django.contrib.auth.models import User\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        f"user = User.objects.create_user({USER!r})\n"
        "session = SessionStore()\n"
        "session['_auth_user_id'] = str(user.pk)\n"
        "session['_auth_user_backend'] = 'django.contrib.auth.backends.ModelBackend'\n"
        "session['_auth_user_hash'] = user.get_session_auth_hash()\n"
        "session.create()\n"
        "print(session.session_key)\n"
    )
    key = manage(SECURITY_SETTINGS, env, "shell", "-c", script).stdout.split()[-1]
    return env, key


@pytest.fixture
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    require(Path(chromium).is_file(), "Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def logged_in_page(browser: Browser, server: ServerProcess, session_key: str) -> Page:
    """A browser context holding the user's Django session cookie for the server's host."""
    context = browser.new_context()
    context.add_cookies(
        [{"name": "sessionid", "value": session_key, "url": server.url, "sameSite": "Lax"}]
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


def attempts(page: Page, url: str) -> dict[str, Any]:
    return {t: page.evaluate(TRY, [url, t]) for t in ("polling", "websocket")}


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_another_sites_page_is_refused_and_the_allow_list_admits_it(
    kind: str, site: str, database: tuple[dict[str, str], str], browser: Browser
) -> None:
    env, session_key = database
    default = ServerProcess(kind, SECURITY_SETTINGS, env)
    allowing = ServerProcess(kind, SECURITY_SETTINGS, {**env, "CSIO_ALLOWED_ORIGIN": site})
    for server in (default, allowing):
        server.start()
    try:
        page = logged_in_page(browser, default, session_key)
        page.goto(site + "/index.html")
        # Refused, whatever the transport: the polling handshake (403, no CORS header, so the
        # page cannot read it either) and the WebSocket handshake.
        assert attempts(page, default.url) == {
            "polling": {"error": "xhr poll error"},
            "websocket": {"error": "websocket error"},
        }
        # The browser reports a polling handshake it may not read as it reports a refused one:
        # the server must have opened nothing (a session whose client gave up would live on
        # until its ping timeout, 3.5 s).
        assert default.state()["socketio"]["sessions"] == {}  # type: ignore[index]
        # The same cookie from the server's own origin is the user's.
        page.goto(default.url + "/_protocol/state/")
        page.add_script_tag(path=str(CLIENT))
        assert attempts(page, default.url) == {"polling": {"me": USER}, "websocket": {"me": USER}}
        # The allow-list admits the other site, and the browser sends it the cookie.
        page.goto(site + "/index.html")
        assert attempts(page, allowing.url) == {"polling": {"me": USER}, "websocket": {"me": USER}}
        for server in (default, allowing):
            state = server.wait_idle()
            assert not state["sessions"], state
    finally:
        for server in (default, allowing):
            server.stop()
