"""Three server processes (uvicorn, uvicorn, daphne) sharing one Redis form one Socket.IO server:
room broadcasts, broadcast acknowledgements, fetch_sockets and remote sockets, room operations,
server-side events and ``channels_sio.emit`` cross every node; a broadcast costs one
channel-layer message per other node, with 10 sockets as with 1000."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import Cluster, Driver, running_cluster, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.node]

NSP = "/cluster"
SETTINGS = "tests.cluster.settings_cluster"


@pytest.fixture(scope="module")
def cluster(redis_url: str) -> Iterator[Cluster]:
    with running_cluster(redis_url, SETTINGS, ("uvicorn", "uvicorn", "daphne")) as started:
        yield started


class Clients:
    """Named clients of one driver, each connected to one node of the cluster."""

    def __init__(self, driver: Driver, cluster: Cluster) -> None:
        self.driver = driver
        self.cluster = cluster
        self.info: dict[str, dict[str, Any]] = {}
        self.node_of: dict[str, int] = {}

    def open(self, name: str, node: int, **options: Any) -> dict[str, Any]:
        info = self.driver(
            "open",
            name=name,
            url=self.cluster[node].url,
            query={"who": name},
            headers={"x-cluster": name},
            auth={"data": {"name": name}, **options.pop("auth", {})},
            **options,
        )
        # The Engine.IO sid starts with the id of the node that owns it.
        assert info["eio"].startswith(self.cluster.ids[node]), info
        self.info[name] = info
        self.node_of[name] = node
        return info

    def id(self, name: str) -> str:
        return str(self.info[name]["id"])

    def call(self, name: str, event: str, *args: Any, timeout: float = 5.0) -> Any:
        return self.driver("call", name=name, event=event, args=list(args), ms=int(timeout * 1000))

    def take(self, name: str, event: str | None = None) -> list[list[Any]]:
        """The events ``name`` got since the last take (only ``event`` ones, if given)."""
        events = self.driver("events", name=name, clear=True)
        return [e for e in events if event is None or e[0] == event]

    def flushed(self, names: list[str], token: str) -> dict[str, list[list[Any]]]:
        """Wait for the flush ``token`` on each client; what each got before it (no flush)."""
        got = {}
        for name in names:
            self.driver("wait", name=name, event="flush")
            events = self.take(name)
            assert ["flush", token] in events, (name, events)
            got[name] = [e for e in events if e[0] != "flush"]
        return got

    def fetch(self, via: str, **spec: Any) -> list[dict[str, Any]]:
        return list(self.call(via, "fetch", spec))

    def named(self, sockets: list[dict[str, Any]]) -> list[str]:
        names = {self.id(n): n for n in self.info}
        return sorted(names.get(s["id"], s["id"]) for s in sockets)


@pytest.fixture
def clients(driver: Driver, cluster: Cluster) -> Clients:
    return Clients(driver, cluster)


def _members_and_others(clients: Clients) -> tuple[list[str], list[str]]:
    """M0..M2 in room "r" (M2 also in "vip"), N0..N2 in no room: one of each per node."""
    for node in range(3):
        rooms = ["r", "vip"] if node == 2 else ["r"]
        clients.open(f"M{node}", node, auth={"rooms": rooms})
        clients.open(f"N{node}", node)
    return ["M0", "M1", "M2"], ["N0", "N1", "N2"]


def test_room_broadcast_from_any_node_reaches_each_member_once(clients: Clients) -> None:
    members, others = _members_and_others(clients)
    everyone = members + others
    casts = [
        # (sender, spec, who must get it)
        ("N0", {"to": "r"}, members),
        ("N1", {"to": "r"}, members),
        ("N2", {"to": "r"}, members),
        ("M1", {"to": "r"}, members),  # the sender is a member: it gets it too
        ("N1", {"to": "r", "except": "vip"}, ["M0", "M1"]),
        ("N0", {"to": "r", "local": True}, ["M0"]),  # local: this node's sockets only
        ("N2", {}, everyone),
    ]
    for number, (sender, spec, expected) in enumerate(casts):
        token = f"cast-{number}"
        sent_from = clients.call(
            sender, "cast", {"event": "news", "args": [token], "flush": token, **spec}
        )
        assert sent_from == clients.cluster.ids[clients.node_of[sender]]
        got = clients.flushed(everyone, token)
        assert got == {name: [["news", token]] if name in expected else [] for name in everyone}, (
            sender,
            spec,
        )


def test_binary_broadcast_crosses_nodes(clients: Clients) -> None:
    members, others = _members_and_others(clients)
    spec = {"event": "news", "args": ["bin"], "binary": "00ff10", "to": "r", "flush": "bin"}
    clients.call("N1", "cast", spec)
    got = clients.flushed(members + others, "bin")
    as_json = {"bytes": {"type": "Buffer", "data": [0, 255, 16]}}  # a Buffer in the client
    assert got == {name: [["news", "bin", as_json]] if name in members else [] for name in got}


def test_broadcast_acks_aggregate_every_node(clients: Clients) -> None:
    members, _ = _members_and_others(clients)
    assert clients.call("N1", "ask-all", {"to": "r", "timeout": 3000}) == {"responses": members}
    every = clients.call("M2", "ask-all", {"timeout": 3000})
    assert every == {"responses": ["M0", "M1", "M2", "N0", "N1", "N2"]}
    # A member on another node that never answers: the others' answers come with the timeout.
    clients.open("Q", 2, auth={"rooms": ["r"]}, noAck=True)
    partial = clients.call("N0", "ask-all", {"to": "r", "timeout": 500})
    assert partial == {"error": "AckTimeoutError", "responses": members}


def test_fetch_sockets_sees_every_node(clients: Clients) -> None:
    _members_and_others(clients)
    cluster = clients.cluster
    for via in ("N0", "M1", "N2"):
        here = clients.node_of[via]
        found = {s["id"]: s for s in clients.fetch(via)}
        assert sorted(found) == sorted(clients.id(n) for n in clients.info)
        for name in clients.info:
            described = found[clients.id(name)]
            node = clients.node_of[name]
            assert described["node"] == cluster.ids[node]
            assert described["remote"] is (node != here)
            assert described["data"] == {"name": name}
            handshake = described["handshake"]
            assert handshake["auth"]["data"] == {"name": name}
            assert handshake["query"] == {"who": name, "transport": "websocket"}
            assert handshake["x-cluster"] == name
            assert handshake["address"] == "127.0.0.1"
            rooms = {"r", "vip"} if name == "M2" else {"r"} if name.startswith("M") else set()
            assert set(described["rooms"]) == rooms | {clients.id(name)}
        assert clients.named(clients.fetch(via, to="r")) == ["M0", "M1", "M2"]
        assert clients.named(clients.fetch(via, to="vip")) == ["M2"]
        assert clients.named(clients.fetch(via, to="r", local=True)) == [f"M{here}"]


def test_remote_socket_commands_reach_their_node(clients: Clients) -> None:
    _members_and_others(clients)
    clients.open("E1", 1)
    target = clients.id("M2")
    answer = clients.call("N0", "remote", {"target": target, "command": "emit", "args": ["hi", 1]})
    assert answer == {"found": True, "remote": True, "node": clients.cluster.ids[2]}
    assert clients.driver("wait", name="M2", event="hi") == [["hi", 1]]

    def rooms_of(name: str) -> set[str]:
        found = {s["id"]: s for s in clients.fetch("N1")}
        return set(found[clients.id(name)]["rooms"]) - {clients.id(name)}

    spec = {"target": clients.id("N2"), "command": "join", "args": ["joined", "also"]}
    assert clients.call("N0", "remote", spec)["remote"] is True
    wait_for(lambda: rooms_of("N2") == {"joined", "also"}, 5, "remote join")
    spec = {"target": clients.id("N2"), "command": "leave", "args": ["joined"]}
    clients.call("N0", "remote", spec)
    wait_for(lambda: rooms_of("N2") == {"also"}, 5, "remote leave")

    spec = {"target": clients.id("E1"), "command": "disconnect", "args": [False]}
    assert clients.call("N2", "remote", spec)["remote"] is True
    assert clients.driver("disconnected", name="E1") == "io server disconnect"
    assert clients.named(clients.fetch("N0")) == ["M0", "M1", "M2", "N0", "N1", "N2"]


def test_sockets_join_leave_and_disconnect_across_nodes(clients: Clients) -> None:
    members, others = _members_and_others(clients)
    for node in range(3):
        clients.open(f"D{node}", node, auth={"rooms": ["doomed"]})

    def in_room(room: str) -> list[str]:
        return clients.named(clients.fetch("N0", to=room))

    assert clients.call("N1", "sockets-join", {"to": "r", "rooms": ["r2", "r3"]}) == "joined"
    wait_for(lambda: in_room("r2") == members and in_room("r3") == members, 5, "sockets_join")
    assert clients.call("N2", "sockets-leave", {"rooms": ["r2"]}) == "left"
    wait_for(lambda: in_room("r2") == [] and in_room("r3") == members, 5, "sockets_leave")

    assert clients.call("M0", "disconnect-sockets", {"to": "doomed"}) == "disconnected"
    for name in ("D0", "D1", "D2"):
        assert clients.driver("disconnected", name=name) == "io server disconnect"
    wait_for(lambda: in_room("doomed") == [], 5, "disconnect_sockets")
    for name in members + others:
        assert clients.driver("state", name=name)["connected"] is True


def test_server_side_emit_reaches_the_other_nodes_only(clients: Clients) -> None:
    _members_and_others(clients)
    ids = clients.cluster.ids
    assert clients.call("N0", "server-emit", {"event": "cluster-news", "args": ["hi"]}) == {
        "node": ids[0]
    }
    for name in ("M1", "N1", "M2", "N2"):
        news = clients.driver("wait", name=name, event="server-news")
        assert news == [["server-news", {"node": ids[clients.node_of[name]], "args": ["hi"]}]]
    answer = clients.call(
        "M1", "server-emit", {"event": "cluster-news", "args": [2], "ack": True, "timeout": 3000}
    )
    assert answer == {
        "node": ids[1],
        "answers": sorted(
            [{"node": ids[0], "args": [2]}, {"node": ids[2], "args": [2]}],
            key=lambda a: a["node"],
        ),
    }
    for name in ("M0", "N0", "M2", "N2"):
        clients.driver("wait", name=name, event="server-news", count=1 + (name[1] == "2"))
    # The emitting node's handler never ran: its clients got only what node 1 sent (the ack).
    assert [e[1]["args"] for e in clients.take("N0", "server-news")] == [[2]]
    assert [e[1]["args"] for e in clients.take("N1", "server-news")] == [["hi"]]


def test_emit_from_sync_code_reaches_every_node(clients: Clients) -> None:
    members, others = _members_and_others(clients)
    everyone = members + others
    # A management command: another process, on the same Redis and prefix.
    clients.cluster.django(
        "import channels_sio\n"
        "channels_sio.emit('news', 'command', to='r', namespace='/cluster')\n"
        "channels_sio.emit('flush', 'command', namespace='/cluster')\n"
    )
    got = clients.flushed(everyone, "command")
    assert got == {name: [["news", "command"]] if name in members else [] for name in everyone}
    # A plain def view of node 1 (Django runs it in a thread).
    for event, args, to in (("news", ["view"], "vip"), ("flush", ["view"], None)):
        response = httpx.post(
            clients.cluster[1].url + "/_cluster/emit/",
            json={"event": event, "args": args, "to": to},
            timeout=5,
        )
        assert response.json() == {"ok": True}
    got = clients.flushed(everyone, "view")
    assert got == {name: [["news", "view"]] if name == "M2" else [] for name in everyone}


def _measure(clients: Clients, via: str) -> dict[str, Any]:
    measured = clients.call(via, "measure", {"count": 7})
    deltas = measured["deltas"]
    # A heartbeat (one group message every node_heartbeat) may fall inside one measure.
    assert all(d in (1, 2) for d in deltas), deltas
    return {"median": statistics.median(deltas), "min": min(deltas), **measured}


def test_one_message_per_broadcast_whatever_the_nodes_and_sockets(
    clients: Clients, record_property: Any
) -> None:
    driver, cluster = clients.driver, clients.cluster
    urls = [s.url for s in cluster.servers]
    clients.open("V", 0)
    assert driver("openMany", prefix="small", urls=urls, count=9, ms=10000) == 9
    small = _measure(clients, "V")
    assert small["peers"] == 2
    assert small["median"] == small["min"] == 1  # one group send, whatever the sockets
    counts = driver("countMany", prefix="small", event="measured", atLeast=7)
    assert counts == {"7": 9}
    assert len(clients.take("V", "measured")) == 7

    # 1000 sockets: the same one message per broadcast.
    opened = driver("openMany", prefix="big", urls=urls, count=990, parallel=60, ms=30000)
    assert opened == 990
    sockets = [clients.cluster.node(s)["sockets"] for s in cluster.servers]
    assert sum(sockets) == 1000, sockets
    big = _measure(clients, "V")
    assert big["median"] == big["min"] == 1
    counts = driver("countMany", prefix="big", event="measured", atLeast=7, ms=15000)
    assert counts == {"7": 990}
    record_property("messages_per_broadcast", {"10 sockets": small, "1000 sockets": big})
    print(f"\nmessages per broadcast, 3 nodes: 10 sockets {small}, 1000 sockets {big}")
    driver("closeMany", prefix="big")
    driver("closeMany", prefix="small")
