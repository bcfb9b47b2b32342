"""Property tests of the Engine.IO codec (hypothesis): any input decodes to packets or raises
ParseError, and encoding then decoding gives back every valid packet."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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

PROPERTIES = settings(max_examples=400, deadline=None)

# Text that looks like the wire now and then: packet digits, "b", base64 and the separator.
wire_text = st.one_of(
    st.text(),
    st.text(alphabet="0123456789b+/=AZaz\x1e", max_size=40),
    st.lists(st.sampled_from(["4", "b", "2", "3", "1", "6", "AQID", "==", "\x1e", "é"])).map(
        "".join
    ),
)

text_packets = st.builds(Packet, st.sampled_from(list(PacketType)), st.text())
binary_packets = st.builds(Packet, st.just(PacketType.MESSAGE), st.binary())


@PROPERTIES
@given(st.one_of(wire_text, st.binary()))
def test_any_packet_decodes_or_is_a_parse_error(raw: str | bytes) -> None:
    try:
        packet = decode_packet(raw)
    except ParseError:
        return
    assert isinstance(packet, Packet)
    assert isinstance(packet.type, PacketType)


@PROPERTIES
@given(wire_text)
def test_any_payload_decodes_or_is_a_parse_error(body: str) -> None:
    try:
        packets = decode_payload(body)
    except ParseError:
        return
    assert packets
    assert len(packets) == body.count(SEPARATOR) + 1


@PROPERTIES
@given(st.one_of(text_packets, binary_packets), st.booleans())
def test_a_packet_survives_encoding(packet: Packet, binary_frames: bool) -> None:
    assert decode_packet(encode_packet(packet, binary_frames=binary_frames)) == packet


@PROPERTIES
@given(
    st.lists(
        st.one_of(
            # A text message holding the separator cannot travel in a payload (nor in
            # engine.io's): the clients never write one.
            st.builds(
                Packet,
                st.sampled_from(list(PacketType)),
                st.text().filter(lambda text: SEPARATOR not in text),
            ),
            binary_packets,
        ),
        min_size=1,
    )
)
def test_a_payload_survives_encoding(packets: list[Packet]) -> None:
    assert decode_payload(encode_payload(packets)) == packets


@pytest.mark.parametrize("kind", [t for t in PacketType if t is not PacketType.MESSAGE])
def test_only_messages_carry_bytes(kind: PacketType) -> None:
    with pytest.raises(ValueError, match="only MESSAGE"):
        encode_packet(Packet(kind, b"x"))
