"""Channels consumers that move bytes between ASGI and the Engine.IO server."""

from .base import EngineSource, consumer_tasks
from .polling import PollingConsumer
from .websocket import WebSocketConsumer

__all__ = ["EngineSource", "PollingConsumer", "WebSocketConsumer", "consumer_tasks"]
