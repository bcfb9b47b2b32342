"""The Python examples of README.md and docs/quickstart.md, run as a reader would run them.

Every ``python`` block compiles; blocks of settings alone execute. The blocks that a line such as
"`chat/sockets.py`:" introduces are files: written (or, after "Add to", appended) into a fresh
``django-admin startproject mysite`` with a ``chat`` app, they must pass ``manage.py check`` and
serve the official socket.io-client under uvicorn; blocks that call ``channels_sio`` run in
``manage.py shell``.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from textwrap import indent
from typing import Any

import httpx
import pytest

from tests.support.driver import Driver, driver
from tests.support.servers import free_port

__all__ = ["driver"]

pytestmark = pytest.mark.node

REPO = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/quickstart.md")
FILE = re.compile(r"`([\w/]+\.py)`")
USER = "erin"


@dataclass
class Block:
    doc: str
    line: int
    lead: str  # the last non-empty line before the block
    code: str

    @property
    def target(self) -> str | None:
        """The file this block is, when the line before it names one and ends with ":"."""
        found = FILE.search(self.lead)
        return found.group(1) if found and self.lead.endswith(":") else None

    @property
    def appends(self) -> bool:
        return "Add to" in self.lead or "added to" in self.lead


def python_blocks(doc: str) -> list[Block]:
    lines = (REPO / doc).read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            lead = next((line for line in reversed(lines[:i]) if line.strip()), "")
            end = lines.index("```", i + 1)
            blocks.append(Block(doc, i + 1, lead.strip(), "\n".join(lines[i + 1 : end]) + "\n"))
            i = end
        i += 1
    return blocks


@pytest.mark.parametrize("doc", DOCS)
def test_every_python_block_compiles(doc: str) -> None:
    blocks = python_blocks(doc)
    assert blocks, f"no python blocks in {doc}"
    for block in blocks:
        compile(block.code, f"{doc}:{block.line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        tree = ast.parse(block.code)
        if block.target is None and all(isinstance(n, ast.Assign) for n in tree.body):
            exec(block.code, {})  # settings such as CHANNEL_LAYERS = {...}


class Project:
    """A fresh ``startproject mysite`` with a ``chat`` app, in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
        self.env["PYTHONPATH"] = str(root)
        root.mkdir()
        self.run("-m", "django", "startproject", "mysite", str(root), cwd=root.parent)
        self.manage("startapp", "chat")

    def run(self, *args: str, cwd: Path | None = None) -> str:
        proc = subprocess.run(
            [sys.executable, *args],
            cwd=cwd or self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, f"{args}:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def manage(self, *args: str) -> str:
        return self.run("manage.py", *args)

    def write(self, block: Block) -> None:
        assert block.target is not None
        path = self.root / block.target
        text = path.read_text() + "\n" if block.appends else ""
        path.write_text(text + block.code)

    @contextlib.contextmanager
    def serving(self) -> Iterator[str]:
        port = free_port()
        log = (self.root / "uvicorn.log").open("wb")
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "mysite.asgi:application"),
                *("--port", str(port), "--lifespan", "on", "--log-level", "warning"),
            ],
            cwd=self.root,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                assert proc.poll() is None, (self.root / "uvicorn.log").read_text()
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + "/admin/login/", timeout=1).status_code == 200:
                        break
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(10)
            log.close()


def build(doc: str, root: Path) -> tuple[Project, list[Block]]:
    """The project of ``doc``'s file blocks, checked and migrated; its other blocks."""
    project = Project(root)
    others = []
    for block in python_blocks(doc):
        if block.target is not None:
            project.write(block)
        else:
            others.append(block)
    project.manage("check", "--fail-level", "WARNING")
    if (root / "chat" / "models.py").read_text().count("models.Model"):
        project.manage("makemigrations", "chat")
    project.manage("migrate")
    for block in others:
        if block.code.startswith("import channels_sio\n"):
            project.manage("shell", "-c", block.code)
    return project, others


def session_key(project: Project) -> str:
    script = (
        "from django.contrib.auth.models import User\n"
        "from django.test import Client\n"
        "browser = Client()\n"
        f"browser.force_login(User.objects.create_user({USER!r}))\n"
        "print(browser.cookies['sessionid'].value)\n"
    )
    return project.manage("shell", "-c", script).split()[-1]


async def run_python_client(block: Block, url: str, key: str) -> Any:
    """Run ``block`` (python-socketio's client connecting with a token) against ``url``; the
    acknowledgement of joining "lobby"."""
    code = block.code.replace("https://chat.example.com", url)
    namespace: dict[str, Any] = {"session_key": key}
    exec(f"async def main():\n{indent(code, '    ')}    return client\n", namespace)
    client = await namespace["main"]()
    try:
        return await client.call("join", "lobby", timeout=5)
    finally:
        await client.disconnect()
        await client.eio.disconnect()  # no-op when already closed; frees the aiohttp session


def test_the_readme_chat(tmp_path: Path, driver: Driver) -> None:
    project, _ = build("README.md", tmp_path / "readme")
    cookie = {"Cookie": f"sessionid={session_key(project)}"}
    with project.serving() as url:
        refused = driver("tryOpen", name="anonymous", url=url, nsp="/")
        assert refused["connectError"]["message"] == "login required"
        driver("open", name="a", url=url, nsp="/", transports="polling,websocket", headers=cookie)
        driver("open", name="b", url=url, nsp="/", headers=cookie)
        assert driver("call", name="a", event="join", args=["lobby"]) == "ok"
        assert driver("call", name="b", event="join", args=["lobby"]) == "ok"
        assert driver("wait", name="a", event="joined") == [["joined", USER]]
        driver("callLater", name="b", event="message", args=["lobby", "hello"])
        for name in ("a", "b"):
            message = driver("wait", name=name, event="message")
            assert message == [["message", {"user": USER, "text": "hello"}]]


def test_the_quickstart_chat(tmp_path: Path, driver: Driver) -> None:
    project, others = build("docs/quickstart.md", tmp_path / "quickstart")
    (python_client,) = [block for block in others if "socketio.AsyncClient" in block.code]
    key = session_key(project)
    with project.serving() as url:
        refused = driver("tryOpen", name="forged", url=url, nsp="/", auth={"token": "x" * 32})
        assert refused["connectError"]["message"] == "login required"
        # A Node client with a token, and one with the browser's cookie.
        driver("open", name="token", url=url, nsp="/", auth={"token": key})
        driver("open", name="cookie", url=url, nsp="/", headers={"Cookie": f"sessionid={key}"})
        assert driver("call", name="token", event="join", args=["lobby"]) == "ok"
        assert driver("call", name="cookie", event="join", args=["lobby"]) == "ok"
        assert driver("wait", name="token", event="joined") == [["joined", USER]]
        pk = driver("call", name="cookie", event="message", args=["lobby", "hello"])
        assert isinstance(pk, int)
        assert driver("wait", name="token", event="message") == [
            ["message", {"user": USER, "text": "hello"}]
        ]
        history = driver("call", name="token", event="history", args=["lobby"])
        assert history == [{"text": "hello"}]
        # python-socketio's client, as the quickstart shows it.
        assert asyncio.run(run_python_client(python_client, url, key)) == "ok"
        assert driver("wait", name="token", event="joined", count=2)[1] == ["joined", USER]
