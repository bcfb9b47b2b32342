"""SocketIOCommunicator against isolated Socket.IO servers, each built inside its test.

Every test gets a fresh ``SocketIOServer`` served by ``get_application(..., server=sio)``
(WebSocket through ``AuthMiddlewareStack``, as in a project) and leaves no Engine.IO session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser, User
from django.core.asgi import get_asgi_application
from django.test import Client

from channels_sio import AckTimeoutError, ConnectionRefusedError, Socket
from channels_sio.asgi import get_application
from channels_sio.engineio import EngineIOConfig
from channels_sio.socketio import ServerConfig, SocketIOServer
from channels_sio.testing import SocketIOCommunicator

LOGGER = "channels_sio.socketio"


async def settle(server: SocketIOServer, timeout: float = 1.0) -> None:
    """Wait until the server holds no Engine.IO session (closing is asynchronous)."""
    async with asyncio.timeout(timeout):
        while server.engine.sessions or server.clients:  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.01)


def build(server: SocketIOServer) -> Any:
    return get_application(get_asgi_application(), server=server)


@pytest.fixture
async def sio() -> AsyncIterator[SocketIOServer]:
    """An isolated server; plain ``def`` handlers may use the ORM, as with channels_sio.sio."""
    server = SocketIOServer(sync_runner=database_sync_to_async)
    yield server
    try:
        await settle(server)
    except TimeoutError:
        pytest.fail(f"Engine.IO sessions left open: {server.engine.sessions}")
    finally:
        await server.shutdown()


@pytest.fixture
def app(sio: SocketIOServer) -> Any:
    return build(sio)


# -- connecting ---------------------------------------------------------------------------


async def test_connect_returns_the_connect_payload(sio: SocketIOServer, app: Any) -> None:
    sockets: list[Socket] = []

    @sio.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any]) -> None:
        sockets.append(socket)

    client = SocketIOCommunicator(app)
    payload = await client.connect()
    assert payload == {"sid": client.sid}
    [socket] = sockets
    assert socket.id == client.sid
    assert socket.connected
    assert socket.nsp.name == "/"
    assert sorted(client.handshake) == [
        "maxPayload",
        "pingInterval",
        "pingTimeout",
        "sid",
        "upgrades",
    ]
    assert client.handshake["sid"] != client.sid, "the Engine.IO sid is not the socket id"
    assert client.handshake["sid"] in sio.engine.sessions
    await client.disconnect()


async def test_auth_query_and_headers_reach_the_socket(sio: SocketIOServer, app: Any) -> None:
    seen: dict[str, Any] = {}

    @sio.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any]) -> None:
        seen["auth"] = auth
        seen["handshake"] = socket.handshake

    client = SocketIOCommunicator(
        app, auth={"token": "t0k"}, query="room=lobby", headers=[(b"x-client", b"tests")]
    )
    await client.connect()
    assert seen["auth"] == {"token": "t0k"}
    handshake = seen["handshake"]
    assert handshake.auth == {"token": "t0k"}
    assert handshake.query["room"] == "lobby"
    assert handshake.headers["x-client"] == "tests"
    assert handshake.url.startswith("/socket.io/?EIO=4&transport=websocket")
    await client.disconnect()


async def test_connect_without_a_connect_handler(app: Any) -> None:
    client = SocketIOCommunicator(app)
    assert set(await client.connect()) == {"sid"}
    await client.disconnect()


@pytest.mark.parametrize(
    ("refusal", "message", "data"),
    [
        pytest.param(
            ConnectionRefusedError("Not authorized", {"retry": False, "code": 7}),
            "Not authorized",
            {"retry": False, "code": 7},
            id="with-data",
        ),
        pytest.param(ConnectionRefusedError("Go away"), "Go away", None, id="message-only"),
        pytest.param(
            ConnectionRefusedError(), "Connection rejected by server", None, id="default-message"
        ),
        pytest.param(False, "Connection rejected by server", None, id="returns-false"),
    ],
)
async def test_refused_by_the_connect_handler(
    sio: SocketIOServer, app: Any, refusal: Any, message: str, data: Any
) -> None:
    @sio.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any]) -> bool:
        if isinstance(refusal, Exception):
            raise refusal
        return bool(refusal)

    client = SocketIOCommunicator(app)
    with pytest.raises(ConnectionRefusedError) as info:
        await client.connect()
    assert info.value.message == message
    assert info.value.data == data
    assert client.sid is None
    # The connection is closed, as socket.io-client closes a manager with no namespace left;
    # disconnect() stays harmless.
    await settle(sio)
    await client.disconnect()


@pytest.mark.django_db(transaction=True)  # plain def handlers: database_sync_to_async
async def test_refused_by_a_middleware(sio: SocketIOServer, app: Any) -> None:
    @sio.use
    def need_token(socket: Socket, auth: dict[str, Any]) -> None:
        if auth.get("token") != "secret":
            raise ConnectionRefusedError("bad token", {"got": auth.get("token")})

    refused = SocketIOCommunicator(app, auth={"token": "guess"})
    with pytest.raises(ConnectionRefusedError, match="bad token") as info:
        await refused.connect()
    assert info.value.data == {"got": "guess"}

    accepted = SocketIOCommunicator(app, auth={"token": "secret"})
    await accepted.connect()
    await accepted.disconnect()


async def test_unknown_namespace_is_refused(app: Any) -> None:
    client = SocketIOCommunicator(app, namespace="/nowhere")
    with pytest.raises(ConnectionRefusedError) as info:
        await client.connect()
    assert info.value.message == "Invalid namespace"
    assert info.value.data is None


# -- events and acknowledgements ------------------------------------------------------------


async def test_emit_reaches_the_handler(sio: SocketIOServer, app: Any) -> None:
    received: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    @sio.on("chat")
    async def chat(socket: Socket, *args: Any) -> None:
        await received.put(args)

    client = SocketIOCommunicator(app)
    await client.connect()
    await client.emit("chat", "hi", 1, {"n": [True, None]})
    await client.emit("chat")
    assert await asyncio.wait_for(received.get(), 1) == ("hi", 1, {"n": [True, None]})
    assert await asyncio.wait_for(received.get(), 1) == ()
    await client.disconnect()


@pytest.mark.parametrize(
    ("returned", "ack"),
    [
        pytest.param(None, [], id="none"),
        pytest.param("ok", ["ok"], id="one"),
        pytest.param(("ok", 2, {"x": None}), ["ok", 2, {"x": None}], id="tuple-spread"),
        pytest.param(["a", "b"], [["a", "b"]], id="list-is-one-argument"),
        pytest.param({"é": "☃"}, [{"é": "☃"}], id="utf8"),
    ],
)
async def test_emit_with_ack_returns_the_handler_result(
    sio: SocketIOServer, app: Any, returned: Any, ack: list[Any]
) -> None:
    @sio.on("ask")
    async def ask(socket: Socket) -> Any:
        return returned

    client = SocketIOCommunicator(app)
    await client.connect()
    assert await client.emit_with_ack("ask") == ack
    await client.disconnect()


async def test_acks_are_matched_by_id(sio: SocketIOServer, app: Any) -> None:
    @sio.on("slow")
    async def slow(socket: Socket, delay: float, value: int) -> int:
        await asyncio.sleep(delay)
        return value

    client = SocketIOCommunicator(app)
    await client.connect()
    first = asyncio.ensure_future(client.emit_with_ack("slow", 0.2, 1))
    await asyncio.sleep(0.05)
    # The second answer arrives first; the first call stays waiting for its own id.
    assert await client.emit_with_ack("slow", 0, 2) == [2]
    assert await first == [1]
    await client.disconnect()


async def test_emit_with_ack_times_out(sio: SocketIOServer, app: Any) -> None:
    @sio.on("silent")
    async def silent(socket: Socket) -> None:
        await asyncio.sleep(0.5)

    client = SocketIOCommunicator(app)
    await client.connect()
    with pytest.raises(TimeoutError):
        await client.emit_with_ack("silent", timeout=0.1)
    await client.disconnect()


async def test_receive_and_expect_events(sio: SocketIOServer, app: Any) -> None:
    @sio.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any]) -> None:
        await socket.emit("welcome", "to", {"room": "lobby"})  # sent after the CONNECT reply

    @sio.on("poke")
    async def poke(socket: Socket, *names: str) -> None:
        for name in names:
            await socket.emit(name)

    client = SocketIOCommunicator(app)
    await client.connect()
    assert await client.receive_event() == ("welcome", ["to", {"room": "lobby"}])
    assert await client.receive_nothing()
    await client.emit("poke", "one", "two", "three")
    assert await client.expect_event("one") == []
    with pytest.raises(AssertionError, match="expected event 'three', got 'two' with \\[\\]"):
        await client.expect_event("three")
    assert await client.expect_event("three") == []
    with pytest.raises(TimeoutError):
        await client.receive_event(timeout=0.05)
    await client.disconnect()


async def test_receive_nothing_leaves_an_event_queued(sio: SocketIOServer, app: Any) -> None:
    @sio.on("poke")
    async def poke(socket: Socket) -> None:
        await socket.emit("poked", 1)

    client = SocketIOCommunicator(app)
    await client.connect()
    assert await client.receive_nothing(0.05)
    await client.emit("poke")
    assert not await client.receive_nothing(0.5)
    assert await client.expect_event("poked") == [1]
    await client.disconnect()


async def test_events_and_acks_arriving_together(sio: SocketIOServer, app: Any) -> None:
    @sio.on("both")
    async def both(socket: Socket) -> str:
        await socket.emit("side", 1)
        await socket.emit("side", 2)
        return "done"

    client = SocketIOCommunicator(app)
    await client.connect()
    # The events came before the ack; they are kept for receive_event.
    assert await client.emit_with_ack("both") == ["done"]
    assert await client.expect_event("side") == [1]
    assert await client.expect_event("side") == [2]
    await client.disconnect()


async def test_binary_round_trip(sio: SocketIOServer, app: Any) -> None:
    received: list[tuple[Any, ...]] = []

    @sio.on("echo")
    async def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        received.append(args)
        await socket.emit("echoed", *args)
        return args

    client = SocketIOCommunicator(app)
    await client.connect()
    args = [b"\x00\x01\xff", {"files": [b"a", {"raw": b""}], "name": "é"}, "text", 3]
    assert await client.emit_with_ack("echo", *args) == args
    assert received == [tuple(args)]
    assert await client.expect_event("echoed") == args
    await client.disconnect()


async def test_another_namespace(sio: SocketIOServer, app: Any) -> None:
    @sio.on("connect", namespace="/chat")
    async def connect(socket: Socket, auth: dict[str, Any]) -> None:
        socket.join("lobby")

    @sio.on("say", namespace="/chat")
    async def say(socket: Socket, text: str) -> str:
        await socket.nsp.to("lobby").emit("said", text)
        return socket.nsp.name

    @sio.on("say")
    async def say_on_main(socket: Socket, text: str) -> str:
        return "main"

    chat = SocketIOCommunicator(app, namespace="/chat")
    main = SocketIOCommunicator(app)
    assert set(await chat.connect()) == {"sid"}
    await main.connect()
    assert await chat.emit_with_ack("say", "hi") == ["/chat"]
    assert await chat.expect_event("said") == ["hi"]
    assert await main.emit_with_ack("say", "hi") == ["main"]
    await sio.emit("main-only", namespace="/")
    await sio.of("/chat").emit("chat-only")
    assert await main.expect_event("main-only") == []
    assert await chat.expect_event("chat-only") == []
    assert await chat.receive_nothing()
    assert await main.receive_nothing()
    await chat.disconnect()
    await main.disconnect()


async def test_broadcast_to_rooms_between_communicators(sio: SocketIOServer, app: Any) -> None:
    @sio.on("join")
    async def join(socket: Socket, room: str) -> None:
        socket.join(room)

    @sio.on("shout")
    async def shout(socket: Socket, room: str, text: str) -> None:
        await socket.to(room).emit("shouted", text)

    alice, bob, carol = (SocketIOCommunicator(app) for _ in range(3))
    for client in (alice, bob, carol):
        await client.connect()
    await alice.emit_with_ack("join", "red")
    await bob.emit_with_ack("join", "red")
    await alice.emit_with_ack("shout", "red", "hello")
    assert await bob.expect_event("shouted") == ["hello"]
    assert await alice.receive_nothing(), "socket.to() leaves the sender out"
    assert await carol.receive_nothing()
    for client in (alice, bob, carol):
        await client.disconnect()


async def test_pings_are_answered_while_waiting() -> None:
    server = SocketIOServer(ServerConfig(engine=EngineIOConfig(ping_interval=50, ping_timeout=50)))
    client = SocketIOCommunicator(build(server))
    try:
        await client.connect()
        [session] = server.engine.sessions.values()
        pong_before = session.last_pong
        assert await client.receive_nothing(0.4)  # several ping intervals
        assert session.is_open
        assert session.last_pong > pong_before
        await client.disconnect()
        await settle(server)
    finally:
        await server.shutdown()


# -- server-side acknowledgements -----------------------------------------------------------


async def test_server_emit_with_ack_is_not_answered_by_the_communicator(
    sio: SocketIOServer, app: Any
) -> None:
    # The communicator has no client-side ack handlers: the event arrives, its ack id is
    # dropped, and the server's emit_with_ack times out.
    outcome: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    @sio.on("start")
    async def start(socket: Socket) -> None:
        try:
            outcome.set_result(await socket.emit_with_ack("question", 42, timeout=0.2))
        except AckTimeoutError as exc:
            outcome.set_result(exc)

    client = SocketIOCommunicator(app)
    await client.connect()
    await client.emit("start")
    assert await client.expect_event("question") == [42]
    assert isinstance(await asyncio.wait_for(outcome, 1), AckTimeoutError)
    await client.disconnect()


async def test_server_emit_with_ack_answered_on_the_wire(sio: SocketIOServer, app: Any) -> None:
    # Until the communicator can answer acks, a test can read the frame from the underlying
    # WebsocketCommunicator (client.ws) and write the ACK itself.
    answers: asyncio.Queue[Any] = asyncio.Queue()

    @sio.on("start", namespace="/chat")
    async def start(socket: Socket) -> None:
        await answers.put(await socket.emit_with_ack("question", 42, timeout=1))

    client = SocketIOCommunicator(app, namespace="/chat")
    await client.connect()
    await client.emit("start")
    assert await client.ws.receive_from() == '42/chat,0["question",42]'
    await client.ws.send_to(text_data='43/chat,0["yes",{"n":1}]')
    assert await asyncio.wait_for(answers.get(), 1) == ("yes", {"n": 1})
    await client.disconnect()


async def test_server_emit_callback_on_the_wire(sio: SocketIOServer, app: Any) -> None:
    answers: asyncio.Queue[Any] = asyncio.Queue()

    async def answered(*args: Any) -> None:
        await answers.put(args)

    @sio.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any]) -> None:
        await socket.emit("question", callback=answered)

    client = SocketIOCommunicator(app)
    await client.connect()
    assert await client.ws.receive_from() == '420["question"]'
    await client.ws.send_to(text_data='430["answer"]')
    assert await asyncio.wait_for(answers.get(), 1) == ("answer",)
    await client.disconnect()


# -- Django ---------------------------------------------------------------------------------


def log_in(username: str) -> bytes:
    """Create a user, log in with Django's test client; return the Cookie header value."""
    User.objects.create_user(username, password="pw")
    browser = Client()
    assert browser.login(username=username, password="pw")
    return "; ".join(f"{key}={morsel.value}" for key, morsel in browser.cookies.items()).encode()


