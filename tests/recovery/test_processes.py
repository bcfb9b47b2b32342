"""Recovery across processes with the persistent stores: a client drops on one node and comes
back on another (uvicorn and daphne on channels-redis), or comes back after the only worker was
restarted (SIGTERM: its sessions close with "server shutting down"). The Redis store on the real
Redis, the database store on a PostgreSQL database of its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import socketio

from tests.cluster.conftest import running_cluster
from tests.recovery.wire import call, event_of, join, raw
from tests.support import servers
from tests.support.ci import require
from tests.support.driver import Driver, wait_for
from tests.support.servers import ServerProcess
from tests.support.services import postgres_database, postgres_reachable

pytestmark = [pytest.mark.node, pytest.mark.redis, pytest.mark.slow]

NSP = "/recovery"
SETTINGS = "tests.recovery.settings_recovery_cluster"


def manage(env: dict[str, str], *args: str) -> str:
    """``manage.py`` of the example project with ``SETTINGS`` and ``env``; what it printed."""
    return servers.manage(SETTINGS, env, *args).stdout


@contextlib.contextmanager
def shared_env(store: str, redis_url: str, recovery_redis_url: str) -> Iterator[dict[str, str]]:
    """What the server processes of one test share: the channel layer and the store."""
    env = {"REDIS_URL": redis_url, "CSIO_LAYER_PREFIX": f"csio{secrets.token_hex(4)}"}
    if store == "redis":
        options = {"url": recovery_redis_url, "prefix": f"csio-e2e-{secrets.token_hex(4)}"}
        yield {**env, "CSIO_RECOVERY_STORE": "redis", "CSIO_RECOVERY_OPTIONS": json.dumps(options)}
        return
    require(postgres_reachable(), "PostgreSQL (CSIO_POSTGRES_URL)")
    with postgres_database("e2e") as url:
        env = {**env, "CSIO_RECOVERY_STORE": "database", "DATABASE_URL": url}
        manage(env, "migrate", "--noinput")
        yield env


@pytest.fixture(params=["redis", "database-postgres"])
def store_env(
    request: pytest.FixtureRequest, redis_url: str, recovery_redis_url: str
) -> Iterator[dict[str, str]]:
    """Each persistent store, shared by the test's server processes."""
    with shared_env(request.param, redis_url, recovery_redis_url) as env:
        yield env


@pytest.fixture
def database_env(redis_url: str, recovery_redis_url: str) -> Iterator[dict[str, str]]:
    """The database store on PostgreSQL, where the Django users are too."""
    with shared_env("database-postgres", redis_url, recovery_redis_url) as env:
        yield env


def open_on(driver: Driver, server: ServerProcess, name: str, **fields: Any) -> Any:
    return driver("open", name=name, url=server.url, nsp=NSP, transports="websocket", **fields)


def cast(driver: Driver, via: str, **spec: Any) -> None:
    assert driver("call", name=via, event="cast", args=[spec]) is True


def missed_after_flush(driver: Driver, name: str, via: str) -> list[Any]:
    """The "m" events ``name`` got, once a "flush" sent after them arrived."""
    cast(driver, via, event="flush")
    driver("wait", name=name, event="flush")
    return [event[1] for event in driver("events", name=name) if event[0] == "m"]


def test_a_client_dropped_on_one_node_recovers_on_the_other(
    store_env: dict[str, str], driver: Driver
) -> None:
    with running_cluster(
        store_env["REDIS_URL"], SETTINGS, ("uvicorn", "daphne"), store_env
    ) as cluster:
        a = open_on(driver, cluster[0], "A", auth={"rooms": ["red"], "name": "ann"})
        open_on(driver, cluster[1], "B")
        open_on(driver, cluster[0], "C", auth={"rooms": ["red"]})
        cast(driver, "B", event="m", args=[0])
        driver("wait", name="A", event="m")
        driver("drop", name="A")
        cast(driver, "B", event="m", args=[1])  # from the other node, to everyone
        cast(driver, "C", event="m", args=[2], to=["red"])  # from A's node, to its room
        cast(driver, "B", event="m", args=[3], to=[a["id"]])  # to its own id
        cast(driver, "B", event="m", args=[4], to=["blue"])  # not for A
        assert driver("call", name="C", event="django-emit", args=[{"event": "m", "args": [5]}])
        back = driver("reconnect", name="A", url=cluster[1].url, clear=True)
        assert back["recovered"] is True
        assert back["id"] == a["id"]
        assert missed_after_flush(driver, "A", "B") == [1, 2, 3, 5]
        # Its rooms are its own on the new node: a broadcast to "red" from the old one.
        cast(driver, "C", event="m", args=[6], to=["red"])
        assert [e[1] for e in driver("wait", name="A", event="m", count=5)][-1] == 6
        info = driver("call", name="A", event="info")
        assert info == {"id": a["id"], "recovered": True, "rooms": ["red"], "data": {"name": "ann"}}


