"""The example project under daphne's runserver, as example_project/run.sh starts it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ci import require
from tests.support.servers import EXAMPLE_DIR, ServerProcess

SETTINGS = "example_project.settings"
#: Chat users created in the server's database: username -> password.
USERS = {"alice": "alice-password", "bob": "bob-password"}


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=EXAMPLE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )


def require_node_modules() -> None:
    """socket.io-client in example_project/node_modules, installed with npm ci if missing."""
    dist = EXAMPLE_DIR / "node_modules" / "socket.io-client" / "dist"
    if not dist.is_dir() and shutil.which("npm"):
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=EXAMPLE_DIR,
            check=False,
            timeout=300,
        )
    require(dist.is_dir(), "socket.io-client in example_project/node_modules (npm ci)")


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The example project with its default settings, a fresh SQLite database and two users."""
    require_node_modules()
    database = tmp_path_factory.mktemp("example") / "db.sqlite3"
    env = {"EXAMPLE_DB": str(database), "DJANGO_DEBUG": "1"}  # DEBUG: runserver serves static
    manage("migrate", "--noinput", env=env)
    script = "from django.contrib.auth.models import User\n" + "".join(
        f"User.objects.create_user({name!r}, password={password!r})\n"
        for name, password in USERS.items()
    )
    manage("shell", "-c", script, env=env)
    server = ServerProcess("runserver", SETTINGS, env, ready_path="/")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    require(Path(found).is_file(), "Debian's chromium (apt-get install chromium)")
    return Path(found)
