"""CI's check of what users install: the sdist and the wheel, installed into a clean venv.

Builds the sdist and, from it, the wheel (``python -m build``); checks that the wheel carries
every file of the package tracked by git (migrations, templates, static files, py.typed) and the
LICENSE, and the sdist what the tests need (package, tests, example project, bench) with the
LICENSE, README, CHANGELOG and docs; installs the wheel with the ``uvicorn`` extra into a new
venv and checks that the other extras' packages are absent; then, in a throwaway project that
imports channels_sio from that venv only: ``manage.py check``, ``migrate``, check
``channels_sio.E024`` for settings that need the ``redis`` extra, and one Socket.IO round trip
under uvicorn with python-socketio's client.

Usage: ``.venv/bin/python .ci/wheel_check.py`` (tests/run.sh runs it). Exits non-zero, saying
what differs, on any mismatch.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

import socketio

ROOT = Path(__file__).resolve().parents[1]
VERSION = re.search(
    r'^__version__ = "([^"]+)"$', (ROOT / "channels_sio" / "__init__.py").read_text(), re.M
)

SETTINGS = """\
SECRET_KEY = "wheel-check"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "channels_sio",
    "echo",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
STATIC_URL = "static/"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
"""

# Settings that need the redis extra, which the venv lacks: two E024 errors.
SETTINGS_REDIS = """\
from project.settings import *

CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}
CHANNELS_SIO = {"connection_state_recovery": {"store": "redis"}}
"""

URLS = """\
from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
"""

ASGI = """\
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_app = get_asgi_application()

from channels_sio.asgi import get_application  # noqa: E402

application = get_application(django_asgi_app)
"""

# The ack carries the path of the channels_sio that ran the handler: the venv's, not ours.
SOCKETS = """\
import channels_sio
from channels_sio import Socket, sio


@sio.on("echo")
async def echo(socket: Socket, data: object) -> dict[str, object]:
    return {"data": data, "package": channels_sio.__file__}
"""


class CheckFailed(Exception):
    """What differs from what users must get."""


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise CheckFailed(
            f"{' '.join(map(str, args))} exited with {done.returncode}:\n"
            f"{done.stdout[-4000:]}{done.stderr[-4000:]}"
        )
    return done.stdout


def tracked(*paths: str) -> set[str]:
    return set(run("git", "-C", ROOT, "ls-files", "--", *paths).split())


def missing(expected: set[str], present: set[str], where: str) -> None:
    lacking = sorted(expected - present)
    if lacking:
        raise CheckFailed(f"{where} lacks {len(lacking)} file(s): {', '.join(lacking[:20])}")


def build(out: Path) -> tuple[Path, Path]:
    run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    version = VERSION.group(1) if VERSION else "?"
    sdists = list(out.glob(f"channels_sio-{version}.tar.gz"))
    wheels = list(out.glob(f"channels_sio-{version}-py3-none-any.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        built = sorted(p.name for p in out.iterdir())
        raise CheckFailed(f"expected one sdist and one wheel of version {version}, got {built}")
    return sdists[0], wheels[0]


def check_wheel(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = wheel.name.split("-py3")[0]
        metadata = archive.read(f"{dist_info}.dist-info/METADATA").decode()
    missing(tracked("channels_sio"), names, "the wheel")
    missing({f"{dist_info}.dist-info/licenses/LICENSE"}, names, "the wheel")
    for kind, pattern in (
        ("migration", r"channels_sio/migrations/\d{4}_\w+\.py"),
        ("template", r"channels_sio/templates/.+\.html"),
        ("static file", r"channels_sio/static/.+\.(css|js)"),
    ):
        if not any(re.fullmatch(pattern, name) for name in names):
            raise CheckFailed(f"the wheel carries no {kind}")
    stray = sorted(n for n in names if not n.startswith(("channels_sio/", f"{dist_info}.")))
    if stray:
        raise CheckFailed(f"the wheel carries files outside the package: {stray[:20]}")
    for line in ("License-Expression: MIT", "Requires-Dist: asgiref"):
        if line not in metadata:
            raise CheckFailed(f"the wheel's METADATA lacks {line!r}")
    for extra_only in ("daphne", "uvicorn", "channels-redis", "redis"):
        if re.search(rf"^Requires-Dist: {extra_only}\b[^;]*$", metadata, re.M | re.I):
            raise CheckFailed(f"{extra_only} is a dependency of the wheel, not an extra")


def check_sdist(sdist: Path) -> None:
    top = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as archive:
        names = {n.removeprefix(f"{top}/") for n in archive.getnames()}
    expected = tracked("channels_sio", "docs", "tests", "example_project", "bench")
    expected |= {"LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "noxfile.py"}
    missing(expected, names, "the sdist")
    if any("node_modules/" in n for n in names):
        raise CheckFailed("the sdist carries node_modules")


def install(wheel: Path, venv: Path) -> Path:
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        f"{wheel}[uvicorn]",
    )
    # Only the uvicorn extra was asked for: the other extras' packages must not come along.
    found = run(
        python,
        "-c",
        "import importlib.util as u\n"
        "for m in ('daphne', 'twisted', 'channels_redis', 'redis'):\n"
        "    print(m) if u.find_spec(m) else None",
    ).split()
    if found:
        raise CheckFailed(f"installing the wheel with [uvicorn] brought {found} along")
    return python


def make_project(where: Path) -> None:
    files = {
        "project/__init__.py": "",
        "project/settings.py": SETTINGS,
        "project/settings_redis.py": SETTINGS_REDIS,
        "project/urls.py": URLS,
        "project/asgi.py": ASGI,
        "echo/__init__.py": "",
        "echo/sockets.py": SOCKETS,
    }
    for name, text in files.items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_text(textwrap.dedent(text))


def clean_env(settings: str) -> dict[str, str]:
    """The environment of the venv's processes: nothing of the source tree on sys.path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["DJANGO_SETTINGS_MODULE"] = settings
    return env


