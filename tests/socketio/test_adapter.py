"""RoomIndex: one namespace's local room index (room -> socket ids, socket id -> rooms)."""

from __future__ import annotations

import pytest

from channels_sio.socketio.adapter import RoomIndex


@pytest.fixture
def index() -> RoomIndex:
    """a: lobby, red; b: lobby; c: red; d: nothing but its own room."""
    rooms = RoomIndex()
    rooms.add("a", ["a", "lobby", "red"])
    rooms.add("b", ("b", "lobby"))
    rooms.add("c", iter(["c", "red"]))
    rooms.add("d", ["d"])
    return rooms


# (rooms, except_rooms, selected socket ids)
SELECTIONS = [
    pytest.param(set(), set(), {"a", "b", "c", "d"}, id="everyone"),
    pytest.param({"lobby"}, set(), {"a", "b"}, id="one-room"),
    pytest.param({"lobby", "red"}, set(), {"a", "b", "c"}, id="union-once-each"),
    pytest.param({"d"}, set(), {"d"}, id="own-room"),
    pytest.param({"nowhere"}, set(), set(), id="unknown-room"),
    pytest.param(set(), {"red"}, {"b", "d"}, id="everyone-except"),
    pytest.param({"lobby"}, {"red"}, {"b"}, id="room-except-room"),
    pytest.param({"lobby"}, {"a"}, {"b"}, id="room-except-socket"),
    pytest.param({"lobby"}, {"lobby"}, set(), id="except-wins"),
    pytest.param({"red"}, {"nowhere"}, {"a", "c"}, id="except-unknown-room"),
    pytest.param(set(), {"lobby", "red"}, {"d"}, id="except-several"),
]


@pytest.mark.parametrize(("rooms", "except_rooms", "selected"), SELECTIONS)
def test_select(
    index: RoomIndex, rooms: set[str], except_rooms: set[str], selected: set[str]
) -> None:
    found = index.select(frozenset(rooms), frozenset(except_rooms))
    assert sorted(found) == sorted(selected)  # each socket once


def test_both_directions(index: RoomIndex) -> None:
    assert index.rooms == {
        "a": {"a"},
        "b": {"b"},
        "c": {"c"},
        "d": {"d"},
        "lobby": {"a", "b"},
        "red": {"a", "c"},
    }
    assert index.sids == {
        "a": {"a", "lobby", "red"},
        "b": {"b", "lobby"},
        "c": {"c", "red"},
        "d": {"d"},
    }


def test_add_is_idempotent_and_cumulative(index: RoomIndex) -> None:
    index.add("b", ["lobby", "blue"])
    index.add("b", [])
    assert index.rooms_of("b") == {"b", "lobby", "blue"}
    assert index.rooms["lobby"] == {"a", "b"}
    assert index.rooms["blue"] == {"b"}


def test_rooms_of(index: RoomIndex) -> None:
    rooms = index.rooms_of("a")
    assert rooms == frozenset({"a", "lobby", "red"})
    assert isinstance(rooms, frozenset)
    index.discard("a", "red")
    assert rooms == {"a", "lobby", "red"}, "a snapshot, not a view"
    assert index.rooms_of("unknown") == frozenset()


def test_discard(index: RoomIndex) -> None:
    index.discard("a", "lobby")
    assert index.rooms_of("a") == {"a", "red"}
    assert index.rooms["lobby"] == {"b"}
    assert sorted(index.select(frozenset({"lobby"}), frozenset())) == ["b"]


def test_discard_drops_rooms_left_empty(index: RoomIndex) -> None:
    index.discard("c", "red")
    index.discard("a", "red")
    assert "red" not in index.rooms
    assert index.select(frozenset({"red"}), frozenset()) == []


def test_discard_what_is_not_there(index: RoomIndex) -> None:
    index.discard("a", "nowhere")
    index.discard("unknown", "lobby")
    index.discard("b", "red")
    assert index.rooms["lobby"] == {"a", "b"}
    assert index.rooms["red"] == {"a", "c"}
    assert "unknown" not in index.sids
    assert "nowhere" not in index.rooms


def test_socket_in_no_room_is_still_everyones(index: RoomIndex) -> None:
    index.discard("d", "d")
    assert index.rooms_of("d") == frozenset()
    assert "d" not in index.rooms
    assert "d" in index.select(frozenset(), frozenset())
    assert "d" not in index.select(frozenset({"d"}), frozenset())


def test_remove(index: RoomIndex) -> None:
    index.remove("a")
    assert "a" not in index.sids
    assert "a" not in index.rooms
    assert index.rooms["lobby"] == {"b"}
    assert index.rooms["red"] == {"c"}
    assert index.rooms_of("a") == frozenset()
    assert sorted(index.select(frozenset(), frozenset())) == ["b", "c", "d"]


def test_remove_drops_rooms_left_empty(index: RoomIndex) -> None:
    index.remove("b")
    index.remove("a")
    assert sorted(index.rooms) == ["c", "d", "red"]
    index.remove("c")
    index.remove("d")
    assert index.rooms == {}
    assert index.sids == {}


def test_remove_unknown_and_twice(index: RoomIndex) -> None:
    index.remove("unknown")
    index.remove("d")
    index.remove("d")
    assert sorted(index.sids) == ["a", "b", "c"]


def test_empty_index() -> None:
    index = RoomIndex()
    assert index.select(frozenset(), frozenset()) == []
    assert index.select(frozenset({"x"}), frozenset({"y"})) == []
    assert index.rooms_of("x") == frozenset()


def test_select_result_is_independent(index: RoomIndex) -> None:
    # Broadcasting may make sockets leave while iterating over the selection.
    found = index.select(frozenset({"lobby"}), frozenset())
    for sid in found:
        index.remove(sid)
    assert sorted(found) == ["a", "b"]
    assert "lobby" not in index.rooms
