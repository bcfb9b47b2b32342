"""The Engine.IO v4 packet and payload codec, one table row per wire string."""

from __future__ import annotations

import pytest

from channels_sio.engineio.packet import (
    SEPARATOR,
    Packet,
    PacketType,
    ParseError,
    decode_packet,
    decode_payload,
    encode_packet,
    encode_payload,
)

HANDSHAKE = (
    '{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,'
    '"pingTimeout":20000,"maxPayload":1000000}'
)

# (packet, wire string) -- identical for WebSocket text frames and for payload records.
TEXT_PACKETS = [
    pytest.param(Packet(PacketType.OPEN, HANDSHAKE), "0" + HANDSHAKE, id="open-handshake"),
    pytest.param(Packet(PacketType.OPEN), "0", id="open-empty"),
    pytest.param(Packet(PacketType.CLOSE), "1", id="close"),
    pytest.param(Packet(PacketType.PING), "2", id="ping"),
    pytest.param(Packet(PacketType.PING, "probe"), "2probe", id="ping-probe"),
    pytest.param(Packet(PacketType.PONG), "3", id="pong"),
    pytest.param(Packet(PacketType.PONG, "probe"), "3probe", id="pong-probe"),
    pytest.param(Packet(PacketType.MESSAGE, "hello"), "4hello", id="message"),
    pytest.param(Packet(PacketType.MESSAGE), "4", id="message-empty"),
    pytest.param(Packet(PacketType.MESSAGE, "4"), "44", id="message-digit"),
    pytest.param(Packet(PacketType.MESSAGE, "b"), "4b", id="message-text-b"),
    pytest.param(Packet(PacketType.MESSAGE, "héllo ☃ 😀"), "4héllo ☃ 😀", id="message-unicode"),
    pytest.param(Packet(PacketType.MESSAGE, "€"), "4€", id="message-euro"),
    pytest.param(
        Packet(PacketType.MESSAGE, '2["chat","hi"]'), '42["chat","hi"]', id="message-socketio"
    ),
    pytest.param(Packet(PacketType.MESSAGE, " \n\t"), "4 \n\t", id="message-whitespace"),
    pytest.param(Packet(PacketType.UPGRADE), "5", id="upgrade"),
    pytest.param(Packet(PacketType.NOOP), "6", id="noop"),
]

# (packet, raw WebSocket frame, payload record)
BINARY_PACKETS = [
    pytest.param(
        Packet(PacketType.MESSAGE, b"\x01\x02\x03\x04"),
        b"\x01\x02\x03\x04",
        "bAQIDBA==",
        id="four-bytes",
    ),
    pytest.param(Packet(PacketType.MESSAGE, b"\x00\x01\x02"), b"\x00\x01\x02", "bAAEC", id="nul"),
    pytest.param(Packet(PacketType.MESSAGE, b"\x00\x01"), b"\x00\x01", "bAAE=", id="one-pad"),
    pytest.param(Packet(PacketType.MESSAGE, b"\xff"), b"\xff", "b/w==", id="two-pad"),
    pytest.param(Packet(PacketType.MESSAGE, b"\xfb\xff"), b"\xfb\xff", "b+/8=", id="plus-slash"),
    pytest.param(Packet(PacketType.MESSAGE, b"4hi"), b"4hi", "bNGhp", id="looks-like-text"),
    pytest.param(Packet(PacketType.MESSAGE, b"\x1e"), b"\x1e", "bHg==", id="separator-byte"),
    pytest.param(Packet(PacketType.MESSAGE, b""), b"", "b", id="empty"),
]

NON_MESSAGE_TYPES = [t for t in PacketType if t is not PacketType.MESSAGE]


def test_packet_type_digits() -> None:
    assert {t.name: int(t) for t in PacketType} == {
        "OPEN": 0,
        "CLOSE": 1,
        "PING": 2,
        "PONG": 3,
        "MESSAGE": 4,
        "UPGRADE": 5,
        "NOOP": 6,
    }


def test_separator_is_record_separator() -> None:
    assert SEPARATOR == "\x1e"


def test_packet_default_data_is_empty_text() -> None:
    assert Packet(PacketType.PING).data == ""


# -- single packets: text -----------------------------------------------------------------


@pytest.mark.parametrize(("packet", "wire"), TEXT_PACKETS)
@pytest.mark.parametrize("binary_frames", [True, False])
def test_encode_text_packet(packet: Packet, wire: str, binary_frames: bool) -> None:
    encoded = encode_packet(packet, binary_frames=binary_frames)
    assert type(encoded) is str
    assert encoded == wire


