"""Recovery stores for the contract suite: memory, the database store on SQLite and on
PostgreSQL, and the Redis store, each made fresh for a test and closed after it; and in-process
Socket.IO servers with communicators."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.asgi import get_asgi_application

from channels_sio.asgi import get_application
from channels_sio.recovery import MemoryStore, RecoveryStore
from channels_sio.socketio import SocketIOServer
from channels_sio.testing import SocketIOCommunicator
from tests.cluster.conftest import redis_url
from tests.support.ci import require
from tests.support.database import statements, using
from tests.support.driver import driver
from tests.support.servers import server_fixture
from tests.support.services import redis_database

__all__ = ["driver", "redis_url", "statements", "using"]

#: The Redis database of the recovery suites (the cluster suite has 7, bench/ 5).
REDIS_DB = 8

STORE_KINDS = ["memory", "database-sqlite", "database-postgres", "redis"]


@pytest.fixture(scope="session")
def recovery_redis_url() -> Iterator[str]:
    """The recovery suites' Redis database, flushed before and after."""
    with redis_database(REDIS_DB) as url:
        yield url


StoreFactory = Callable[..., RecoveryStore]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each contract test runs against every store it applies to: ``shared_stores`` marks
    those about several processes (not the memory store), ``capped_stores`` those about a
    length cap (not the database store, which has none)."""
    if "store_kind" not in metafunc.fixturenames:
        return
    kinds = STORE_KINDS
    if metafunc.definition.get_closest_marker("shared_stores"):
        kinds = [kind for kind in kinds if kind != "memory"]
    if metafunc.definition.get_closest_marker("capped_stores"):
        kinds = [kind for kind in kinds if not kind.startswith("database")]
    metafunc.parametrize("store_kind", kinds, indirect=True)


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "database-postgres":
        require("postgres" in settings.DATABASES, "PostgreSQL (CSIO_POSTGRES_URL)")
    return kind


@pytest.fixture
async def make_store(
    store_kind: str, request: pytest.FixtureRequest
) -> AsyncIterator[StoreFactory]:
    """Makes stores of one kind (several: "processes" sharing the store), closed after.

    Tests that use it need ``pytest.mark.django_db(transaction=True, databases="__all__")``:
    the database store works off the event loop, in threads of its own.
    """
    made: list[RecoveryStore] = []
    extra: dict[str, Any] = {}
    if store_kind.startswith("database"):
        extra["using"] = "postgres" if store_kind == "database-postgres" else "default"
    elif store_kind == "redis":
        import secrets

        extra["url"] = request.getfixturevalue("recovery_redis_url")
        extra["prefix"] = f"csio-test-{secrets.token_hex(4)}"

    def make(*, cap: int | None = None, **options: Any) -> RecoveryStore:
        store: RecoveryStore
        if store_kind == "memory":
            if cap is not None:
                options["max_packets"] = cap
            store = MemoryStore(**options)
        elif store_kind.startswith("database"):
            assert cap is None, "the database store has no length cap: mark capped_stores"
            from channels_sio.recovery.database import DatabaseStore

            store = DatabaseStore(**extra, **options)
        else:
            from channels_sio.recovery.redis import RedisStore

            if cap is not None:
                options["max_len"] = cap
            store = RedisStore(**extra, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        with contextlib.suppress(Exception):
            await store.close()


recovery_server = server_fixture(
    "tests.recovery.settings_recovery",
    "The feature configuration with connection state recovery on (memory store) and the "
    "recovery handlers, under each ASGI server, checked for leaks after each test.",
)


capped_server = server_fixture(
    "tests.recovery.settings_capped",
    "Like recovery_server, with a memory store that keeps 5 packets per namespace.",
)


@pytest.fixture
async def servers() -> AsyncIterator[list[SocketIOServer]]:
    """Socket.IO servers a test makes in this process, shut down after it."""
    made: list[SocketIOServer] = []
    yield made
    for server in made:
        await server.shutdown()


def client_of(server: SocketIOServer) -> SocketIOCommunicator:
    """A communicator on the whole application of ``server``, in namespace /chat."""
    return SocketIOCommunicator(
        get_application(get_asgi_application(), server=server), namespace="/chat"
    )
