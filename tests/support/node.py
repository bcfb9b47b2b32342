"""Running the Node scripts in tests/node against a live server."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .ci import require

TESTS_DIR = Path(__file__).resolve().parents[1]
NODE_DIR = TESTS_DIR / "node"


def require_node() -> None:
    require(shutil.which("node") is not None, "Node.js")
    require(
        (TESTS_DIR / "node_modules" / "engine.io-client").is_dir(),
        "npm packages in tests/node_modules (run npm ci in tests/)",
    )


def run_node(script: str, *args: str, timeout: float = 60.0) -> Any:
    """Run ``tests/node/<script>``; return the JSON object of its last stdout line."""
    require_node()
    proc = subprocess.run(
        ["node", str(NODE_DIR / script), *args],
        cwd=TESTS_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        raise AssertionError(
            f"node {script} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return json.loads(lines[-1])