@pytest.mark.parametrize(("packet", "wire"), TEXT_PACKETS)
def test_decode_text_packet(packet: Packet, wire: str) -> None:
    decoded = decode_packet(wire)
    assert decoded == packet
    assert decoded.type is packet.type
    assert type(decoded.data) is str


# -- single packets: binary ---------------------------------------------------------------


@pytest.mark.parametrize(("packet", "frame", "record"), BINARY_PACKETS)
def test_encode_binary_as_frame(packet: Packet, frame: bytes, record: str) -> None:
    encoded = encode_packet(packet, binary_frames=True)
    assert type(encoded) is bytes
    assert encoded == frame


@pytest.mark.parametrize(("packet", "frame", "record"), BINARY_PACKETS)
def test_encode_binary_as_base64(packet: Packet, frame: bytes, record: str) -> None:
    encoded = encode_packet(packet, binary_frames=False)
    assert type(encoded) is str
    assert encoded == record


@pytest.mark.parametrize(("packet", "frame", "record"), BINARY_PACKETS)
def test_decode_binary_frame(packet: Packet, frame: bytes, record: str) -> None:
    decoded = decode_packet(frame)
    assert decoded == Packet(PacketType.MESSAGE, frame)
    assert type(decoded.data) is bytes


@pytest.mark.parametrize(("packet", "frame", "record"), BINARY_PACKETS)
def test_decode_base64_record(packet: Packet, frame: bytes, record: str) -> None:
    decoded = decode_packet(record)
    assert decoded == packet
    assert decoded.type is PacketType.MESSAGE
    assert type(decoded.data) is bytes


def test_encode_binary_frames_is_the_default() -> None:
    assert encode_packet(Packet(PacketType.MESSAGE, b"\x01")) == b"\x01"


def test_binary_frame_is_always_a_message() -> None:
    # A binary WebSocket frame carries no type digit: b"2" is the bytes 0x32, not a ping.
    assert decode_packet(b"2") == Packet(PacketType.MESSAGE, b"2")


def test_text_and_binary_messages_differ() -> None:
    assert decode_packet("4AQID") != decode_packet("bAQID")
    assert decode_packet("4AQID") == Packet(PacketType.MESSAGE, "AQID")
    assert decode_packet("bAQID") == Packet(PacketType.MESSAGE, b"\x01\x02\x03")


@pytest.mark.parametrize("packet_type", NON_MESSAGE_TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("binary_frames", [True, False])
def test_encode_refuses_binary_on_non_message(packet_type: PacketType, binary_frames: bool) -> None:
    with pytest.raises(
        ValueError, match=f"only MESSAGE packets carry binary data, not {packet_type.name}"
    ) as info:
        encode_packet(Packet(packet_type, b"\x01"), binary_frames=binary_frames)
    # A programming error of the sender, not a parse error of peer input.
    assert not isinstance(info.value, ParseError)


# -- single packets: errors ---------------------------------------------------------------


def test_parse_error_is_a_value_error() -> None:
    assert issubclass(ParseError, ValueError)


def test_decode_empty_packet() -> None:
    with pytest.raises(ParseError, match=r"^empty packet$"):
        decode_packet("")


@pytest.mark.parametrize(
    ("wire", "head"),
    [
        pytest.param("7", "7", id="seven"),
        pytest.param("8hello", "8", id="eight"),
        pytest.param("9", "9", id="nine"),
        pytest.param("x", "x", id="letter"),
        pytest.param("B", "B", id="capital-b"),
        pytest.param(" 4hello", " ", id="leading-space"),
        pytest.param("-1", "-", id="minus"),
        pytest.param("\x1e", "\x1e", id="separator"),
        pytest.param("é", "é", id="unicode"),
        pytest.param("{}", "{", id="json"),
    ],
)
def test_decode_unknown_type(wire: str, head: str) -> None:
    with pytest.raises(ParseError) as info:
        decode_packet(wire)
    assert str(info.value) == f"unknown packet type {head!r} at byte 0"


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param("b!!!", id="not-base64"),
        pytest.param("babc", id="missing-padding"),
        pytest.param("bAAE", id="missing-one-pad"),
        pytest.param("bA", id="one-char"),
        pytest.param("b====", id="only-padding"),
        pytest.param("bAQID BA==", id="space"),
        pytest.param("bAQID\nBA==", id="newline"),
        pytest.param("bAQ-_", id="urlsafe-alphabet"),
        pytest.param("bé", id="non-ascii"),
    ],
)
def test_decode_bad_base64(wire: str) -> None:
    with pytest.raises(ParseError, match=r"^invalid base64 in binary packet: "):
        decode_packet(wire)