def check_project(python: Path, project: Path, venv: Path) -> None:
    env = clean_env("project.settings")
    where = run(
        python, "-c", "import channels_sio; print(channels_sio.__file__)", cwd=project, env=env
    )
    if not Path(where.strip()).is_relative_to(venv):
        raise CheckFailed(f"channels_sio was imported from {where.strip()}, not from the venv")
    out = run(python, "-m", "django", "check", "--fail-level", "WARNING", cwd=project, env=env)
    if "no issues" not in out:
        raise CheckFailed(f"manage.py check: {out}")
    run(python, "-m", "django", "migrate", "--noinput", cwd=project, env=env)
    run(python, "-m", "django", "makemigrations", "--check", "--dry-run", cwd=project, env=env)
    done = subprocess.run(
        [python, "-m", "django", "check"],
        cwd=project,
        env=clean_env("project.settings_redis"),
        capture_output=True,
        text=True,
        check=False,
    )
    text = done.stdout + done.stderr
    if done.returncode == 0 or text.count("channels_sio.E024") != 2:
        raise CheckFailed(f"settings that need the redis extra: expected two E024, got:\n{text}")
    if 'pip install "channels-sio[redis]"' not in text:
        raise CheckFailed(f"E024 does not name the extra:\n{text}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def round_trip(url: str, venv: Path) -> None:
    client = socketio.AsyncClient()
    await client.connect(url, wait_timeout=10)
    try:
        ack = await client.call("echo", {"hello": ["wheel", 1]}, timeout=10)
    finally:
        await client.disconnect()
    if not isinstance(ack, dict) or ack.get("data") != {"hello": ["wheel", 1]}:
        raise CheckFailed(f"the echo's acknowledgement was {ack!r}")
    if not Path(str(ack.get("package"))).is_relative_to(venv):
        raise CheckFailed(f"the server ran channels_sio from {ack.get('package')}")


def serve_and_call(venv: Path, project: Path) -> None:
    port = free_port()
    log = project / "uvicorn.log"
    command = [
        venv / "bin" / "uvicorn",
        "project.asgi:application",
        "--port",
        str(port),
        "--lifespan",
        "on",
        "--log-level",
        "warning",
    ]
    with log.open("wb") as out:
        server = subprocess.Popen(
            command, cwd=project, env=clean_env("project.settings"), stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            if server.poll() is not None:
                raise CheckFailed(f"uvicorn exited at start:\n{log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise CheckFailed(
                        f"uvicorn did not listen within 20 s:\n{log.read_text()}"
                    ) from None
                time.sleep(0.1)
        asyncio.run(round_trip(f"http://127.0.0.1:{port}", venv))
    finally:
        server.send_signal(signal.SIGINT)
        try:
            code = server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            raise CheckFailed("uvicorn did not stop within 15 s of SIGINT") from None
    if code != 0:
        raise CheckFailed(f"uvicorn exited with {code}:\n{log.read_text()}")


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="csio-wheel-") as tmp:
        base = Path(tmp)
        steps = []
        try:
            sdist, wheel = build(base / "dist")
            check_wheel(wheel)
            check_sdist(sdist)
            steps.append(f"built and checked {sdist.name} and {wheel.name}")
            venv = base / "venv"
            python = install(wheel, venv)
            steps.append("installed the wheel with [uvicorn] into a clean venv")
            project = base / "project"
            make_project(project)
            check_project(python, project, venv)
            steps.append("manage.py check, migrate, makemigrations --check and E024 passed")
            serve_and_call(venv, project)
            steps.append("a Socket.IO round trip under uvicorn ran the installed package")
        except CheckFailed as exc:
            print(f"wheel check FAILED: {exc}", file=sys.stderr)
            return 1
    for step in steps:
        print(f"wheel check: {step}")
    print(f"wheel check: passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
