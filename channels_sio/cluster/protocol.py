"""What nodes say to each other on the channel layer: the message types and their fields."""

from __future__ import annotations

from typing import Any

from ..socketio.broadcast import BroadcastFlags

__all__ = [
    "ADMIN",
    "BROADCAST",
    "BYE",
    "EMIT",
    "HEARTBEAT",
    "HELLO",
    "HTTP",
    "HTTP_ABORT",
    "HTTP_RESPONSE",
    "NODES_GROUP",
    "NODE_ID_LENGTH",
    "RELAY_CLOSE",
    "RELAY_IN",
    "RELAY_LOST",
    "RELAY_OUT",
    "REPLY",
    "REQUEST",
    "SOCKET",
    "SOCKETS",
    "UPGRADE_ABANDON",
    "UPGRADE_PROBE",
    "UPGRADE_REPLY",
    "UPGRADE_TAKE",
    "WELCOME",
    "flags_from",
    "flags_message",
]

#: The group every node is in: what is sent to it reaches every node, known or not.
NODES_GROUP = "channels_sio.nodes"
#: Hex characters of a node id; also the prefix of every Engine.IO sid that node issues.
NODE_ID_LENGTH = 8

# Every message carries "type" and "node" (the sender's id).
EMIT = "channels_sio.emit"  # group: from channels_sio.emit(), which may run in any process
HELLO = "channels_sio.hello"  # group: a node started; peers answer WELCOME directly
WELCOME = "channels_sio.welcome"
HEARTBEAT = "channels_sio.heartbeat"  # group, every node_heartbeat ms
BYE = "channels_sio.bye"  # group, on a clean stop
BROADCAST = "channels_sio.broadcast"  # group
SOCKETS = "channels_sio.sockets"  # group: join / leave / disconnect the sockets flags select
SOCKET = "channels_sio.socket"  # to one node: emit / join / leave / disconnect one socket
REQUEST = "channels_sio.request"  # group: answered with REPLY by every other node
REPLY = "channels_sio.reply"
HTTP = "channels_sio.http"  # to one node: a polling request for a sid it owns
HTTP_ABORT = "channels_sio.http_abort"
HTTP_RESPONSE = "channels_sio.http_response"
ADMIN = "channels_sio.admin"  # to one node: the admin acts on one of its sessions
# To the owner of a session whose WebSocket upgrade landed on the sender (cluster.upgrades):
UPGRADE_PROBE = "channels_sio.upgrade_probe"  # hold the session for the sender
UPGRADE_TAKE = "channels_sio.upgrade_take"  # hand it over
UPGRADE_ABANDON = "channels_sio.upgrade_abandon"  # the upgrade failed: keep it
UPGRADE_REPLY = "channels_sio.upgrade_reply"  # the owner's answer to PROBE and TAKE
RELAY_IN = "channels_sio.relay_in"  # a relayed WebSocket's frame from its client
# The relayed WebSocket closed under the sender (``code``), or the sender closed it for
# ``reason`` (a client that does not read).
RELAY_LOST = "channels_sio.relay_lost"
RELAY_OUT = "channels_sio.relay_out"  # to the relaying node: a frame for the client
RELAY_CLOSE = "channels_sio.relay_close"  # to the relaying node: close the socket


def flags_message(flags: BroadcastFlags) -> dict[str, Any]:
    """A broadcast's flags as message fields (``local`` is the sender's business)."""
    return {
        "rooms": sorted(flags.rooms),
        "except_rooms": sorted(flags.except_rooms),
        "volatile": flags.volatile,
        "exclude_sid": flags.exclude_sid,
        "timeout": flags.timeout,
    }


def flags_from(message: dict[str, Any]) -> BroadcastFlags:
    """The flags of a message from another node, local to this one: what another node asks
    for is done here only."""
    return BroadcastFlags(
        rooms=frozenset(message.get("rooms", ())),
        except_rooms=frozenset(message.get("except_rooms", ())),
        volatile=bool(message.get("volatile", False)),
        local=True,
        timeout=message.get("timeout"),
        exclude_sid=message.get("exclude_sid"),
    )
