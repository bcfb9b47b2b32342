"""Socket.IO added to a project with Channels consumers of its own (settings_composed), both
ways: the project's ProtocolTypeRouter handed to get_application (asgi_composed), and the
Socket.IO routes mounted in that router by hand (asgi_composed_router); each under uvicorn and
daphne, driven by the official socket.io-client and a plain WebSocket client."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.support.driver import Driver, driver, wait_for
from tests.support.servers import SERVER_KINDS, ServerProcess, manage

__all__ = ["driver"]

pytestmark = pytest.mark.node

SETTINGS = "example_project.settings_composed"
APPS = ("example_project.asgi_composed", "example_project.asgi_composed_router")
USER = "carol"
# What a Socket.IO WebSocket client gets at shutdown (see tests/transports/test_shutdown.py).
CLOSE_CODE = {"uvicorn": 1012, "daphne": 1000}
DISCONNECTED = re.compile(r"^socketio disconnected (\S+): (.+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], str]:
    """A migrated database with one user; the server environment and that user's session key."""
    env = {"EXAMPLE_DB": str(tmp_path_factory.mktemp("composed") / "db.sqlite3")}
    manage(SETTINGS, env, "migrate", "--noinput")
    script = (
        "from django.contrib.auth.models import User\n"
        "from django.test import Client\n"
        "browser = Client()\n"
        f"browser.force_login(User.objects.create_user({USER!r}))\n"
        "print(browser.cookies['sessionid'].value)\n"
    )
    key = manage(SETTINGS, env, "shell", "-c", script).stdout.split()[-1]
    return env, key


def start(kind: str, app: str, env: dict[str, str]) -> ServerProcess:
    server = ServerProcess(kind, SETTINGS, env, app=f"{app}:application")
    server.start()
    return server


@pytest.fixture(scope="module", params=[(kind, app) for app in APPS for kind in SERVER_KINDS])
def server(
    request: pytest.FixtureRequest, database: tuple[dict[str, str], str]
) -> Iterator[ServerProcess]:
    kind, app = request.param
    process = start(kind, app, database[0])
    yield process
    process.stop()


def ws_url(server: ServerProcess, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


def test_the_projects_own_consumers_still_work(
    server: ServerProcess, database: tuple[dict[str, str], str]
) -> None:
    assert httpx.get(server.url + "/api/ping/").text == "pong"  # a Channels HTTP consumer
    assert httpx.get(server.url + "/").status_code == 200  # a Django view
    # The project's WebSocket, behind its AllowedHostsOriginValidator and AuthMiddlewareStack.
    with connect(ws_url(server, "/ws/echo/"), origin=server.url) as echo:  # type: ignore[arg-type]
        assert echo.recv(5) == "hello anonymous"
        echo.send("hi")
        assert echo.recv(5) == "hi"
    cookie = {"Cookie": f"sessionid={database[1]}"}
    with connect(
        ws_url(server, "/ws/echo/"),
        origin=server.url,  # type: ignore[arg-type]
        additional_headers=cookie,
    ) as echo:
        assert echo.recv(5) == f"hello {USER}"
    # Its validator refuses a client without Origin, as it always did.
    with pytest.raises(InvalidStatus, match="403"):
        connect(ws_url(server, "/ws/echo/"))


def test_socketio_beside_them(
    server: ServerProcess, database: tuple[dict[str, str], str], driver: Driver
) -> None:
    url, key = server.url, database[1]
    # A Node client, which sends no Origin, on WebSocket only: the project's origin validator
    # does not stand in its way.
    opened = driver("open", name="token", url=url, nsp="/", auth={"token": key})
    assert opened["transport"] == "websocket"
    assert driver("call", name="token", event="whoami") == USER
    # Long-polling first, then the upgrade.
    driver(
        "open",
        name="upgrade",
        url=url,
        nsp="/",
        transports="polling,websocket",
        auth={"token": key},
    )
    wait_for(lambda: driver("state", name="upgrade")["transport"] == "websocket", 5, "the upgrade")
    # The session cookie, through the default session middleware of either path.
    cookie = {"Cookie": f"sessionid={key}"}
    driver("open", name="cookie", url=url, nsp="/", transports="polling", headers=cookie)
    assert driver("call", name="cookie", event="whoami") == USER
    # No credentials, or a wrong token: the README handler refuses, it does not fail.
    for name, auth in (("nobody", {}), ("forged", {"token": "x" * 32})):
        refused = driver("tryOpen", name=name, url=url, nsp="/", auth=auth)
        assert refused["connectError"]["message"] == "login required"
    for name in ("token", "upgrade", "cookie"):
        driver("close", name=name)
    # A page of another site cannot open a Socket.IO WebSocket as the user.
    with pytest.raises(InvalidStatus, match="403"):
        connect(
            ws_url(server, "/socket.io/?EIO=4&transport=websocket"),
            origin="http://evil.example",  # type: ignore[arg-type]
            additional_headers=cookie,
        )
    # A page of this site can.
    with connect(
        ws_url(server, "/socket.io/?EIO=4&transport=websocket"),
        origin=url,  # type: ignore[arg-type]
        additional_headers=cookie,
    ) as sock:
        assert sock.recv(5).startswith("0{")


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_sigterm_closes_socketio_clients_properly(
    kind: str, app: str, database: tuple[dict[str, str], str], driver: Driver
) -> None:
    """On either path, SIGTERM closes the Socket.IO sessions with "server shutting down" and
    the process exits cleanly, the project's own WebSocket open or not."""
    server = start(kind, app, database[0])
    try:
        auth = {"token": database[1]}
        driver("open", name="ws", url=server.url, nsp="/", auth=auth)
        driver("open", name="polling", url=server.url, nsp="/", transports="polling", auth=auth)
        with connect(ws_url(server, "/ws/echo/"), origin=server.url) as echo:  # type: ignore[arg-type]
            assert echo.recv(5) == "hello anonymous"
            exit_code = server.stop()
            with pytest.raises(ConnectionClosed) as closed:
                echo.recv(5)
    finally:
        server.stop()
    assert exit_code in (0, -signal.SIGTERM), server.log()
    # A close frame, not a dropped connection: uvicorn's 1012 (service restart), or the one the
    # session sends under daphne.
    assert driver("disconnected", name="ws") == "transport close"
    assert driver("state", name="ws")["closeCode"] == CLOSE_CODE[kind]
    # The pending poll is answered: under daphne with the close packet; under uvicorn, which
    # waits for it before its lifespan shutdown, by the next ping, whose pong finds it gone.
    polling = {"uvicorn": "transport error", "daphne": "transport close"}
    assert driver("disconnected", name="polling") == polling[kind]
    log = server.log_path.read_text(errors="replace")
    assert DISCONNECTED.findall(log) == [(USER, "server shutting down")] * 2, log
    # The project's own WebSocket: uvicorn closes it with 1012; daphne drops it.
    received = closed.value.rcvd
    assert (received.code if received else None) == (1012 if kind == "uvicorn" else None)
