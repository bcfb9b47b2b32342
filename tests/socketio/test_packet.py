"""The Socket.IO v5 packet codec, one table row per wire string."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from channels_sio.socketio.packet import (
    RESERVED_EVENTS,
    Decoder,
    Packet,
    PacketType,
    SocketIOParseError,
    encode,
    validate_event_name,
)

C, D, E, A, X = (
    PacketType.CONNECT,
    PacketType.DISCONNECT,
    PacketType.EVENT,
    PacketType.ACK,
    PacketType.CONNECT_ERROR,
)


# Nesting the JSON parser accepts but that exhausts the Python stack when placeholders are put
# back: Python 3.12+ parses deeper than its recursion limit, 3.11 stops at that limit.
_DEEP = 900 if sys.version_info < (3, 12) else 1100


def ph(num: int) -> str:
    """The wire form of attachment placeholder ``num``."""
    return f'{{"_placeholder":true,"num":{num}}}'


# -- encode ---------------------------------------------------------------------------------

# (packet, Engine.IO messages: the text header, then the binary attachments)
ENCODED = [
    pytest.param(Packet(C), ["0"], id="connect"),
    pytest.param(Packet(C, data={"sid": "abc"}), ['0{"sid":"abc"}'], id="connect-payload"),
    pytest.param(Packet(C, "/admin"), ["0/admin,"], id="connect-namespace"),
    pytest.param(
        Packet(C, "/admin", {"token": "123"}),
        ['0/admin,{"token":"123"}'],
        id="connect-namespace-payload",
    ),
    pytest.param(Packet(D), ["1"], id="disconnect"),
    pytest.param(Packet(D, "/admin"), ["1/admin,"], id="disconnect-namespace"),
    pytest.param(Packet(E, data=["hello", 1]), ['2["hello",1]'], id="event"),
    pytest.param(Packet(E, data=["hello"]), ['2["hello"]'], id="event-no-args"),
    pytest.param(
        Packet(E, "/admin", ["project:delete", 123], 456),
        ['2/admin,456["project:delete",123]'],
        id="event-namespace-id",
    ),
    pytest.param(Packet(E, data=["a"], id=0), ['20["a"]'], id="event-id-0"),
    pytest.param(
        Packet(E, data=["a"], id=999_999_999_999_999),
        ['2999999999999999["a"]'],
        id="event-id-15-digits",
    ),
    pytest.param(
        Packet(E, data=["a", True, False, None, 1.5, -2]),
        ['2["a",true,false,null,1.5,-2]'],
        id="event-json-scalars",
    ),
    pytest.param(
        Packet(E, data=["a", {"b": [1, 2], "c": {"d": None}}]),
        ['2["a",{"b":[1,2],"c":{"d":null}}]'],
        id="event-compact-separators",
    ),
    pytest.param(
        Packet(E, data=["chat", "héllo ☃ 😀", {"clé": "€"}]),
        ['2["chat","héllo ☃ 😀",{"clé":"€"}]'],
        id="event-utf8-kept",
    ),
    pytest.param(Packet(E, data=("a", 1)), ['2["a",1]'], id="event-tuple-args"),
    pytest.param(Packet(E, "/ünï", ["a"]), ['2/ünï,["a"]'], id="event-utf8-namespace"),
    pytest.param(Packet(A, "/admin", [], 456), ["3/admin,456[]"], id="ack-empty"),
    pytest.param(Packet(A, data=["ok", 2], id=13), ['313["ok",2]'], id="ack"),
    pytest.param(
        Packet(X, data={"message": "Not authorized"}),
        ['4{"message":"Not authorized"}'],
        id="connect-error",
    ),
    pytest.param(
        Packet(X, "/admin", {"message": "Invalid namespace"}),
        ['4/admin,{"message":"Invalid namespace"}'],
        id="connect-error-namespace",
    ),
    pytest.param(
        Packet(X, data={"message": "No", "data": {"retry": False}}),
        ['4{"message":"No","data":{"retry":false}}'],
        id="connect-error-data",
    ),
    pytest.param(
        Packet(E, data=["hello", b"\x01\x02\x03"]),
        [f'51-["hello",{ph(0)}]', b"\x01\x02\x03"],
        id="binary-event",
    ),
    pytest.param(
        Packet(E, "/admin", ["up", b"\xff"], 7),
        [f'51-/admin,7["up",{ph(0)}]', b"\xff"],
        id="binary-event-namespace-id",
    ),
    pytest.param(
        Packet(A, "/admin", [b"\x01"], 456),
        [f"61-/admin,456[{ph(0)}]", b"\x01"],
        id="binary-ack",
    ),
    pytest.param(
        Packet(A, data=["ok", {"raw": b"\x00"}], id=0),
        [f'61-0["ok",{{"raw":{ph(0)}}}]', b"\x00"],
        id="binary-ack-id-0",
    ),
    pytest.param(
        Packet(E, data=["upload", {"files": [b"a", {"raw": b"b"}], "name": "x"}, b"c"]),
        [
            f'53-["upload",{{"files":[{ph(0)},{{"raw":{ph(1)}}}],"name":"x"}},{ph(2)}]',
            b"a",
            b"b",
            b"c",
        ],
        id="binary-nested-depth-first",
    ),
    pytest.param(
        Packet(E, data=["b", bytearray(b"ba"), memoryview(b"mv")]),
        [f'52-["b",{ph(0)},{ph(1)}]', b"ba", b"mv"],
        id="binary-bytearray-memoryview",
    ),
    pytest.param(Packet(E, data=["b", b""]), [f'51-["b",{ph(0)}]', b""], id="binary-empty"),
    pytest.param(
        Packet(E, data=["b", (b"x", "é")]),
        [f'51-["b",[{ph(0)},"é"]]', b"x"],
        id="binary-tuple-utf8",
    ),
]


@pytest.mark.parametrize(("packet", "wire"), ENCODED)
def test_encode(packet: Packet, wire: list[str | bytes]) -> None:
    encoded = encode(packet)
    assert encoded == wire
    assert all(type(part) is type(expected) for part, expected in zip(encoded, wire, strict=True))


def test_encode_leaves_the_packet_alone() -> None:
    data = ["hello", {"raw": b"\x01"}]
    packet = Packet(E, "/admin", data, 1)
    encode(packet)
    assert packet == Packet(E, "/admin", ["hello", {"raw": b"\x01"}], 1)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_encode_refuses_what_json_cannot_carry(value: float) -> None:
    # JavaScript's JSON.parse rejects NaN / Infinity: the client would drop the connection.
    with pytest.raises(ValueError, match="not JSON compliant"):
        encode(Packet(E, data=["x", value]))


@pytest.mark.parametrize("value", [{1, 2}, object(), 1j])
def test_encode_refuses_values_json_has_no_form_for(value: Any) -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        encode(Packet(E, data=["x", {"nested": [value]}]))


def test_encode_refuses_circular_values() -> None:
    loop: list[Any] = ["again"]
    loop.append(loop)
    with pytest.raises(ValueError, match="circular"):
        encode(Packet(E, data=["x", {"loop": loop}]))


def test_only_events_and_acks_carry_binary() -> None:
    with pytest.raises(TypeError, match="CONNECT packets cannot carry binary data"):
        encode(Packet(PacketType.CONNECT, data={"token": b"\x01"}))


# -- decode ---------------------------------------------------------------------------------

# (Engine.IO messages, packet, from_server)
DECODED = [
    pytest.param(["0"], Packet(C), False, id="connect"),
    pytest.param(['0{"token":"123"}'], Packet(C, data={"token": "123"}), False, id="connect-auth"),
    pytest.param(["0/admin,"], Packet(C, "/admin"), False, id="connect-namespace"),
    pytest.param(["0/admin"], Packet(C, "/admin"), False, id="connect-namespace-no-comma"),
    pytest.param(
        ['0/admin,{"token":"123"}'],
        Packet(C, "/admin", {"token": "123"}),
        False,
        id="connect-namespace-auth",
    ),
    pytest.param(
        ['0{"sid":"abc","pid":"p"}'],
        Packet(C, data={"sid": "abc", "pid": "p"}),
        True,
        id="connect-reply",
    ),
    pytest.param(["1"], Packet(D), False, id="disconnect"),
    pytest.param(["1/admin,"], Packet(D, "/admin"), False, id="disconnect-namespace"),
    pytest.param(['2["hello",1]'], Packet(E, data=["hello", 1]), False, id="event"),
    pytest.param(['2["hello"]'], Packet(E, data=["hello"]), False, id="event-no-args"),
    pytest.param(
        ['2/admin,456["project:delete",123]'],
        Packet(E, "/admin", ["project:delete", 123], 456),
        False,
        id="event-namespace-id",
    ),
    pytest.param(['20["a"]'], Packet(E, data=["a"], id=0), False, id="event-id-0"),
    pytest.param(['2007["a"]'], Packet(E, data=["a"], id=7), False, id="event-id-leading-zeros"),
    pytest.param(
        ['2999999999999999["a"]'],
        Packet(E, data=["a"], id=999_999_999_999_999),
        False,
        id="event-id-15-digits",
    ),
    pytest.param(
        ['2[ "a" , {"b" : [1, 2]} ]'],
        Packet(E, data=["a", {"b": [1, 2]}]),
        False,
        id="event-json-whitespace",
    ),
    pytest.param(
        ['2["chat","héllo ☃ 😀"]'],
        Packet(E, data=["chat", "héllo ☃ 😀"]),
        False,
        id="event-utf8",
    ),
    pytest.param(
        ['2["chat","\\u00e9\\ud83d\\ude00"]'],
        Packet(E, data=["chat", "é😀"]),
        False,
        id="event-json-escapes",
    ),
    pytest.param(['2/ünï,["a"]'], Packet(E, "/ünï", ["a"]), False, id="event-utf8-namespace"),
    pytest.param(['2["Connect"]'], Packet(E, data=["Connect"]), False, id="event-reserved-case"),
    pytest.param(['2[""]'], Packet(E, data=[""]), False, id="event-empty-name"),
    pytest.param(["3/admin,456[]"], Packet(A, "/admin", [], 456), False, id="ack-empty"),
    pytest.param(['313["ok",2]'], Packet(A, data=["ok", 2], id=13), False, id="ack"),
    pytest.param(
        ['4{"message":"Not authorized"}'],
        Packet(X, data={"message": "Not authorized"}),
        True,
        id="connect-error",
    ),
    pytest.param(
        ['4/admin,{"message":"Invalid namespace","data":{"x":1}}'],
        Packet(X, "/admin", {"message": "Invalid namespace", "data": {"x": 1}}),
        True,
        id="connect-error-namespace-data",
    ),
    pytest.param(
        ['4"Not authorized"'], Packet(X, data="Not authorized"), True, id="connect-error-string"
    ),
    pytest.param(
        [f'51-["hello",{ph(0)}]', b"\x01\x02\x03"],
        Packet(E, data=["hello", b"\x01\x02\x03"]),
        False,
        id="binary-event",
    ),
    pytest.param(
        [f'51-/admin,7["up",{ph(0)}]', b"\xff"],
        Packet(E, "/admin", ["up", b"\xff"], 7),
        False,
        id="binary-event-namespace-id",
    ),
    pytest.param(
        [f"61-/admin,456[{ph(0)}]", b"\x01"],
        Packet(A, "/admin", [b"\x01"], 456),
        False,
        id="binary-ack",
    ),
    pytest.param(
        [
            f'53-["upload",{{"files":[{ph(0)},{{"raw":{ph(1)}}}],"name":"x"}},{ph(2)}]',
            b"a",
            b"b",
            b"c",
        ],
        Packet(E, data=["upload", {"files": [b"a", {"raw": b"b"}], "name": "x"}, b"c"]),
        False,
        id="binary-nested-in-place",
    ),
    pytest.param(
        [f'52-["b",{ph(1)},[{ph(0)},{ph(1)}]]', b"zero", b"one"],
        Packet(E, data=["b", b"one", [b"zero", b"one"]]),
        False,
        id="binary-out-of-order-and-reused",
    ),
    pytest.param(
        [f'52-["b",{ph(0)}]', b"used", b"unused"],
        Packet(E, data=["b", b"used"]),
        False,
        id="binary-attachment-unreferenced",
    ),
    pytest.param(
        [f'51-["b",{ph(0)}]', b""], Packet(E, data=["b", b""]), False, id="binary-empty-attachment"
    ),
    pytest.param(
        ['51-["b",{"_placeholder":false,"num":0}]', b"x"],
        Packet(E, data=["b", {"_placeholder": False, "num": 0}]),
        False,
        id="binary-not-a-placeholder",
    ),
    pytest.param(
        [f'510-["b",{",".join(ph(i) for i in range(10))}]', *(bytes([i]) for i in range(10))],
        Packet(E, data=["b", *(bytes([i]) for i in range(10))]),
        False,
        id="binary-max-attachments",
    ),
]


@pytest.mark.parametrize(("messages", "packet", "from_server"), DECODED)
def test_decode(messages: list[str | bytes], packet: Packet, from_server: bool) -> None:
    decoder = Decoder(from_server=from_server)
    *waiting, last = messages
    for message in waiting:
        assert decoder.feed(message) is None
    assert decoder.feed(last) == packet


def test_decoder_carries_on_after_a_binary_packet() -> None:
    decoder = Decoder()
    assert decoder.feed(f'51-["a",{ph(0)}]') is None
    assert decoder.feed(b"1") == Packet(E, data=["a", b"1"])
    assert decoder.feed(f'52-["b",{ph(0)},{ph(1)}]') is None
    assert decoder.feed(b"2") is None
    assert decoder.feed(b"3") == Packet(E, data=["b", b"2", b"3"])
    assert decoder.feed('2["c"]') == Packet(E, data=["c"])


# A server never sends CONNECT without its {sid} payload.
SERVER_SENT = [row for row in ENCODED if row.values[0] != Packet(C, row.values[0].namespace)]


@pytest.mark.parametrize(("packet", "wire"), SERVER_SENT)
def test_encoded_packets_decode_back(packet: Packet, wire: list[str | bytes]) -> None:
    # What the server encodes, its own test client (from_server=True) reads back unchanged,
    # bytes-like values as bytes and tuples as lists.
    decoder = Decoder(from_server=True)
    *waiting, last = encode(packet)
    for message in waiting:
        assert decoder.feed(message) is None
    decoded = decoder.feed(last)
    assert decoded is not None
    assert (decoded.type, decoded.namespace, decoded.id) == (
        packet.type,
        packet.namespace,
        packet.id,
    )
    assert decoded.data == _plain(packet.data)


def _plain(data: Any) -> Any:
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    if isinstance(data, list | tuple):
        return [_plain(item) for item in data]
    if isinstance(data, dict):
        return {key: _plain(value) for key, value in data.items()}
    return data


# -- malformed packets ----------------------------------------------------------------------

DEEP = 100_000  # nesting far beyond the recursion limit

# (Engine.IO messages, the error message (regex), decoder options); every message but the
# last is accepted, the last raises.
MALFORMED = [
    pytest.param([""], r"^empty packet$", {}, id="empty"),
    pytest.param(["7"], r"^unknown packet type '7' at byte 0$", {}, id="type-7"),
    pytest.param(['9["a"]'], r"^unknown packet type '9' at byte 0$", {}, id="type-9"),
    pytest.param(['x["a"]'], r"^unknown packet type 'x' at byte 0$", {}, id="type-letter"),
    pytest.param([' 2["a"]'], r"^unknown packet type ' ' at byte 0$", {}, id="type-space"),
    pytest.param(['-2["a"]'], r"^unknown packet type '-' at byte 0$", {}, id="type-minus"),
    # int() reads any Unicode digit; the wire format has ASCII digits only.
    pytest.param(['٢["a"]'], r"^unknown packet type '٢' at byte 0$", {}, id="type-arabic-digit"),
    pytest.param(['²["a"]'], r"^unknown packet type '²' at byte 0$", {}, id="type-superscript"),
    pytest.param(["5"], r"^bad attachment count at byte 1$", {}, id="binary-no-count"),
    pytest.param(['5-["a"]'], r"^bad attachment count at byte 1$", {}, id="binary-empty-count"),
    pytest.param(['51["a"]'], r"^bad attachment count at byte 1$", {}, id="binary-no-dash"),
    pytest.param(['51["a-b"]'], r"^bad attachment count at byte 1$", {}, id="binary-dash-in-json"),
    pytest.param(['5x-["a"]'], r"^bad attachment count at byte 1$", {}, id="binary-count-letter"),
    pytest.param(['5-1-["a"]'], r"^bad attachment count at byte 1$", {}, id="binary-count-sign"),
    pytest.param(['5²-["a"]'], r"^bad attachment count at byte 1$", {}, id="binary-count-unicode"),
    pytest.param(
        ['50-["a"]'], r"^0 attachments announced; 1 to 10 allowed$", {}, id="binary-count-0"
    ),
    pytest.param(
        ['60-1["a"]'], r"^0 attachments announced; 1 to 10 allowed$", {}, id="binary-ack-count-0"
    ),
    pytest.param(
        ['511-["a"]'], r"^11 attachments announced; 1 to 10 allowed$", {}, id="binary-count-11"
    ),
    pytest.param(
        [f'53-["a",{ph(0)},{ph(1)},{ph(2)}]'],
        r"^3 attachments announced; 1 to 2 allowed$",
        {"max_attachments": 2},
        id="binary-count-over-max",
    ),
    pytest.param(
        ['599999999999999999999-["a"]'],
        r"^99999999999999999999 attachments announced; 1 to 10 allowed$",
        {},
        id="binary-count-huge",
    ),
    pytest.param(
        ['21234567890123456["a"]'],
        r"^ack id longer than 15 digits at byte 1$",
        {},
        id="id-16-digits",
    ),
    pytest.param(
        ['2/admin,1234567890123456["a"]'],
        r"^ack id longer than 15 digits at byte 8$",
        {},
        id="id-16-digits-namespace",
    ),
    pytest.param(
        ["3" + "9" * 400 + "[]"],
        r"^ack id longer than 15 digits at byte 1$",
        {},
        id="id-400-digits",
    ),
    pytest.param(['2["a",]'], r"^invalid JSON at byte 1: ", {}, id="json-trailing-comma"),
    pytest.param(['2["a"'], r"^invalid JSON at byte 1: ", {}, id="json-unterminated"),
    pytest.param(['2["a"]x'], r"^invalid JSON at byte 1: Extra data", {}, id="json-extra-data"),
    pytest.param(['2/admin,["a"'], r"^invalid JSON at byte 8: ", {}, id="json-after-namespace"),
    pytest.param(['212["a"'], r"^invalid JSON at byte 3: ", {}, id="json-after-id"),
    pytest.param(["2['a']"], r"^invalid JSON at byte 1: ", {}, id="json-single-quotes"),
    pytest.param(
        ['2["a",NaN]'], r"^invalid JSON at byte 1: NaN is not valid JSON$", {}, id="json-nan"
    ),
    pytest.param(
        ['2["a",Infinity]'],
        r"^invalid JSON at byte 1: Infinity is not valid JSON$",
        {},
        id="json-infinity",
    ),
    pytest.param(
        ['2["a",-Infinity]'],
        r"^invalid JSON at byte 1: -Infinity is not valid JSON$",
        {},
        id="json-minus-infinity",
    ),
    pytest.param(
        ['2["a",' + "1" * 5000 + "]"], r"^invalid JSON at byte 1: ", {}, id="json-huge-int"
    ),
    pytest.param(["2" + "[" * DEEP], r"^invalid JSON at byte 1: ", {}, id="json-too-deep"),
    pytest.param(['0"token"'], r"^invalid CONNECT packet payload: 'token'$", {}, id="connect-str"),
    pytest.param(["0[1]"], r"^invalid CONNECT packet payload: \[1\]$", {}, id="connect-list"),
    pytest.param(
        ["0"], r"^invalid CONNECT packet payload: None$", {"from_server": True}, id="reply-empty"
    ),
    pytest.param(["1{}"], r"^invalid DISCONNECT packet payload: \{\}$", {}, id="disconnect-obj"),
    pytest.param(['1["a"]'], r"^invalid DISCONNECT packet payload", {}, id="disconnect-list"),
    pytest.param(["1/admin,0"], r"^invalid DISCONNECT packet payload", {}, id="disconnect-id"),
    pytest.param(["2"], r"^invalid EVENT packet payload: None$", {}, id="event-no-payload"),
    pytest.param(["2/admin,1"], r"^invalid EVENT packet payload: None$", {}, id="event-id-only"),
    pytest.param(['2{"a":1}'], r"^invalid EVENT packet payload", {}, id="event-object"),
    pytest.param(['2"hello"'], r"^invalid EVENT packet payload", {}, id="event-string"),
    pytest.param(["2[]"], r"^invalid EVENT packet payload: \[\]$", {}, id="event-empty"),
    pytest.param(["2[1]"], r"^invalid EVENT packet payload: \[1\]$", {}, id="event-number-name"),
    pytest.param(["2[null]"], r"^invalid EVENT packet payload", {}, id="event-null-name"),
    pytest.param(['2[["a"]]'], r"^invalid EVENT packet payload", {}, id="event-list-name"),
    *(
        pytest.param(
            [f'2["{name}",1]'],
            rf"^invalid EVENT packet payload: \['{name}', 1\]$",
            {},
            id=f"event-reserved-{name}",
        )
        for name in sorted(RESERVED_EVENTS)
    ),
    pytest.param(["3[]"], r"^invalid ACK packet payload: \[\]$", {}, id="ack-no-id"),
    pytest.param(['3/admin,["a"]'], r"^invalid ACK packet payload", {}, id="ack-namespace-no-id"),
    pytest.param(['31{"a":1}'], r"^invalid ACK packet payload", {}, id="ack-object"),
    pytest.param(['31"ok"'], r"^invalid ACK packet payload", {}, id="ack-string"),
    pytest.param(["31"], r"^invalid ACK packet payload: None$", {}, id="ack-no-payload"),
    pytest.param(
        ['4{"message":"no"}'], r"^invalid CONNECT_ERROR packet payload", {}, id="client-conn-error"
    ),
    pytest.param(["4"], r"^invalid CONNECT_ERROR packet payload", {}, id="client-conn-error-bare"),
    pytest.param(
        ["4[1]"],
        r"^invalid CONNECT_ERROR packet payload",
        {"from_server": True},
        id="connect-error-list",
    ),
    pytest.param(
        ["41"],
        r"^invalid CONNECT_ERROR packet payload",
        {"from_server": True},
        id="connect-error-number",
    ),
    pytest.param([b"\x01"], r"^unexpected binary message", {}, id="binary-unannounced"),
    pytest.param(
        ['2["a"]', b"\x01"], r"^unexpected binary message", {}, id="binary-after-text-packet"
    ),
    pytest.param(
        [f'51-["a",{ph(0)}]', b"\x01", b"\x02"],
        r"^unexpected binary message",
        {},
        id="binary-one-too-many",
    ),
    pytest.param(
        [f'52-["a",{ph(0)},{ph(1)}]', b"\x01", '2["b"]'],
        r"^text message while binary attachments were expected$",
        {},
        id="text-between-attachments",
    ),
    pytest.param(
        [f'51-["a",{ph(0)}]', '2["b"]'],
        r"^text message while binary attachments were expected$",
        {},
        id="text-instead-of-attachment",
    ),
    pytest.param(
        [f'51-["a",{ph(1)}]', b"x"], r"^attachment placeholder with bad num 1$", {}, id="num-high"
    ),
    pytest.param(
        ['51-["a",{"_placeholder":true,"num":-1}]', b"x"],
        r"^attachment placeholder with bad num -1$",
        {},
        id="num-negative",
    ),
    pytest.param(
        ['51-["a",{"_placeholder":true,"num":"0"}]', b"x"],
        r"^attachment placeholder with bad num '0'$",
        {},
        id="num-string",
    ),
    pytest.param(
        ['51-["a",{"_placeholder":true,"num":true}]', b"x"],
        r"^attachment placeholder with bad num True$",
        {},
        id="num-bool",
    ),
    pytest.param(
        ['51-["a",{"_placeholder":true,"num":0.0}]', b"x"],
        r"^attachment placeholder with bad num 0.0$",
        {},
        id="num-float",
    ),
    pytest.param(
        ['51-["a",{"_placeholder":true,"n":0}]', b"x"],
        r"^attachment placeholder with bad num None$",
        {},
        id="num-missing",
    ),
    pytest.param(
        [f'51-["a",{{"deep":[[{ph(3)}]]}}]', b"x"],
        r"^attachment placeholder with bad num 3$",
        {},
        id="num-high-nested",
    ),
    pytest.param(
        [f'51-["a",{"[" * _DEEP}{ph(0)}{"]" * _DEEP}]', b"x"],
        r"^attachment placeholders nested too deeply$",
        {},
        id="placeholder-too-deep",
    ),
    pytest.param(
        [f'51-{{"a":{ph(0)}}}', b"x"],
        r"^invalid EVENT packet payload",
        {},
        id="binary-event-object",
    ),
    pytest.param(
        [f"51-[{ph(0)}]", b"x"],
        r"^invalid EVENT packet payload: \[b'x'\]$",
        {},
        id="binary-event-bytes-name",
    ),
    pytest.param(
        [f'51-["disconnect",{ph(0)}]', b"x"],
        r"^invalid EVENT packet payload",
        {},
        id="binary-event-reserved",
    ),
    pytest.param(
        [f"61-[{ph(0)}]", b"x"], r"^invalid ACK packet payload", {}, id="binary-ack-no-id"
    ),
]


@pytest.mark.parametrize(("messages", "error", "options"), MALFORMED)
def test_malformed(messages: list[str | bytes], error: str, options: dict[str, Any]) -> None:
    decoder = Decoder(**options)
    *accepted, last = messages
    for message in accepted:
        decoder.feed(message)
    with pytest.raises(SocketIOParseError, match=error):
        decoder.feed(last)


def test_parse_errors_are_value_errors() -> None:
    assert issubclass(SocketIOParseError, ValueError)


def test_payload_shown_in_errors_is_truncated() -> None:
    with pytest.raises(SocketIOParseError) as info:
        Decoder().feed('2[1,"' + "x" * 1000 + '"]')
    assert len(str(info.value)) < 120


# -- event names ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["chat", "", "message-back", "Connect", "connect ", "é"])
def test_event_names_allowed(name: str) -> None:
    validate_event_name(name)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        *(
            pytest.param(name, rf"^'{name}' is a reserved event name$", id=name)
            for name in sorted(RESERVED_EVENTS)
        ),
        pytest.param(None, r"^event names must be strings, not NoneType$", id="none"),
        pytest.param(1, r"^event names must be strings, not int$", id="int"),
        pytest.param(b"chat", r"^event names must be strings, not bytes$", id="bytes"),
        pytest.param(["chat"], r"^event names must be strings, not list$", id="list"),
    ],
)
def test_event_names_refused(name: Any, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        validate_event_name(name)


def test_reserved_events_are_socket_io_s() -> None:
    assert sorted(RESERVED_EVENTS) == [
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "newListener",
        "removeListener",
    ]
