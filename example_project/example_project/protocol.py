"""Servers of the protocol reference configuration (settings_protocol)."""

from functools import cache

from channels_sio.conf import engineio_config
from channels_sio.engineio import EngineIOServer, Session


@cache
def engineio_echo() -> EngineIOServer:
    """Engine.IO server that sends every message back as it came, text or binary."""
    server = EngineIOServer(engineio_config())

    @server.on_message
    async def echo(session: Session, data: str | bytes) -> None:
        await session.send(data)

    return server
