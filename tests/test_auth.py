"""Heartbeat's signing methods, checked against tokens its own HBauth plugins computed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hacore.config.model import AuthKey, AuthMethod
from hacore.membership.auth import crc32_posix, sign, verify
from tests.vectors import TOKENS, TokenCheck

CRC = AuthKey(1, AuthMethod.CRC, b"")
SHA1 = AuthKey(1, AuthMethod.SHA1, b"secretkey")


@pytest.mark.parametrize("check", TOKENS, ids=lambda c: f"{c.key.method}-{c.data[:12]!r}")
def test_sign_matches_the_heartbeat_plugin(check: TokenCheck) -> None:
    assert sign(check.key, check.data) == check.token


def test_crc_check_value_is_crc32_posix_without_length() -> None:
    # cksum(1) appends the length and gets 0x377a6011; Heartbeat does not.
    assert sign(CRC, b"123456789") == "765e7680"


def test_crc_token_has_no_leading_zeros() -> None:
    assert sign(CRC, b"8") == "dc57fd7"


def _crc_bitwise(data: bytes) -> int:
    """The textbook MSB-first loop, to check the zlib shortcut against."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc ^ 0xFFFFFFFF


@given(st.binary(max_size=300))
def test_crc_shortcut_equals_the_bitwise_definition(data: bytes) -> None:
    assert crc32_posix(data) == _crc_bitwise(data)


def test_sha256_is_hmac_sha256() -> None:
    # RFC 4231 test case 2.
    key = AuthKey(1, AuthMethod.SHA256, b"Jefe")
    assert sign(key, b"what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_crc_ignores_the_secret() -> None:
    assert sign(AuthKey(1, AuthMethod.CRC, b"anything"), b"x") == sign(CRC, b"x")


def test_verify_accepts_the_right_token() -> None:
    assert verify(SHA1, b"data", sign(SHA1, b"data"))


def test_verify_refuses_another_key() -> None:
    other = AuthKey(1, AuthMethod.SHA1, b"otherkey")
    assert not verify(other, b"data", sign(SHA1, b"data"))


def test_verify_refuses_upper_case_hex() -> None:
    # Heartbeat compares with strcmp: case matters.
    assert not verify(SHA1, b"data", sign(SHA1, b"data").upper())


def test_verify_refuses_a_non_ascii_token_without_raising() -> None:
    assert not verify(SHA1, b"data", "é" * 40)
