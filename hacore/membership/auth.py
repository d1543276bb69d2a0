"""The token an authkeys line computes: ``sha1``, ``md5``, ``crc`` (Heartbeat) and ``sha256``.

Tokens are lower-case hex, as Heartbeat's HBauth plugins print them: HMAC digests in full
(RFC 2104; a key longer than the hash block is hashed first), CRC without leading zeros.
"""

from __future__ import annotations

import hmac
import zlib

from hacore.config.model import AuthKey, AuthMethod

# hashlib names of the HMAC methods.
_DIGESTS = {AuthMethod.SHA1: "sha1", AuthMethod.MD5: "md5", AuthMethod.SHA256: "sha256"}

# Bit-reversal of every byte value: lets zlib's reflected CRC compute the MSB-first one.
_BITREV = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc32_posix(data: bytes) -> int:
    """CRC-32/POSIX as Heartbeat's ``crc`` method computes it: poly 0x04C11DB7, MSB first,
    init 0, result complemented, and (unlike cksum(1)) no length appended.
    Check value: ``crc32_posix(b"123456789") == 0x765E7680``."""
    # A non-reflected CRC equals the bit-reversed reflected CRC of the bit-reversed bytes.
    # zlib.crc32 complements its start value and its result; start 0xFFFFFFFF therefore
    # means register init 0 and a complemented result, as Heartbeat does. This runs in C:
    # a table loop in Python would cost tens of milliseconds on a 256 KiB datagram.
    reflected = zlib.crc32(data.translate(_BITREV), 0xFFFFFFFF)
    return int(f"{reflected:032b}"[::-1], 2)


def sign(key: AuthKey, data: bytes) -> str:
    """The token ``key`` computes over ``data``."""
    if key.method is AuthMethod.CRC:
        return f"{crc32_posix(data):x}"
    return hmac.new(key.secret, data, _DIGESTS[key.method]).hexdigest()


def verify(key: AuthKey, data: bytes, token: str) -> bool:
    """Whether ``token`` is what ``key`` computes over ``data`` (constant-time comparison)."""
    # compare_digest refuses non-ASCII str with TypeError; such a token is simply wrong.
    if not token.isascii():
        return False
    return hmac.compare_digest(sign(key, data), token)
