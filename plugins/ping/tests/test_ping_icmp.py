"""ICMP echo packets: built as RFC 792 says, and only our own replies recognised. Pure."""

from __future__ import annotations

import struct

from hacore_ping.icmp import Echo, build_request, checksum, parse_reply

# An IPv4 header (20 bytes, IHL 5) from 198.51.100.11 to 198.51.100.1, protocol ICMP.
IP_HEADER = bytes.fromhex("450000240000400040010000c633640bc6336401")


def reply(identifier: int, sequence: int, payload: bytes, kind: int = 0) -> bytes:
    header = struct.pack("!BBHHH", kind, 0, 0, identifier, sequence)
    return struct.pack("!BBHHH", kind, 0, checksum(header + payload), identifier, sequence) + (
        payload
    )


def test_checksum_is_rfc_1071s() -> None:
    # RFC 1071 section 3's example: the ones' complement sum is ddf2, so the checksum is 220d.
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    assert checksum(b"\x01") == ~0x0100 & 0xFFFF  # an odd byte is padded with zero


def test_a_request_is_type_8_with_a_valid_checksum() -> None:
    packet = build_request(0x1234, 7, b"token")

    assert packet[:2] == b"\x08\x00"
    assert struct.unpack("!HH", packet[4:8]) == (0x1234, 7)
    assert packet[8:] == b"token"
    assert checksum(packet) == 0  # a packet with its checksum in place sums to zero


def test_a_raw_reply_is_read_after_its_ip_header() -> None:
    assert parse_reply(IP_HEADER + reply(0x1234, 7, b"token"), raw=True) == Echo(
        0x1234, 7, b"token"
    )


def test_a_ping_socket_reply_has_no_ip_header() -> None:
    assert parse_reply(reply(9, 8, b"token"), raw=False) == Echo(9, 8, b"token")


def test_anything_but_an_echo_reply_is_ignored() -> None:
    assert parse_reply(IP_HEADER + reply(1, 1, b"", kind=8), raw=True) is None  # a request
    assert parse_reply(IP_HEADER + reply(1, 1, b"", kind=3), raw=True) is None  # unreachable
    assert parse_reply(IP_HEADER[:10], raw=True) is None
    assert parse_reply(b"\x60" + IP_HEADER[1:] + reply(1, 1, b""), raw=True) is None  # not IPv4