# -- payloads -----------------------------------------------------------------------------

PAYLOADS = [
    pytest.param([Packet(PacketType.MESSAGE, "hello")], "4hello", id="one"),
    pytest.param(
        [Packet(PacketType.MESSAGE, "hello"), Packet(PacketType.MESSAGE, "€")],
        "4hello\x1e4€",
        id="two-text",
    ),
    pytest.param(
        [Packet(PacketType.MESSAGE, "hello"), Packet(PacketType.MESSAGE, b"\x01\x02\x03\x04")],
        "4hello\x1ebAQIDBA==",
        id="text-and-binary",
    ),
    pytest.param(
        [Packet(PacketType.MESSAGE, b"\x01"), Packet(PacketType.MESSAGE, b"")],
        "bAQ==\x1eb",
        id="binary-and-empty-binary",
    ),
    pytest.param(
        [Packet(PacketType.MESSAGE), Packet(PacketType.MESSAGE)], "4\x1e4", id="empty-messages"
    ),
    pytest.param(
        [Packet(PacketType.OPEN, HANDSHAKE), Packet(PacketType.MESSAGE, "0")],
        "0" + HANDSHAKE + "\x1e40",
        id="open-then-message",
    ),
    pytest.param(
        [
            Packet(PacketType.PONG),
            Packet(PacketType.MESSAGE, "a"),
            Packet(PacketType.NOOP),
            Packet(PacketType.CLOSE),
        ],
        "3\x1e4a\x1e6\x1e1",
        id="mixed-types",
    ),
    pytest.param(
        [Packet(PacketType.MESSAGE, "😀"), Packet(PacketType.PING)], "4😀\x1e2", id="unicode"
    ),
    pytest.param([Packet(PacketType.NOOP)], "6", id="noop"),
    pytest.param([Packet(PacketType.CLOSE)], "1", id="close"),
]


@pytest.mark.parametrize(("packets", "body"), PAYLOADS)
def test_encode_payload(packets: list[Packet], body: str) -> None:
    encoded = encode_payload(packets)
    assert type(encoded) is str
    assert encoded == body


@pytest.mark.parametrize(("packets", "body"), PAYLOADS)
def test_decode_payload(packets: list[Packet], body: str) -> None:
    assert decode_payload(body) == packets


def test_encode_payload_of_nothing_is_empty() -> None:
    assert encode_payload([]) == ""


def test_decode_empty_payload() -> None:
    with pytest.raises(ParseError, match=r"^empty payload$"):
        decode_payload("")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param("\x1e", "record 0: empty packet", id="only-separator"),
        pytest.param("\x1e4a", "record 0: empty packet", id="leading-separator"),
        pytest.param("4a\x1e", "record 1: empty packet", id="trailing-separator"),
        pytest.param("4a\x1e\x1e4b", "record 1: empty packet", id="double-separator"),
        pytest.param("7", "record 0: unknown packet type '7' at byte 0", id="first-bad-type"),
        pytest.param(
            "4a\x1e4b\x1ex", "record 2: unknown packet type 'x' at byte 0", id="third-bad-type"
        ),
        pytest.param(
            "4a\x1eb!!!\x1e4c",
            "record 1: invalid base64 in binary packet: Only base64 data is allowed",
            id="second-bad-base64",
        ),
        pytest.param("4a\x1e4b\x1e4c\x1e4d\x1e\x1e4f", "record 4: empty packet", id="fifth-empty"),
    ],
)
def test_decode_payload_names_the_bad_record(body: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        decode_payload(body)
    assert str(info.value) == message


def test_decode_payload_reports_the_first_bad_record() -> None:
    with pytest.raises(ParseError) as info:
        decode_payload("4a\x1e9\x1e8")
    assert str(info.value) == "record 1: unknown packet type '9' at byte 0"


@pytest.mark.parametrize(("packet", "wire"), TEXT_PACKETS)
def test_single_text_packet_payload_round_trip(packet: Packet, wire: str) -> None:
    assert encode_payload([packet]) == wire
    assert decode_payload(wire) == [packet]


@pytest.mark.parametrize(("packet", "frame", "record"), BINARY_PACKETS)
def test_single_binary_packet_payload_round_trip(packet: Packet, frame: bytes, record: str) -> None:
    assert encode_payload([packet]) == record
    assert decode_payload(record) == [packet]
