"""Socket.IO v5 packet codec: ``<type>[<n>-][<nsp>,][<id>][<json>]`` plus binary attachments.

Pure functions and one small stateful decoder (attachments arrive as separate Engine.IO
messages after the packet that announces them). Limits are enforced while decoding, and every
error says what was wrong and where.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

__all__ = [
    "RESERVED_EVENTS",
    "Decoder",
    "Packet",
    "PacketType",
    "SocketIOParseError",
    "dump_json",
    "encode",
    "join_binary",
    "validate_event_name",
]

#: Event names the protocol keeps for itself; neither side may emit them.
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)

MAX_ID_DIGITS = 15  # ids stay below 2**53, so JavaScript clients can hold them exactly


def _not_json(constant: str) -> Any:
    # Python's json reads NaN / Infinity, which JSON (and JavaScript's JSON.parse) does not.
    raise ValueError(f"{constant} is not valid JSON")


class _BinaryFound(Exception):
    """Raised out of the JSON encoder when the data holds bytes (attachments)."""


def _no_binary(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        raise _BinaryFound
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_dumps() -> Callable[[Any], str]:
    # allow_nan=False: a NaN or Infinity written out would make JavaScript clients drop the
    # connection, so emitting one raises ValueError instead of sending a malformed packet.
    # default=_no_binary: most packets hold no bytes, so they are encoded in one pass of the C
    # encoder, which calls it only on bytes (or on what JSON cannot hold).
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is None:  # an interpreter without the C accelerator
        return json.JSONEncoder(
            separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_no_binary
        ).encode
    # JSONEncoder.encode builds this C encoder anew on every call (most of its cost for a
    # small packet); one built once does the same work. Without circular-reference markers a
    # circular value ends in RecursionError, reported as a ValueError, as JSONEncoder does.
    encoder = make_encoder(
        None, _no_binary, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )

    def dumps(value: Any) -> str:
        try:
            return "".join(encoder(value, 0))
        except RecursionError:
            raise ValueError("value nested too deeply (or circular) for JSON") from None

    return dumps


_dumps = _make_dumps()
_decoder = json.JSONDecoder(parse_constant=_not_json)
# JSONDecoder sets scan_once (the C scanner) in __init__; typeshed does not declare it.
_scan_once: Callable[[str, int], tuple[Any, int]] = _decoder.scan_once  # type: ignore[attr-defined]


def _loads(text: str, start: int) -> Any:
    """The JSON value that fills ``text`` from ``start`` to its end."""
    # The C scanner alone skips decode()'s two whitespace regex matches, raw_decode()'s Python
    # frame and a copy of the text. Clients send no whitespace around the JSON; if one does,
    # or the scanner fails, decode() (which allows whitespace and words its errors) decides.
    try:
        value, end = _scan_once(text, start)
    except StopIteration:
        return _decoder.decode(text[start:])
    if end != len(text):
        return _decoder.decode(text[start:])
    return value


class PacketType(IntEnum):
    """Socket.IO packet types, by their wire digit."""

    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


# The wire digit -> type. (int() would also read non-ASCII digits such as "٢".)
_TYPES = {str(int(kind)): kind for kind in PacketType}
_DIGITS = {kind: digit for digit, kind in _TYPES.items()}

# Read on every packet: module-level names, because Python 3.11 looks an enum member up
# on its class through a descriptor call.
_EVENT, _ACK = PacketType.EVENT, PacketType.ACK
_BINARY_KINDS = (PacketType.BINARY_EVENT, PacketType.BINARY_ACK)


class SocketIOParseError(ValueError):
    """Raised for Engine.IO messages that are not a valid Socket.IO packet."""


@dataclass(slots=True)
class Packet:
    """One Socket.IO packet. ``data`` is the decoded JSON (bytes restored in place).

    ``dumped`` is ``data`` as :func:`dump_json` gives it, when it was made already (connection
    state recovery serializes a packet to record it): :func:`encode` uses it as is.
    """

    type: PacketType
    namespace: str = "/"
    data: Any = None
    id: int | None = None
    dumped: tuple[str, list[bytes]] | None = field(default=None, compare=False, repr=False)


def validate_event_name(event: Any) -> None:
    """Raise ValueError unless ``event`` may be emitted (a non-reserved string)."""
    if not isinstance(event, str):
        raise ValueError(f"event names must be strings, not {type(event).__name__}")
    if event in RESERVED_EVENTS:
        raise ValueError(f"{event!r} is a reserved event name")


def _deconstruct(data: Any, buffers: list[bytes]) -> Any:
    if isinstance(data, bytes | bytearray | memoryview):
        buffers.append(bytes(data))
        return {"_placeholder": True, "num": len(buffers) - 1}
    if isinstance(data, list | tuple):
        return [_deconstruct(item, buffers) for item in data]
    if isinstance(data, dict):
        return {key: _deconstruct(value, buffers) for key, value in data.items()}
    return data


def dump_json(data: Any) -> tuple[str, list[bytes]]:
    """``data`` as compact JSON with its bytes replaced by attachment placeholders, and the
    bytes in order; TypeError / ValueError for what JSON cannot hold (as :func:`encode`)."""
    buffers: list[bytes] = []
    try:
        return _dumps(data), buffers
    except _BinaryFound:
        return _dumps(_deconstruct(data, buffers)), buffers


def join_binary(data: Any, buffers: list[bytes]) -> Any:
    """The inverse of :func:`split_binary`; SocketIOParseError for a bad placeholder."""
    return _reconstruct(data, buffers) if buffers else data


def encode(packet: Packet) -> list[str | bytes]:
    """Encode a packet as Engine.IO messages: the text header, then any binary attachments."""
    kind = packet.type
    data = packet.data
    buffers: list[bytes] = []
    body = ""
    if packet.dumped is not None:
        body, buffers = packet.dumped
        if buffers:
            kind = PacketType.BINARY_EVENT if kind is PacketType.EVENT else PacketType.BINARY_ACK
    elif data is not None:
        try:
            body = _dumps(data)
        except _BinaryFound:
            if kind is PacketType.EVENT:
                kind = PacketType.BINARY_EVENT
            elif kind is PacketType.ACK:
                kind = PacketType.BINARY_ACK
            else:
                raise TypeError(f"{kind.name} packets cannot carry binary data") from None
            body = _dumps(_deconstruct(data, buffers))
    header = _DIGITS[kind]
    if buffers:
        header += f"{len(buffers)}-"
    if packet.namespace != "/":
        header += packet.namespace + ","
    if packet.id is not None:
        header += str(packet.id)
    return [header + body, *buffers]


def _reconstruct(data: Any, buffers: list[bytes]) -> Any:
    if isinstance(data, dict):
        if data.get("_placeholder") is True and len(data) == 2:
            num = data.get("num")
            if not isinstance(num, int) or isinstance(num, bool) or not 0 <= num < len(buffers):
                raise SocketIOParseError(f"attachment placeholder with bad num {num!r}")
            return buffers[num]
        return {key: _reconstruct(value, buffers) for key, value in data.items()}
    if isinstance(data, list):
        return [_reconstruct(item, buffers) for item in data]
    return data


class Decoder:
    """Turns one connection's Engine.IO messages into packets, collecting attachments.

    A server decodes what clients send (the default); ``from_server=True`` decodes what a server
    sends, as the test client in :mod:`channels_sio.testing` does.
    """

    def __init__(self, max_attachments: int = 10, *, from_server: bool = False) -> None:
        self.max_attachments = max_attachments
        self.from_server = from_server
        self._pending: Packet | None = None
        self._expected = 0
        self._buffers: list[bytes] = []

    def feed(self, message: str | bytes) -> Packet | None:
        """Decode one message; None while a binary packet still waits for attachments."""
        if isinstance(message, bytes):
            if self._pending is None:
                raise SocketIOParseError("unexpected binary message (no attachment announced)")
            self._buffers.append(message)
            if len(self._buffers) < self._expected:
                return None
            packet, buffers = self._pending, self._buffers
            self._pending, self._buffers, self._expected = None, [], 0
            try:
                packet.data = _reconstruct(packet.data, buffers)
            except RecursionError:
                # JSON nested a little below the parser's limit still exhausts the stack here.
                raise SocketIOParseError("attachment placeholders nested too deeply") from None
            packet.type = (
                PacketType.EVENT if packet.type is PacketType.BINARY_EVENT else PacketType.ACK
            )
            _check_payload(packet, self.from_server)
            return packet
        if self._pending is not None:
            raise SocketIOParseError("text message while binary attachments were expected")
        packet, attachments = _decode_text(message, self.max_attachments)
        if attachments:
            self._pending, self._expected = packet, attachments
            return None
        _check_payload(packet, self.from_server)
        return packet


# After the type and attachment count: the namespace up to its comma (or the end), then the
# ack id's ASCII digits.
_HEADER = re.compile(r"(?:(/[^,]*),?)?([0-9]*)")


def _decode_text(text: str, max_attachments: int) -> tuple[Packet, int]:
    if not text:
        raise SocketIOParseError("empty packet")
    kind = _TYPES.get(text[0])
    if kind is None:
        raise SocketIOParseError(f"unknown packet type {text[0]!r} at byte 0")
    pos = 1
    end = len(text)
    attachments = 0
    if kind in _BINARY_KINDS:
        dash = text.find("-", pos)
        digits = text[pos:dash] if dash != -1 else ""
        if not digits.isdigit() or not digits.isascii():
            raise SocketIOParseError(f"bad attachment count at byte {pos}")
        attachments = int(digits)
        if not 0 < attachments <= max_attachments:
            raise SocketIOParseError(
                f"{attachments} attachments announced; 1 to {max_attachments} allowed"
            )
        pos = dash + 1
    header = _HEADER.match(text, pos)
    assert header is not None  # every part of the pattern may be empty
    namespace = header[1] or "/"
    digits = header[2]
    packet_id = None
    if digits:
        if len(digits) > MAX_ID_DIGITS:
            start = header.start(2)
            raise SocketIOParseError(f"ack id longer than {MAX_ID_DIGITS} digits at byte {start}")
        packet_id = int(digits)
    pos = header.end()
    data = None
    if pos < end:
        try:
            data = _loads(text, pos)
        except (ValueError, RecursionError) as exc:
            # RecursionError: nesting deeper than the parser's limit ("[[[[...").
            raise SocketIOParseError(f"invalid JSON at byte {pos}: {exc}") from None
    return Packet(kind, namespace, data, packet_id), attachments


def _check_payload(packet: Packet, from_server: bool) -> None:
    """Reject packets the peer may not send, or whose payload does not fit their type."""
    kind, data = packet.type, packet.data
    if kind is _EVENT:
        ok = (
            isinstance(data, list)
            and len(data) > 0
            and isinstance(data[0], str)
            and data[0] not in RESERVED_EVENTS
        )
    elif kind is _ACK:
        ok = isinstance(data, list) and packet.id is not None
    elif kind is PacketType.CONNECT:
        ok = isinstance(data, dict) if from_server else data is None or isinstance(data, dict)
    elif kind is PacketType.DISCONNECT:
        ok = data is None and packet.id is None
    else:  # CONNECT_ERROR travels from server to client only
        ok = from_server and isinstance(data, dict | str)
    if not ok:
        raise SocketIOParseError(f"invalid {kind.name} packet payload: {data!r:.80}")
