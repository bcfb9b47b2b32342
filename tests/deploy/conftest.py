"""The deployment recipes of docs/deployment.md, run as written: Debian's nginx with the page's
own configuration in front of two server processes, and gunicorn with uvicorn workers.

The nginx configuration and the gunicorn command are read from the page's fenced blocks, with
only what ties them to this machine replaced: the upstream servers, the listening address, the
TLS lines, the project's module and the number of workers.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from tests.cluster.conftest import Cluster, redis_url, running_cluster
from tests.support.ci import require
from tests.support.driver import Driver, driver, wait_for
from tests.support.servers import ServerProcess, free_port

__all__ = [
    "TRANSPORTS",
    "Cluster",
    "Driver",
    "ServerProcess",
    "driver",
    "redis_url",
    "running_cluster",
    "wait_for",
]

DEPLOYMENT_DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
#: The cluster settings with 2 s heartbeats: a stopping uvicorn answers a waiting long poll
#: with its next ping before its lifespan shutdown runs, so this bounds a clean SIGTERM.
SETTINGS = "tests.deploy.settings_deploy"
#: socket.io-client's ``transports`` for each way of connecting.
TRANSPORTS = {"websocket": "websocket", "polling": "polling", "upgrade": "polling,websocket"}
NGINX_BLOCK = re.compile(r"^```nginx\n(.*?)^```$", re.MULTILINE | re.DOTALL)
UPSTREAM = re.compile(r"^upstream (\w+) \{\n.*?^\}\n", re.MULTILINE | re.DOTALL)
LOG_FORMAT = (
    '{"method":"$request_method","uri":"$uri","args":"$args","status":"$status",'
    '"upstream":"$upstream_addr"}'
)
UPSTREAM_SERVER = re.compile(r"^\s*server\s+[^;{]+;.*\n", re.MULTILINE)


def nginx_binary() -> str:
    """Debian's nginx; the test fails in CI, and skips elsewhere, without it."""
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    require(Path(found).is_file(), "Debian's nginx (apt-get install nginx)")
    return found


def doc_nginx_blocks() -> list[str]:
    blocks = NGINX_BLOCK.findall(DEPLOYMENT_DOC.read_text())
    assert len(blocks) == 2, (
        f"docs/deployment.md: expected the sticky and non-sticky blocks, got {len(blocks)}"
    )
    return blocks


def doc_nginx_config(balance: str, backends: Sequence[int], port: int) -> str:
    """The http-level configuration of docs/deployment.md, its ``upstream socketio`` balancing
    by ``balance``: "hash" (the first block, sticky), "round_robin" (its ``hash`` line
    dropped) or "least_conn" (the upstream of the second block). Every upstream's servers are
    ``backends``; nginx listens on ``port`` over plain HTTP."""
    full, non_sticky = doc_nginx_blocks()
    config = full
    if balance == "round_robin":
        config, dropped = re.subn(r"^\s*hash \$remote_addr consistent;.*\n", "", config, flags=re.M)
        assert dropped == 1, full
    elif balance == "least_conn":
        replacement = UPSTREAM.search(non_sticky + "\n")
        assert replacement, non_sticky
        assert replacement.group(1) == "socketio", non_sticky
        config = UPSTREAM.sub(
            lambda m: replacement.group(0) if m.group(1) == "socketio" else m.group(0), config
        )
    else:
        assert balance == "hash", balance
    servers = "".join(f"    server 127.0.0.1:{backend};\n" for backend in backends)

    def own_servers(upstream: re.Match[str]) -> str:
        body = UPSTREAM_SERVER.sub("", upstream.group(0))
        return body[: body.rindex("}")] + servers + "}\n"

    config = UPSTREAM.sub(own_servers, config)
    config, listens = re.subn(
        r"^(\s*)listen 443 ssl;", rf"\1listen 127.0.0.1:{port};", config, flags=re.M
    )
    assert listens == 1, config
    return re.sub(r"^\s*#?\s*ssl_\w+ .*\n", "", config, flags=re.MULTILINE)


def settled_transport(driver: Driver, name: str, timeout: float = 2.0) -> str:
    """The client's transport once its upgrade has had ``timeout`` s to happen: a refused
    probe leaves the client on polling, a successful one moves it to websocket."""
    with contextlib.suppress(AssertionError):
        wait_for(lambda: driver("state", name=name)["transport"] == "websocket", timeout, "")
    return str(driver("state", name=name)["transport"])