@pytest.mark.django_db(transaction=True)
async def test_logged_in_user_is_on_the_socket(sio: SocketIOServer, app: Any) -> None:
    @sio.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any]) -> bool:
        return bool(socket.user.is_authenticated)

    @sio.on("whoami")
    async def whoami(socket: Socket) -> tuple[str, bool]:
        return socket.user.username, socket.session is not None

    cookie = await sync_to_async(log_in)("alice")
    client = SocketIOCommunicator(app, headers=[(b"cookie", cookie)])
    await client.connect()
    assert await client.emit_with_ack("whoami") == ["alice", True]
    await client.disconnect()

    anonymous = SocketIOCommunicator(app)
    with pytest.raises(ConnectionRefusedError, match="Connection rejected by server"):
        await anonymous.connect()


async def test_anonymous_user_without_a_cookie(sio: SocketIOServer, app: Any) -> None:
    @sio.on("whoami")
    async def whoami(socket: Socket) -> tuple[bool, bool]:
        return socket.user.is_authenticated, isinstance(socket.user, AnonymousUser)

    client = SocketIOCommunicator(app)
    await client.connect()
    assert await client.emit_with_ack("whoami") == [False, True]
    await client.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_plain_def_handlers_use_the_orm(sio: SocketIOServer, app: Any) -> None:
    @sio.on("connect")
    def connect(socket: Socket, auth: dict[str, Any]) -> None:
        socket.data["user"] = User.objects.get(username=auth["name"])

    @sio.on("rename")
    def rename(socket: Socket, new_name: str) -> list[str]:
        user = socket.data["user"]
        user.username = new_name
        user.save()
        return list(User.objects.order_by("username").values_list("username", flat=True))

    await sync_to_async(User.objects.create_user)("bob")
    await sync_to_async(User.objects.create_user)("zed")
    client = SocketIOCommunicator(app, auth={"name": "bob"})
    await client.connect()
    assert await client.emit_with_ack("rename", "carol") == [["carol", "zed"]]
    assert await User.objects.filter(username="carol").aexists()
    await client.disconnect()


