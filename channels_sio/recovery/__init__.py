"""Connection state recovery: the store contract and its stores, wrapped around the adapter.

The memory store and the adapter are pure; ``database`` (Django models) and ``redis``
(redis-py) are imported only when configured.
"""

from .adapter import ConnectionStateRecovery, RecoveryAdapter
from .memory import MemoryStore
from .store import PacketRecord, RecoveryStore

__all__ = [
    "ConnectionStateRecovery",
    "MemoryStore",
    "PacketRecord",
    "RecoveryAdapter",
    "RecoveryStore",
]
