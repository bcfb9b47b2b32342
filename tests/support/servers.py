"""The example project running under a real ASGI server (uvicorn or daphne) in a subprocess."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "example_project"
SERVER_KINDS = ("uvicorn", "daphne")
#: A log line that reports an error. channels_sio's own lines say "transport error" in lower
#: case: a close reason, not an error of the server.
ERROR_LINE = re.compile(r"Traceback|ERROR|CRITICAL|Exception|\b[A-Z]\w*Error\b")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One server process; ``url`` is its base URL once started."""

    def __init__(
        self,
        kind: str,
        settings: str,
        env: dict[str, str] | None = None,
        *,
        ready_path: str = "/_protocol/state/",
        app: str = "example_project.asgi:application",
    ) -> None:
        self.kind = kind
        # The ASGI application, for uvicorn and daphne (runserver reads ASGI_APPLICATION).
        self.app = app
        # Polled until it answers 200: the protocol state view, or "/" for the plain project.
        self.ready_path = ready_path
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"csio-{kind}-{self.port}.log"

    def command(self) -> list[str]:
        app = self.app
        if self.kind == "runserver":
            # What example_project/run.sh runs: daphne's runserver, serving static files too.
            address = f"127.0.0.1:{self.port}"
            return [sys.executable, "manage.py", "runserver", "--noreload", address]
        if self.kind == "uvicorn":
            return [
                sys.executable,
                "-m",
                "uvicorn",
                app,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--lifespan",
                "on",
                "--log-level",
                "warning",
            ]
        return [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-v",
            "1",
            app,
        ]

    def start(self, timeout: float = 20.0) -> None:
        # REDIS_URL turns the example project into a Redis-backed cluster: only the tests that
        # ask for one (through ``env``) get it.
        inherited = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env = {**inherited, "DJANGO_SETTINGS_MODULE": self.settings, **self.extra_env}
        # Never the demo's database (example_project/db.sqlite3, which run.sh migrates): a
        # file of this process's own, empty unless the test migrated one and said so.
        env.setdefault("EXAMPLE_DB", str(self.log_path.with_suffix(".sqlite3")))
        # The repository root too, so test-only handler modules (tests.*) can be loaded.
        env["PYTHONPATH"] = os.pathsep.join(
            [str(EXAMPLE_DIR), str(EXAMPLE_DIR.parent), env.get("PYTHONPATH", "")]
        )
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command(), cwd=EXAMPLE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + self.ready_path, timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.kind} did not start within {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def log_offset(self) -> int:
        """Where the log ends now: ``log_since`` and ``errors_logged`` read from there."""
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        """What was logged since ``offset`` (a ``log_offset``)."""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def errors_logged(self, offset: int) -> list[str]:
        """The lines logged since ``offset`` that report an error: a traceback, an ERROR
        level (uvicorn's and daphne's prefix) or an exception's name."""
        return [line for line in self.log_since(offset).splitlines() if ERROR_LINE.search(line)]

    def state(self) -> dict[str, object]:
        response = httpx.get(self.url + "/_protocol/state/", timeout=5)
        response.raise_for_status()
        return dict(response.json())

    def wait_idle(self, timeout: float = 5.0) -> dict[str, object]:
        """Wait until no session, socket or channels_sio task is left; return the last state."""
        deadline = time.monotonic() + timeout
        state = self.state()
        while time.monotonic() < deadline:
            if not state["sessions"] and not state["tasks"] and not socketio_leftovers(state):
                return state
            time.sleep(0.05)
            state = self.state()
        return state

    def close_reason(self, sid: str, timeout: float = 5.0) -> str | None:
        """The reason the server gave when it closed ``sid`` (waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            closed = self.state()["closed"]
            assert isinstance(closed, dict)
            if sid in closed:
                return str(closed[sid])
            time.sleep(0.05)
        return None


def socketio_leftovers(state: dict[str, object]) -> dict[str, object]:
    """What the project's Socket.IO server still holds in a ``/_protocol/state/`` answer:
    Engine.IO sessions, clients, and connected sockets per namespace (empty when idle)."""
    sio = state.get("socketio")
    if not isinstance(sio, dict):
        return {}
    return {key: value for key, value in sio.items() if value}


def server_fixture(settings: str, doc: str, env: dict[str, str] | None = None) -> Any:
    """A fixture parametrized by ASGI server kind, serving ``settings`` (and ``env``).

    Each server is started on first use and kept for the session in ``_servers`` (a session
    fixture of tests/conftest.py, which stops them at the end); one that died is started
    again. After each test it must be left with no session, socket or channels_sio task.
    """

    def server(
        request: pytest.FixtureRequest, _servers: dict[tuple[str, str], ServerProcess]
    ) -> Iterator[ServerProcess]:
        kind = request.param
        process = _servers.get((settings, kind))
        if process is None or process.proc is None or process.proc.poll() is not None:
            process = ServerProcess(kind, settings, env)
            process.start()
            _servers[settings, kind] = process
        yield process
        state = process.wait_idle()
        assert not state["sessions"], f"sessions left open on {kind}: {state['sessions']}"
        assert not state["tasks"], f"channels_sio tasks left on {kind}: {state['tasks']}"
        leftovers = socketio_leftovers(state)
        assert not leftovers, f"Socket.IO sessions or sockets left on {kind}: {leftovers}"

    server.__doc__ = doc
    return pytest.fixture(params=SERVER_KINDS)(server)


def manage(
    settings: str, env: dict[str, str], *args: str, expect: int | None = 0
) -> subprocess.CompletedProcess[str]:
    """``manage.py`` of the example project with ``settings`` and ``env`` (and without the
    test run's REDIS_URL, as the servers run); its status is ``expect`` unless that is None."""
    full = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    full.update(env, DJANGO_SETTINGS_MODULE=settings)
    # The repository root too, so test-only settings and handler modules (tests.*) load.
    full["PYTHONPATH"] = os.pathsep.join(
        [str(EXAMPLE_DIR), str(EXAMPLE_DIR.parent), full.get("PYTHONPATH", "")]
    )
    proc = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=EXAMPLE_DIR,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if expect is not None:
        assert proc.returncode == expect, f"manage.py {args}:\n{proc.stdout}\n{proc.stderr}"
    return proc
