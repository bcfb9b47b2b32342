"""Property tests of the Socket.IO codec (hypothesis): any sequence of Engine.IO messages
decodes to packets or raises SocketIOParseError, and encoding then decoding gives back every
packet a client may send (binary attachments included), and every one a server may send."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from channels_sio.socketio.packet import (
    MAX_ID_DIGITS,
    RESERVED_EVENTS,
    Decoder,
    Packet,
    PacketType,
    SocketIOParseError,
    encode,
)

PROPERTIES = settings(max_examples=400, deadline=None)
MAX_ATTACHMENTS = 10

# Text that looks like Socket.IO now and then: digits, namespaces, ids, JSON and placeholders.
wire_text = st.one_of(
    st.text(),
    st.lists(
        st.sampled_from(
            [
                "2",
                "5",
                "6",
                "0",
                "1",
                "3",
                "4",
                "7",
                "1-",
                "12-",
                "/chat",
                ",",
                "17",
                "[",
                "]",
                "{",
                "}",
                '"ev"',
                ",",
                "1",
                "null",
                '{"_placeholder":true,"num":0}',
                '"',
                "٢",
            ]
        )
    ).map("".join),
)
messages = st.lists(st.one_of(wire_text, st.binary(max_size=8)), max_size=6)


@PROPERTIES
@given(messages, st.booleans())
def test_any_messages_decode_or_are_a_parse_error(
    sequence: list[str | bytes], from_server: bool
) -> None:
    decoder = Decoder(MAX_ATTACHMENTS, from_server=from_server)
    for message in sequence:
        try:
            packet = decoder.feed(message)
        except SocketIOParseError:
            return  # the connection closes here: nothing after it is read
        if packet is not None:
            assert isinstance(packet, Packet)
            assert isinstance(packet.type, PacketType)
            assert packet.type in (
                PacketType.CONNECT,
                PacketType.DISCONNECT,
                PacketType.EVENT,
                PacketType.ACK,
                PacketType.CONNECT_ERROR,
            )


def _no_placeholder(value: dict[str, Any]) -> bool:
    # A dict shaped like an attachment placeholder is one, for socket.io's parser too.
    return "_placeholder" not in value


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=8), inner, max_size=4).filter(_no_placeholder),
    ),
    max_leaves=12,
)
# The same with bytes anywhere (each becomes an attachment), at most MAX_ATTACHMENTS of them.
binary_values = st.recursive(
    st.one_of(json_scalars, st.binary(max_size=16)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(max_size=8), inner, max_size=3).filter(_no_placeholder),
    ),
    max_leaves=MAX_ATTACHMENTS,
)
namespaces = st.one_of(
    st.just("/"), st.text(min_size=1).filter(lambda text: "," not in text).map("/{}".format)
)
ack_ids = st.integers(min_value=0, max_value=10**MAX_ID_DIGITS - 1)
events = st.text().filter(lambda name: name not in RESERVED_EVENTS)
arguments = st.lists(st.one_of(json_values, binary_values), max_size=4)

client_packets = st.one_of(
    st.builds(
        Packet,
        st.just(PacketType.EVENT),
        namespaces,
        st.tuples(events, arguments).map(lambda pair: [pair[0], *pair[1]]),
        st.none() | ack_ids,
    ),
    st.builds(Packet, st.just(PacketType.ACK), namespaces, arguments, ack_ids),
    st.builds(
        Packet,
        st.just(PacketType.CONNECT),
        namespaces,
        st.none() | st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    ),
    st.builds(Packet, st.just(PacketType.DISCONNECT), namespaces),
)
server_packets = st.one_of(
    st.builds(
        Packet,
        st.just(PacketType.CONNECT),
        namespaces,
        st.fixed_dictionaries({"sid": st.text(min_size=1)}),
    ),
    st.builds(
        Packet,
        st.just(PacketType.CONNECT_ERROR),
        namespaces,
        st.fixed_dictionaries({"message": st.text()}) | st.text(),
    ),
)


def _count_bytes(value: Any) -> int:
    if isinstance(value, bytes):
        return 1
    if isinstance(value, list):
        return sum(_count_bytes(item) for item in value)
    if isinstance(value, dict):
        return sum(_count_bytes(item) for item in value.values())
    return 0


def _round_trip(packet: Packet, from_server: bool) -> Packet | None:
    decoder = Decoder(max_attachments=10**6, from_server=from_server)
    decoded = None
    for message in encode(packet):
        assert decoded is None, "a packet was complete before its last message"
        decoded = decoder.feed(message)
    return decoded


@PROPERTIES
@given(client_packets)
def test_a_client_packet_survives_encoding(packet: Packet) -> None:
    expected = Packet(packet.type, packet.namespace, packet.data, packet.id)
    parts = encode(packet)
    assert len(parts) == 1 + _count_bytes(packet.data)
    assert _round_trip(packet, from_server=False) == expected


@PROPERTIES
@given(server_packets)
def test_a_server_packet_survives_encoding(packet: Packet) -> None:
    expected = Packet(packet.type, packet.namespace, packet.data, packet.id)
    assert _round_trip(packet, from_server=True) == expected
