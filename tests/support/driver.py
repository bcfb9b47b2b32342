"""tests/node/cluster_driver.js driven from pytest: official socket.io-client instances that
outlive one call (the cluster and recovery suites)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.node import NODE_DIR, TESTS_DIR, require_node

__all__ = ["Driver", "driver", "wait_for"]


def wait_for(probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Call ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what} (last: {value!r})")
        time.sleep(interval)


class Driver:
    """tests/node/cluster_driver.js: official socket.io-client instances driven by commands."""

    def __init__(self, deadline: float = 120.0) -> None:
        require_node()
        name = f"csio-driver-{os.getpid()}-{secrets.token_hex(3)}.log"
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / name
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                ["node", str(NODE_DIR / "cluster_driver.js"), str(int(deadline * 1000))],
                cwd=TESTS_DIR,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                bufsize=1,
            )
        self._answers: queue.Queue[str | None] = queue.Queue()
        self._next_id = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._answers.put(line)
        self._answers.put(None)

    def __call__(self, cmd: str, **fields: Any) -> Any:
        """Run one command; its result, or AssertionError with the driver's error. ``ms``
        bounds the command's own waits (5000 by default); this side waits 2 s more."""
        assert self.proc.stdin is not None
        timeout = fields.get("ms", 5000) / 1000 + 2.0
        self._next_id += 1
        command_id = self._next_id
        self.proc.stdin.write(json.dumps({"id": command_id, "cmd": cmd, **fields}) + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"driver: no answer to {cmd} {fields} within {timeout}s")
            try:
                line = self._answers.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"driver exited:\n{self.log_path.read_text()[-3000:]}")
            answer = json.loads(line)
            if answer.get("id") != command_id:
                continue  # the late answer of a command that timed out here
            if not answer["ok"]:
                raise AssertionError(f"driver: {cmd} {fields}: {answer['error']}")
            return answer["result"]

    def close(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()  # the driver closes its clients and exits
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def driver() -> Iterator[Driver]:
    """A driver of official clients, closed (with its clients) after the test."""
    client = Driver()
    try:
        yield client
    finally:
        client.close()
