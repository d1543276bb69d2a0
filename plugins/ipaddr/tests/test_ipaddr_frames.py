"""Announcement frames, byte for byte against the hand-made vectors in vectors/announce.json."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import pytest

from hacore_ipaddr.announce import ArpOp, arp_frame, gratuitous_arp, unsolicited_na

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "vectors/announce.json").read_text())


def expected(name: str) -> bytes:
    return bytes.fromhex("".join(value for _, value in VECTORS[name]["fields"]))


def mac(name: str) -> bytes:
    return bytes.fromhex(VECTORS[name]["mac"].replace(":", ""))


def test_garp_round_is_a_request_then_a_reply() -> None:
    request, reply = gratuitous_arp(mac("garp_request"), IPv4Address("198.51.100.100"))
    assert request == expected("garp_request")
    assert reply == expected("garp_reply")


def test_arp_frame_is_42_bytes() -> None:
    frame = arp_frame(ArpOp.REQUEST, mac("garp_request"), IPv4Address("198.51.100.100"), b"\0" * 6)
    assert len(frame) == 14 + 28


def test_unsolicited_na() -> None:
    message = unsolicited_na(mac("unsolicited_na"), IPv6Address("2001:db8::100"))
    assert message == expected("unsolicited_na")


def test_a_mac_must_have_six_bytes() -> None:
    with pytest.raises(ValueError, match="6 bytes"):
        gratuitous_arp(b"\x00" * 8, IPv4Address("198.51.100.100"))