# -- failures and disconnections ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # plain def handlers: database_sync_to_async
async def test_handler_exception_is_logged_and_the_connection_carries_on(
    sio: SocketIOServer, app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    @sio.on("boom")
    async def boom(socket: Socket) -> None:
        raise RuntimeError("kaboom")

    @sio.on("sync-boom")
    def sync_boom(socket: Socket) -> None:
        raise KeyError("sync kaboom")

    @sio.on("ping")
    async def ping(socket: Socket) -> str:
        return "pong"

    client = SocketIOCommunicator(app)
    await client.connect()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        await client.emit("boom")
        with pytest.raises(TimeoutError):  # no acknowledgement for a failed handler
            await client.emit_with_ack("sync-boom", timeout=0.2)
        assert await client.emit_with_ack("ping") == ["pong"]
    failures = [record for record in caplog.records if record.name == LOGGER]
    assert [record.getMessage().split(" (")[0] for record in failures] == [
        "handler for 'boom' failed",
        "handler for 'sync-boom' failed",
    ]
    assert [type(record.exc_info[1]) for record in failures if record.exc_info] == [
        RuntimeError,
        KeyError,
    ]
    await client.disconnect()


async def test_disconnect_reasons(sio: SocketIOServer, app: Any) -> None:
    reasons: asyncio.Queue[str] = asyncio.Queue()

    @sio.on("disconnect")
    async def disconnect(socket: Socket, reason: str) -> None:
        await reasons.put(reason)

    @sio.on("leave")
    async def leave(socket: Socket, close: bool) -> None:
        await socket.disconnect(close)

    async def reason_for(client: SocketIOCommunicator) -> str:
        return await asyncio.wait_for(reasons.get(), 1)

    client = SocketIOCommunicator(app)
    await client.connect()
    await client.disconnect()
    assert await reason_for(client) == "client namespace disconnect"

    client = SocketIOCommunicator(app)
    await client.connect()
    await client.ws.disconnect()  # the WebSocket goes without a Socket.IO DISCONNECT
    assert await reason_for(client) == "transport close"

    client = SocketIOCommunicator(app)
    await client.connect()
    await client.emit("leave", False)
    assert await reason_for(client) == "server namespace disconnect"
    await client.disconnect()

    client = SocketIOCommunicator(app)
    await client.connect()
    await client.emit("leave", True)
    assert await reason_for(client) == "forced server close"
    await client.disconnect()

    assert reasons.empty()


@pytest.mark.django_db(transaction=True)  # plain def handlers: database_sync_to_async
async def test_disconnect_handler_without_reason_and_failing(
    sio: SocketIOServer, app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    gone: list[str] = []

    @sio.on("disconnect")
    def disconnect(socket: Socket) -> None:  # the reason is optional
        gone.append(socket.id)
        raise ValueError("cleanup failed")

    client = SocketIOCommunicator(app)
    await client.connect()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        await client.disconnect()
        await settle(sio)
    assert gone == [client.sid]
    assert any(
        record.getMessage().startswith("disconnect handler failed") for record in caplog.records
    )


async def test_server_shutdown_closes_communicators(sio: SocketIOServer, app: Any) -> None:
    reasons: list[str] = []

    @sio.on("disconnect")
    async def disconnect(socket: Socket, reason: str) -> None:
        reasons.append(reason)

    client = SocketIOCommunicator(app)
    await client.connect()
    await sio.shutdown()
    assert reasons == ["server shutting down"]
    assert not sio.engine.sessions
    await client.disconnect()


async def test_answer_acknowledges_server_emits_with_ack() -> None:
    sio = SocketIOServer()
    results: list[Any] = []

    @sio.on("ask")
    async def ask(socket: Socket) -> None:
        results.append(await socket.emit_with_ack("question", 20, timeout=1))

    app = get_application(get_asgi_application(), server=sio)
    client = SocketIOCommunicator(app)
    client.answer("question", lambda n: (n + 1, "sure"))
    await client.connect()
    await client.emit("ask")
    assert await client.expect_event("question") == [20]
    await client.receive_nothing(0.2)
    assert results == [(21, "sure")]
    await client.disconnect()
