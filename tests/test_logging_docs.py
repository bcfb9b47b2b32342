"""docs/logging.md names every logger of the package, and its example LOGGING works."""

from __future__ import annotations

import ast
import logging
import logging.config
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "docs" / "logging.md").read_text()


def package_loggers() -> set[str]:
    """The names given to ``logging.getLogger`` anywhere in channels_sio."""
    names: set[str] = set()
    for path in (ROOT / "channels_sio").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "getLogger"
            ):
                [argument] = node.args
                assert isinstance(argument, ast.Constant), f"{path}: a logger named at run time"
                names.add(argument.value)
    return names


def test_the_page_names_every_logger_and_no_other() -> None:
    documented = set(re.findall(r"^\| `(channels_sio[\w.]*)` \|", PAGE, re.MULTILINE))
    assert package_loggers() == documented
    assert "channels_sio.engineio" in documented


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """The channels_sio loggers as they were before the test configured them."""
    names = ["channels_sio", *sorted(package_loggers())]
    saved = {
        name: (list(lg.handlers), lg.level, lg.propagate, lg.disabled)
        for name in names
        for lg in [logging.getLogger(name)]
    }
    yield
    for name, (handlers, level, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled


@pytest.mark.usefixtures("restored_logging")
def test_the_example_logging_dict_routes_alarms_to_their_file(tmp_path: Path) -> None:
    [example] = re.findall(r"```python\n(LOGGING = .*?)```", PAGE, re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(example, namespace)
    config = namespace["LOGGING"]
    alarms = tmp_path / "alarms.log"
    config["handlers"]["alarms"]["filename"] = str(alarms)
    logging.config.dictConfig(config)

    logging.getLogger("channels_sio.engineio").info("session x: malformed payload")
    logging.getLogger("channels_sio.monitoring").warning("leak alarm raised: zombie")
    for handler in logging.getLogger("channels_sio.monitoring").handlers:
        handler.flush()
    lines = alarms.read_text().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith("WARNING channels_sio.monitoring: leak alarm raised: zombie")
