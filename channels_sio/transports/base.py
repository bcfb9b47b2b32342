"""What the consumers share: how they find their Engine.IO server."""

from __future__ import annotations

from collections.abc import Callable

from ..engineio import EngineIOServer

__all__ = ["EngineSource", "resolve_engine"]

#: A server, or a zero-argument callable returning one (so settings are read lazily, per
#: connection, rather than when the routing module is imported).
EngineSource = EngineIOServer | Callable[[], EngineIOServer]


def resolve_engine(source: EngineSource) -> EngineIOServer:
    return source if isinstance(source, EngineIOServer) else source()
