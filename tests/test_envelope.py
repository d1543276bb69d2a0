"""Sealing and opening datagrams: nothing reaches the caller before its token is verified."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hacore.config.model import Auth, AuthKey, AuthMethod
from hacore.membership.envelope import Rejected, open_envelope, seal
from hacore.membership.wire import (
    MAX_DATAGRAM,
    Message,
    Verdict,
    WireError,
    encode_classic,
    with_inner_auth,
)
from tests.vectors import VECTORS, Vector

SHA1 = AuthKey(1, AuthMethod.SHA1, b"secretkey")
MD5 = AuthKey(2, AuthMethod.MD5, b"other")
SHA256 = AuthKey(3, AuthMethod.SHA256, b"modern")
CRC = AuthKey(4, AuthMethod.CRC, b"")
ALL = Auth(1, (SHA1, MD5, SHA256, CRC))
STATUS = Message.of(("t", "status"), ("st", "active"), ("src", "alice"), ("srcuuid", b"\x01" * 16))


def signing_with(key: AuthKey) -> Auth:
    return Auth(key.index, (key,))


def reason(data: bytes, auth: Auth = ALL, *, allow_crc: bool = False) -> Verdict:
    with pytest.raises(Rejected) as caught:
        open_envelope(data, auth, allow_crc=allow_crc)
    return caught.value.verdict


@pytest.mark.parametrize("key", [SHA1, MD5, SHA256], ids=lambda k: str(k.method))
def test_a_sealed_message_opens_without_its_auth_field(key: AuthKey) -> None:
    assert open_envelope(seal(STATUS, signing_with(key)), ALL) == STATUS


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_every_heartbeat_made_packet_opens(vector: Vector) -> None:
    auth = signing_with(vector.key)
    assert open_envelope(vector.wire, auth, allow_crc=True) == vector.message
    assert open_envelope(vector.classic, auth, allow_crc=True) == vector.message


def test_seal_carries_the_classic_auth_field_heartbeat_adds() -> None:
    inner = with_inner_auth(STATUS, SHA1).get("auth")
    assert inner is not None
    assert f",{len(inner) + 8}:(0)auth={inner},%%%\n".encode() in seal(STATUS, ALL)


def test_the_packets_index_picks_the_key_so_keys_can_rotate() -> None:
    # The sender already signs with line 2; this node still signs with line 1.
    assert open_envelope(seal(STATUS, Auth(2, (SHA1, MD5))), Auth(1, (SHA1, MD5))) == STATUS


def test_an_index_without_a_key_line_is_unknown_key() -> None:
    assert reason(seal(STATUS, signing_with(MD5)), signing_with(SHA1)) is Verdict.UNKNOWN_KEY


def test_the_same_index_with_another_secret_is_bad_auth() -> None:
    forged = seal(STATUS, signing_with(AuthKey(1, AuthMethod.SHA1, b"guessed")))
    assert reason(forged) is Verdict.BAD_AUTH


def test_a_changed_value_is_bad_auth() -> None:
    packet = seal(STATUS, ALL).replace(b"alice", b"mallo")
    assert reason(packet) is Verdict.BAD_AUTH


def test_a_changed_inner_auth_field_is_bad_auth() -> None:
    # The trailing token covers the inner auth field too.
    packet = bytearray(seal(STATUS, ALL))
    at = packet.index(b"(0)auth=1 ") + len(b"(0)auth=1 ")
    packet[at] = ord("0") if packet[at] != ord("0") else ord("1")
    assert reason(bytes(packet)) is Verdict.BAD_AUTH


def test_crc_is_weak_auth_unless_allowed() -> None:
    packet = seal(STATUS, signing_with(CRC))
    assert reason(packet) is Verdict.WEAK_AUTH
    assert open_envelope(packet, ALL, allow_crc=True) == STATUS


def test_weak_auth_is_refused_before_the_token_is_looked_at() -> None:
    forged = seal(STATUS, signing_with(CRC)).replace(b"alice", b"mallo")
    assert reason(forged) is Verdict.WEAK_AUTH
    assert reason(forged, allow_crc=True) is Verdict.BAD_AUTH


def test_a_classic_packet_opens_and_its_inner_token_is_checked() -> None:
    classic = encode_classic(STATUS, MD5)
    assert open_envelope(classic, ALL) == STATUS
    assert reason(classic.replace(b"alice", b"mallo")) is Verdict.BAD_AUTH


def test_parse_errors_are_rejected_too() -> None:
    assert reason(b"garbage") is Verdict.MALFORMED
    assert reason(seal(STATUS, ALL)[:-1]) is Verdict.TRUNCATED
    assert reason(b"###\n" + bytes(MAX_DATAGRAM)) is Verdict.OVERSIZED


def test_rejected_is_a_wire_error_with_a_detail() -> None:
    with pytest.raises(WireError) as caught:
        open_envelope(seal(STATUS, signing_with(MD5)), signing_with(SHA1))
    assert isinstance(caught.value, Rejected)
    assert caught.value.detail == "no authkeys line 2"


def test_seal_refuses_a_message_no_peer_could_receive() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        seal(Message.of(("t", "big"), ("blob", bytes(MAX_DATAGRAM))), ALL)


@given(st.binary(max_size=300), st.booleans())
def test_anything_received_opens_or_is_rejected(data: bytes, allow_crc: bool) -> None:
    with contextlib.suppress(Rejected):
        open_envelope(data, ALL, allow_crc=allow_crc)


@given(st.data())
def test_any_single_byte_change_is_rejected(data: st.DataObject) -> None:
    packet = bytearray(seal(STATUS, ALL))
    at = data.draw(st.integers(0, len(packet) - 1))
    packet[at] ^= data.draw(st.integers(1, 255))
    with pytest.raises(Rejected):
        open_envelope(bytes(packet), ALL)


def test_a_forged_packet_is_refused_for_its_token_before_its_fields_are_parsed() -> None:
    # 16 KiB of fields the parser would reject as malformed, behind a well-formed trailer with
    # a wrong token: the cheap HMAC check answers first, so a forged flood costs little.
    from hacore.config.model import Auth, AuthKey, AuthMethod
    from hacore.membership.envelope import Rejected, open_envelope

    auth = Auth(1, (AuthKey(1, AuthMethod.SHA1, b"secret"),))
    body = b"###\n" + b"9:(9)x=yyyy," * 1300 + b"%%%\n"
    token = "0" * 40
    packet = body + f"{len(token) + 2}:1 {token},".encode()
    with pytest.raises(Rejected) as refused:
        open_envelope(packet, auth)
    assert refused.value.verdict is Verdict.BAD_AUTH
