"""Engine.IO v4 packet and payload codec.

Pure functions: no I/O, no Django. A packet on the wire is one type digit followed by its data;
binary messages travel as raw WebSocket frames, or as ``b`` + base64 inside a polling payload,
where packets are joined by the record separator ``\\x1e``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "SEPARATOR",
    "Packet",
    "PacketType",
    "ParseError",
    "decode_packet",
    "decode_payload",
    "encode_packet",
    "encode_payload",
]

SEPARATOR = "\x1e"


class PacketType(IntEnum):
    """Engine.IO packet types, by their wire digit."""

    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


class ParseError(ValueError):
    """Raised for bytes that are not a valid Engine.IO packet or payload."""


@dataclass(frozen=True, slots=True)
class Packet:
    """One Engine.IO packet. ``data`` is text, bytes (binary messages only) or empty."""

    type: PacketType
    data: str | bytes = ""


_TYPE_BY_CHAR = {str(int(t)): t for t in PacketType}
_CHAR_BY_TYPE = {t: str(int(t)) for t in PacketType}


def encode_packet(packet: Packet, *, binary_frames: bool = True) -> str | bytes:
    """Encode one packet.

    Binary data becomes raw bytes when ``binary_frames`` (WebSocket), else ``b`` + base64
    (polling payloads).
    """
    data = packet.data
    if isinstance(data, bytes):
        if packet.type is not PacketType.MESSAGE:
            raise ValueError(f"only MESSAGE packets carry binary data, not {packet.type.name}")
        if binary_frames:
            return data
        return "b" + base64.b64encode(data).decode("ascii")
    return _CHAR_BY_TYPE[packet.type] + data


def decode_packet(raw: str | bytes) -> Packet:
    """Decode one packet: a WebSocket frame (text or binary) or one record of a payload."""
    if isinstance(raw, bytes):
        return Packet(PacketType.MESSAGE, raw)
    if not raw:
        raise ParseError("empty packet")
    head = raw[0]
    if head == "b":
        try:
            return Packet(PacketType.MESSAGE, base64.b64decode(raw[1:], validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ParseError(f"invalid base64 in binary packet: {exc}") from None
    packet_type = _TYPE_BY_CHAR.get(head)
    if packet_type is None:
        raise ParseError(f"unknown packet type {head!r} at byte 0")
    return Packet(packet_type, raw[1:])


def encode_payload(packets: list[Packet]) -> str:
    """Encode packets for one polling response body."""
    return SEPARATOR.join(str(encode_packet(p, binary_frames=False)) for p in packets)


def decode_payload(body: str) -> list[Packet]:
    """Decode one polling request body; any bad record rejects the whole payload."""
    if not body:
        raise ParseError("empty payload")
    packets = []
    for index, record in enumerate(body.split(SEPARATOR)):
        try:
            packets.append(decode_packet(record))
        except ParseError as exc:
            raise ParseError(f"record {index}: {exc}") from None
    return packets
