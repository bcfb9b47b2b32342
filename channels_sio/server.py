"""The project's Socket.IO server, configured from ``CHANNELS_SIO`` when first used."""

from __future__ import annotations

from channels.db import database_sync_to_async

from .conf import server_config
from .signals import SocketSignals
from .socketio import SocketIOServer

__all__ = ["sio"]

#: The default server. Register handlers on it in a ``sockets.py`` module of an installed app
#: (found at startup) or in a module listed in ``CHANNELS_SIO["handlers"]``. Plain ``def``
#: handlers run through Channels' ``database_sync_to_async``, so they may use the ORM. Its
#: sockets send the ``socket_connected`` / ``socket_disconnected`` signals.
sio = SocketIOServer(server_config, sync_runner=database_sync_to_async, hooks=SocketSignals())
