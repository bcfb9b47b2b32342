"""The example project under uvicorn, started and stopped for bench/load.py, bench/upgrades.py
and bench/live_sessions.py. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pythonpath(root: Path = ROOT) -> str:
    """The PYTHONPATH that imports channels_sio and the example project of ``root``."""
    return os.pathsep.join([str(root / "example_project"), str(root)])


class Uvicorn:
    """``uvicorn example_project.asgi:application`` of ``root`` on a free port, with the
    environment ``env`` (the whole of it) and the further uvicorn flags ``args``. Its output
    goes to ``uvicorn-<port>.log`` in ``log_dir``, or to this process's without one. It runs
    in a session of its own, so that ``stop`` reaches every worker."""

    def __init__(
        self,
        env: Mapping[str, str],
        args: Sequence[str] = (),
        *,
        root: Path = ROOT,
        log_dir: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"uvicorn-{self.port}.log" if log_dir else None
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "example_project.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            "--log-level",
            "warning",
            *args,
        ]
        with contextlib.ExitStack() as stack:
            log = stack.enter_context(self.log_path.open("wb")) if self.log_path else None
            self.proc = subprocess.Popen(
                command,
                cwd=root / "example_project",
                env=dict(env),
                stdout=log,
                stderr=subprocess.STDOUT if log else None,
                start_new_session=True,
            )

    def wait_until(self, ready: Callable[[], bool], timeout: float = 30.0) -> None:
        """Return once ``ready()`` holds (an HTTP error counts as not yet), asked every 0.2 s;
        RuntimeError if uvicorn exits first or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited at start{self._log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if ready():
                    return
            time.sleep(0.2)
        raise RuntimeError(f"uvicorn did not start within {timeout} s{self._log_tail()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def _log_tail(self) -> str:
        return f":\n{self.log()[-3000:]}" if self.log_path else ""

    def stop(self) -> None:
        # The whole group even when uvicorn has exited: its workers may not have.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