def test_a_client_restored_on_another_node_while_its_emit_is_written_gets_it_once(
    redis_url: str, recovery_redis_url: str, driver: Driver
) -> None:
    """The restore on the other node reads the log before the write lands: the packet reaches
    the restored socket through the cluster, once."""
    import redis

    prefix = f"csio-e2e-{secrets.token_hex(4)}"
    gate = f"{prefix}:gate"
    options = {"url": recovery_redis_url, "prefix": prefix, "gate": gate}
    env = {
        "REDIS_URL": redis_url,
        "CSIO_LAYER_PREFIX": f"csio{secrets.token_hex(4)}",
        "CSIO_RECOVERY_STORE": "tests.recovery.slow_store.SlowRedisStore",
        "CSIO_RECOVERY_OPTIONS": json.dumps(options),
    }
    with (
        running_cluster(redis_url, SETTINGS, ("uvicorn", "daphne"), env) as cluster,
        redis.Redis.from_url(recovery_redis_url) as store_redis,
    ):
        a = open_on(driver, cluster[0], "A")
        open_on(driver, cluster[1], "B")
        # Its acknowledgement waits behind the emit, whose write waits for the gate.
        driver("callLater", name="A", event="self", args=[{"event": "m", "args": [1]}])
        time.sleep(0.5)
        driver("drop", name="A")
        back = driver("reconnect", name="A", url=cluster[1].url, clear=True)
        assert back["recovered"] is True
        assert back["id"] == a["id"]
        assert driver("events", name="A") == []  # the log did not show it yet
        store_redis.set(gate, 1)  # now the write lands
        got = driver("wait", name="A", event="m", ms=10_000)
        assert [event[1] for event in got] == [1]
        assert isinstance(got[0][2], str)
        assert missed_after_flush(driver, "A", "B") == [1]  # and only once


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
async def test_what_a_handler_sends_after_a_recorded_emit_comes_after_it(
    store_env: dict[str, str], kind: str
) -> None:
    """With a store that waits for its write, the handler goes on at once: its later packets
    and its acknowledgement still reach python-socketio's client after the recorded ones."""
    with running_cluster(store_env["REDIS_URL"], SETTINGS, (kind,), store_env) as cluster:
        client = socketio.AsyncClient(reconnection=False)
        got: list[Any] = []
        client.on("seq", lambda *args: got.append(args), namespace=NSP)
        await client.connect(cluster[0].url, namespaces=[NSP], transports=["websocket"])
        try:
            for _ in range(3):
                got.clear()
                assert await client.call("sequence", namespace=NSP, timeout=5) == "done"
                await asyncio.sleep(0)  # the client runs each event's handler in a task
                assert [args[0] for args in got] == [1, 2, 3, 4]
                # The recorded ones carry their offset, the others none.
                assert isinstance(got[0][1], str)
                assert isinstance(got[2][1], str)
                assert got[0][1] != got[2][1]
                assert len(got[1]) == len(got[3]) == 1
        finally:
            await client.disconnect()


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
def test_a_client_recovers_after_its_worker_restarted(
    store_env: dict[str, str], driver: Driver, kind: str
) -> None:
    with running_cluster(store_env["REDIS_URL"], SETTINGS, (kind,), store_env) as first:
        a = open_on(driver, first[0], "A", auth={"rooms": ["red"]})
        open_on(driver, first[0], "B")
        cast(driver, "B", event="m", args=[0])
        driver("wait", name="A", event="m")
    # SIGTERM: the worker closed every session with "server shutting down", and kept them.
    for name in ("A", "B"):
        assert driver("disconnected", name=name) == "transport close"
    with running_cluster(store_env["REDIS_URL"], SETTINGS, (kind,), store_env) as second:
        open_on(driver, second[0], "D")
        cast(driver, "D", event="m", args=[1], to=["red"])
        cast(driver, "D", event="m", args=[2])
        back = driver("reconnect", name="A", url=second[0].url, clear=True)
        assert back["recovered"] is True
        assert back["id"] == a["id"]
        assert missed_after_flush(driver, "A", "D") == [1, 2]
        assert driver("call", name="A", event="info")["rooms"] == ["red"]