class Nginx:
    """nginx in the foreground with a configuration of the doc, logs and temp files in a
    directory of its own."""

    def __init__(self, balance: str, backends: Sequence[ServerProcess]) -> None:
        self.binary = nginx_binary()
        self.dir = Path(tempfile.mkdtemp(prefix="csio-nginx-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.backends = list(backends)
        http = doc_nginx_config(balance, [b.port for b in backends], self.port)
        temp = "\n".join(
            f"    {kind}_temp_path {self.dir / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(
            f"events {{}}\n"
            f"http {{\n"
            # One JSON object per request, naming the worker that answered it.
            f"    log_format csio escape=json '{LOG_FORMAT}';\n"
            f"    access_log {self.access_log} csio;\n"
            f"{temp}\n"
            f"{http}"
            f"}}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        directives = f"daemon off; pid {self.dir / 'nginx.pid'}; error_log {self.error_log};"
        # What nginx says before it opens its error log (a configuration error) goes here.
        with (self.dir / "stderr.log").open("wb") as stderr:
            self.proc = subprocess.Popen(
                [self.binary, "-p", str(self.dir), "-c", str(self.conf), "-g", directives],
                stdout=stderr,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (
                f"nginx exited:\n{self.errors()}\n{self.conf.read_text()}"
            )
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(self.url + "/", timeout=1)
                return
            time.sleep(0.05)
        raise AssertionError(f"nginx did not start:\n{self.errors()}")

    @property
    def access_log(self) -> Path:
        return self.dir / "access.log"

    def requests(self) -> list[dict[str, str]]:
        """The requests nginx has logged (a WebSocket once it has closed)."""
        text = self.access_log.read_text()
        return [json.loads(line) for line in text.splitlines()]

    @property
    def error_log(self) -> Path:
        return self.dir / "error.log"

    def errors(self) -> str:
        text = ""
        for log in (self.dir / "stderr.log", self.error_log):
            with contextlib.suppress(OSError):
                text += log.read_text(errors="replace")[-4000:]
        return text

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def nginx(balance: str, backends: Sequence[ServerProcess]) -> Iterator[Nginx]:
    """nginx with the doc's configuration balancing ``backends`` by ``balance``, stopped
    afterwards."""
    proxy = Nginx(balance, backends)
    try:
        proxy.start()
        yield proxy
    finally:
        proxy.stop()


def require_gunicorn() -> None:
    for module, package in (("gunicorn", "gunicorn"), ("uvicorn_worker", "uvicorn-worker")):
        require(importlib.util.find_spec(module) is not None, f"{package} (the dev extra)")


def doc_gunicorn_command() -> list[str]:
    """The gunicorn command of docs/deployment.md, as arguments."""
    lines = [
        line
        for block in re.findall(r"^```sh\n(.*?)^```$", DEPLOYMENT_DOC.read_text(), re.M | re.S)
        for line in block.splitlines()
        if line.startswith("gunicorn ")
    ]
    assert len(lines) == 1, f"docs/deployment.md: expected one gunicorn command, got {lines}"
    return shlex.split(lines[0])


class Gunicorn(ServerProcess):
    """The doc's gunicorn command serving the example project with two workers."""

    def __init__(self, settings: str, env: dict[str, str], workers: int = 2) -> None:
        require_gunicorn()
        super().__init__("gunicorn", settings, env)
        self.workers = workers

    def command(self) -> list[str]:
        args = doc_gunicorn_command()
        assert args[0] == "gunicorn", args
        args[args.index("myproject.asgi:application")] = self.app
        values = {"--workers": str(self.workers), "--bind": f"127.0.0.1:{self.port}"}
        for i, arg in enumerate(args[:-1]):
            if arg in values:
                args[i + 1] = values.pop(arg)
        assert not values, f"the doc's gunicorn command has no {list(values)}"
        # gunicorn 25.1+ opens a control socket, by default one per user
        # (~/.gunicorn/gunicorn.ctl): one of this server's own, so runs side by side keep
        # theirs.
        control = ["--control-socket", str(self.log_path.with_suffix(".ctl"))]
        return [sys.executable, "-m", *args, *control]

    def node_ids(self, timeout: float = 15.0) -> set[str]:
        """The ids of the workers' nodes, once each knows the other ones: asked of whichever
        worker the kernel hands each new connection to."""
        seen: dict[str, list[str]] = {}

        def settled() -> bool:
            node = httpx.get(self.url + "/_cluster/node/", timeout=5).json()
            seen[node["id"]] = node["peers"]
            return len(seen) == self.workers and all(
                sorted(peers) == sorted(set(seen) - {node_id}) for node_id, peers in seen.items()
            )

        wait_for(settled, timeout, f"{self.workers} gunicorn workers that know each other")
        return set(seen)
