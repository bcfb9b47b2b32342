"""The public API's types as a user's mypy sees them (``typed_api.py``), with this project's
mypy configuration (strict, django-stubs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_mypy(*paths: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'example_project'}"}
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", *map(str, paths)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )


def test_public_api_keeps_types() -> None:
    result = run_mypy(Path(__file__).with_name("typed_api.py"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_decorator_returning_any_fails_the_check(tmp_path: Path) -> None:
    # The check itself: what assert_type reports when a decorator hands back Any.
    sample = tmp_path / "erased.py"
    sample.write_text(
        "from typing import Any, assert_type\n"
        "from collections.abc import Callable\n"
        "def on(event: str) -> Any: ...\n"
        "@on('chat')\n"
        "def chat(text: str) -> str: return text\n"
        "assert_type(chat, Callable[[str], str])\n"
    )
    result = run_mypy(sample)
    assert result.returncode == 1
    assert 'Expression is of type "Any"' in result.stdout, result.stdout
