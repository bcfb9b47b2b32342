"""Running the Socket.IO scenario scripts (tests/node/sio_*.js) against a server."""

from __future__ import annotations

import json
from typing import Any

from tests.support.node import run_node
from tests.support.servers import ServerProcess

#: Transport choices of the official client: websocket only, polling only, polling+upgrade.
TRANSPORTS = ["websocket", "polling", "polling,websocket"]


def scenario(
    script: str, server: ServerProcess, name: str, args: Any = None, transports: str = "websocket"
) -> Any:
    """Run one scenario of ``tests/node/<script>``; its JSON result (errors fail the test)."""
    argv = [server.url, transports, name]
    if args is not None:
        argv.append(json.dumps(args))
    result = run_node(script, *argv, timeout=30)
    assert not (isinstance(result, dict) and "error" in result), result
    return result


def b(data: bytes) -> dict[str, str]:
    """How the scripts write bytes in JSON: ``{"$bin": "<hex>"}``."""
    return {"$bin": data.hex()}
