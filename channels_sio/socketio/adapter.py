"""This process's room index for one namespace: room -> socket ids, socket id -> rooms."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["RoomIndex"]


class RoomIndex:
    """Rooms of the local sockets of one namespace. Every socket is in the room of its own id."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[str]] = {}
        self.sids: dict[str, set[str]] = {}

    def add(self, sid: str, rooms: Iterable[str]) -> None:
        joined = self.sids.setdefault(sid, set())
        for room in rooms:
            joined.add(room)
            self.rooms.setdefault(room, set()).add(sid)

    def discard(self, sid: str, room: str) -> None:
        joined = self.sids.get(sid)
        if joined is not None:
            joined.discard(room)
        members = self.rooms.get(room)
        if members is not None:
            members.discard(sid)
            if not members:
                del self.rooms[room]

    def remove(self, sid: str) -> None:
        """Forget a socket and every room it was in."""
        for room in self.sids.pop(sid, ()):
            members = self.rooms.get(room)
            if members is not None:
                members.discard(sid)
                if not members:
                    del self.rooms[room]

    def rooms_of(self, sid: str) -> frozenset[str]:
        return frozenset(self.sids.get(sid, ()))

    def select(self, rooms: frozenset[str], except_rooms: frozenset[str]) -> list[str]:
        """Socket ids in any of ``rooms`` (all when empty) and in none of ``except_rooms``."""
        if rooms:
            chosen: set[str] = set()
            for room in rooms:
                chosen.update(self.rooms.get(room, ()))
        else:
            chosen = set(self.sids)
        if except_rooms:
            for room in except_rooms:
                chosen.difference_update(self.rooms.get(room, ()))
        return list(chosen)