def test_a_session_is_restored_for_its_own_user_only(
    database_env: dict[str, str], driver: Driver
) -> None:
    store_env = database_env
    script = (
        "from django.contrib.auth.models import User\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        "for name in ('ann', 'bob'):\n"
        "    user = User.objects.create_user(name)\n"
        "    session = SessionStore()\n"
        "    session['_auth_user_id'] = str(user.pk)\n"
        "    session['_auth_user_backend'] = 'django.contrib.auth.backends.ModelBackend'\n"
        "    session['_auth_user_hash'] = user.get_session_auth_hash()\n"
        "    session.create()\n"
        "    print(name, session.session_key)\n"
    )
    printed = manage(store_env, "shell", "-c", script).split()
    keys = {name: printed[printed.index(name) + 1] for name in ("ann", "bob")}
    cookie = {name: {"cookie": f"sessionid={key}"} for name, key in keys.items()}
    with running_cluster(store_env["REDIS_URL"], SETTINGS, ("uvicorn",), store_env) as cluster:
        a = open_on(driver, cluster[0], "A", headers=cookie["ann"])
        driver("drop", name="A")
        as_bob = driver("reconnect", name="A", headers=cookie["bob"])
        assert as_bob["recovered"] is False
        assert as_bob["id"] != a["id"]
        driver("drop", name="A")
        as_anonymous = driver("reconnect", name="A", headers={})
        assert as_anonymous["recovered"] is False
        # The session of ann's socket was kept for her: her pid, with her cookie.
        driver("close", name="A")
        driver(
            "open",
            name="A2",
            url=cluster[0].url,
            nsp=NSP,
            transports="websocket",
            headers=cookie["ann"],
            auth={"pid": a["pid"]},
        )
        assert driver("call", name="A2", event="info")["id"] == a["id"]


def session_rooms(env: dict[str, str], pid: str) -> list[str] | None:
    """The rooms of the session the shared store keeps for ``pid`` (None when none)."""
    if env["CSIO_RECOVERY_STORE"] == "redis":
        import redis

        options = json.loads(env["CSIO_RECOVERY_OPTIONS"])
        with redis.Redis.from_url(options["url"], socket_timeout=2) as client:
            value = client.get(f"{options['prefix']}:session:{pid}")
        return None if value is None else list(json.loads(value)["rooms"])
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as connection:
        row = connection.execute(
            "SELECT rooms FROM channels_sio_recoverysession WHERE pid = %s", [pid]
        ).fetchone()
    return None if row is None else list(row[0])


@pytest.fixture(params=["redis", "database-postgres"])
def live_store_env(
    request: pytest.FixtureRequest, redis_url: str, recovery_redis_url: str
) -> Iterator[dict[str, str]]:
    """Each persistent store, with persist_live_sessions on."""
    with shared_env(request.param, redis_url, recovery_redis_url) as env:
        yield {**env, "CSIO_RECOVERY_LIVE": "1"}


