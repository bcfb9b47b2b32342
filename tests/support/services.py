"""Where the suite finds Redis and PostgreSQL, and whether they answer.

Redis: ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``), each suite on a database number of
its own. PostgreSQL: ``CSIO_POSTGRES_URL`` (default ``postgres://postgres@127.0.0.1:5432/
postgres``, trust auth as on the development machines), where each run creates databases of
its own, named after the run, and drops them afterwards.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Iterator
from functools import cache
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "POSTGRES_URL",
    "RUN_ID",
    "postgres_database",
    "postgres_reachable",
    "postgres_settings",
    "redis_url_for",
]

POSTGRES_URL = os.environ.get("CSIO_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
#: Names this run's databases, so that two runs on one machine never share one.
RUN_ID = os.environ.setdefault("CSIO_RUN_ID", f"{os.getpid()}")


def redis_url_for(db: int) -> str:
    base = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    return urlunsplit(urlsplit(base)._replace(path=f"/{db}"))


@cache
def postgres_reachable() -> bool:
    parts = urlsplit(POSTGRES_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 1):
            return True
    except OSError:
        return False


def postgres_settings(name: str | None = None) -> dict[str, object]:
    """A Django DATABASES entry for the PostgreSQL server, on database ``name`` (the URL's
    own when None)."""
    parts = urlsplit(POSTGRES_URL)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name or parts.path.lstrip("/") or "postgres",
        "USER": parts.username or "postgres",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": str(parts.port or 5432),
    }


@contextlib.contextmanager
def postgres_database(purpose: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this run, dropped afterwards; its URL."""
    import psycopg

    name = f"csio_{purpose}_{RUN_ID}_{secrets.token_hex(3)}"
    parts = urlsplit(POSTGRES_URL)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def redis_database(db: int) -> Iterator[str]:
    """Redis database ``db`` of ``REDIS_URL``'s server, flushed before and after; skips (fails
    in CI) when Redis does not answer. Its URL."""
    import redis

    from .ci import require

    url = redis_url_for(db)
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
        reachable = True
    except redis.RedisError:
        reachable = False
    require(reachable, f"Redis at {url}")
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
