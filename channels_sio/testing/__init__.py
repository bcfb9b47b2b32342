"""Helpers for testing Socket.IO handlers in a project's own test suite."""

from .communicator import SocketIOCommunicator

__all__ = ["SocketIOCommunicator"]
