"""The Python and Django versions channels_sio supports, as nox sessions.

Python 3.11, 3.12 and 3.13 by Django 5.2 and 6.0, less Python 3.11 with Django 6.0 (Django 6.0
needs Python 3.12). ``full`` runs the whole suite on one combination, Python 3.11 with Django
5.2, the one CI's ``.venv`` has; ``fast`` runs the pure protocol and settings tests, which need
no Redis, PostgreSQL, Node or browser, on each of the others.

nox looks for ``python3.11``, ``python3.12`` and ``python3.13`` on ``PATH`` (docs/development.md
says how to put pyenv's there). ``nox -s fast`` runs every other combination; ``nox -R`` reuses
the venvs of an earlier run.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["fast"]

PYTHONS = ("3.11", "3.12", "3.13")
DJANGOS = ("5.2", "6.0")
#: Django 6.0 needs Python 3.12 or later.
COMBINATIONS = [(p, d) for p in PYTHONS for d in DJANGOS if (p, d) != ("3.11", "6.0")]
FULL = ("3.11", "5.2")
OTHERS = [c for c in COMBINATIONS if c != FULL]

#: Tests of pure code (the codecs, the Engine.IO session, the adapter, the broadcast builder)
#: and of the Django side that needs no service: settings, checks, migrations, routing, auth,
#: the testing helpers.
PURE_TESTS = (
    "tests/engineio",
    "tests/socketio/test_packet.py",
    "tests/socketio/test_packet_properties.py",
    "tests/socketio/test_adapter.py",
    "tests/socketio/test_broadcast_operator.py",
    "tests/socketio/test_handlers.py",
    "tests/socketio/test_eager.py",
    "tests/recovery/test_memory.py",
    "tests/test_conf.py",
    "tests/test_checks.py",
    "tests/test_migrations.py",
    "tests/test_routing.py",
    "tests/test_asgi.py",
    "tests/test_auth.py",
    "tests/test_tasks.py",
    "tests/testing",
)


def install(session: nox.Session, django: str, extras: str) -> None:
    # One pip run, so that the resolver keeps Django in the series asked for.
    session.install(f".[{extras}]", f"django~={django}.0")
    session.run("python", "-m", "django", "--version")


@nox.session(python=FULL[0])
def full(session: nox.Session) -> None:
    """The whole suite (Redis, PostgreSQL, Node and Chromium as tests/run.sh finds them)."""
    install(session, FULL[1], "dev")
    session.run(
        "npm",
        "ci",
        "--prefix",
        "tests",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        external=True,
    )
    session.run("pytest", *session.posargs)


@nox.session
@nox.parametrize(("python", "django"), OTHERS, ids=[f"{p}-django{d}" for p, d in OTHERS])
def fast(session: nox.Session, django: str) -> None:
    """The pure protocol and settings tests on one Python and Django."""
    install(session, django, "daphne,redis,test")
    session.run("pytest", "-q", "-p", "no:cacheprovider", *PURE_TESTS, *session.posargs)