def test_a_client_of_a_killed_worker_recovers_on_the_other(
    live_store_env: dict[str, str], driver: Driver
) -> None:
    """SIGKILL: the worker writes nothing as it dies. With persist_live_sessions the session
    was kept as it changed, and every broadcast of the other worker is in the log."""
    env, count = live_store_env, 300
    with running_cluster(env["REDIS_URL"], SETTINGS, ("uvicorn", "daphne"), env) as cluster:
        a = open_on(driver, cluster[0], "A", auth={"rooms": ["red"], "name": "ann"})
        open_on(driver, cluster[1], "B")
        assert driver("call", name="A", event="join", args=["blue"]) is True
        wait_for(
            lambda: session_rooms(env, a["pid"]) == sorted(["blue", "red", a["id"]]),
            5,
            "A's session kept with its rooms",
        )
        # A stream of broadcasts to A's room from the other worker, 2 ms apart ...
        stream = driver(
            "callLater",
            name="B",
            event="burst",
            args=[{"count": count, "to": ["red"], "pause": 2}],
            ms=20_000,
        )
        driver("wait", name="A", event="seq", count=50)
        victim = cluster[0].proc
        assert victim is not None
        victim.send_signal(signal.SIGKILL)  # ... killed in the middle of it
        victim.wait(5)
        assert driver("disconnected", name="A") == "transport close"
        back = driver("reconnect", name="A", url=cluster[1].url)
        assert back["recovered"] is True
        assert back["id"] == a["id"]
        assert driver("result", name="B", call=stream, ms=20_000) is True
        got = driver("wait", name="A", event="seq", count=count)
        assert [event[1] for event in got] == list(range(count))  # each once, in order
        info = driver("call", name="A", event="info")
        assert info == {
            "id": a["id"],
            "recovered": True,
            "rooms": ["blue", "red"],
            "data": {"name": "ann"},
        }
        # Kept again on its new worker, and discarded when it leaves on purpose.
        wait_for(lambda: session_rooms(env, a["pid"]) is not None, 5, "kept on B")
        driver("leave", name="A")
        wait_for(lambda: session_rooms(env, a["pid"]) is None, 5, "discarded")


async def rooms_kept(env: dict[str, str], pid: str, rooms: list[str], what: str) -> None:
    """Wait until the store keeps ``rooms`` for ``pid``, without blocking the loop (the raw
    sockets answer pings on it)."""
    deadline = time.monotonic() + 5
    while (found := await asyncio.to_thread(session_rooms, env, pid)) != sorted(rooms):
        assert time.monotonic() < deadline, f"{what}: the store keeps {found!r}"
        await asyncio.sleep(0.05)


async def test_a_client_back_on_the_other_worker_before_the_first_noticed_takes_over(
    live_store_env: dict[str, str],
) -> None:
    """With persist_live_sessions the session is in the store while its socket is connected,
    so a client whose connection went silent can recover on the other worker before the first
    noticed. That worker then closes the old connection at once, and never keeps its older
    session over the new one's."""
    env = live_store_env
    with running_cluster(env["REDIS_URL"], SETTINGS, ("uvicorn", "daphne"), env) as cluster:
        # Stops answering pings: the first worker notices after its heartbeat (1.8 s).
        async with raw(cluster[0], pong=False) as old:
            first = await join(old, {"rooms": ["red"]})
            pid, sid = first["pid"], first["sid"]
            await rooms_kept(env, pid, ["red", sid], "kept while connected")
            async with raw(cluster[1]) as sock:
                again = await join(sock, {"pid": pid})
                assert again["sid"] == sid
                info = (await call(sock, 1, "info"))[0]
                assert (info["recovered"], info["rooms"]) == (True, ["red"])
                assert (await call(sock, 2, "join", "blue"))[0] is True
                await rooms_kept(env, pid, ["blue", "red", sid], "the new session")
                assert await old.closed() is not None
                # Past that heartbeat (and before the next rewrite of the new session, every
                # quarter of max_disconnection_duration): the new session is the one kept.
                await asyncio.sleep(2.5)
                kept = await asyncio.to_thread(session_rooms, env, pid)
                assert kept == sorted(["blue", "red", sid])
                got: list[str] = []
                await call(
                    sock, 3, "cast", {"event": "m", "args": ["once"], "to": ["red"]}, before=got
                )
                assert [event_of(frame)[:2] for frame in got] == [["m", "once"]]
