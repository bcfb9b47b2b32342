"""channels_sio: Socket.IO (Engine.IO v4 / Socket.IO v5) servers on Django Channels."""

__version__ = "0.1.0"
