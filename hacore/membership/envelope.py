"""Sealing and opening authenticated cluster datagrams: what the daemon calls.

``seal`` writes exactly what Heartbeat 3.0.6 sends: the message with its classic ``auth``
field, as netstrings, followed by the token over ``###\\n``…``%%%\\n``. ``open_envelope`` parses
and verifies a datagram and returns its fields only once the token checks out.

Key choice on receipt: the packet names its authkeys index, and hacore verifies with *that*
index's key, so several ``N method secret`` lines let keys rotate. (Heartbeat's receiver uses
the index's algorithm with the local active key, reference §3.4; a Heartbeat *sender* always
signs with its active line, so any hacore node holding that line accepts it.)
"""

from __future__ import annotations

import re

from hacore.config.model import Auth, AuthMethod
from hacore.membership.auth import sign, verify
from hacore.membership.wire import (
    AUTH_FIELD,
    MAX_DATAGRAM,
    MAX_TOKEN_LEN,
    NETSTRING_END,
    NETSTRING_START,
    Message,
    Verdict,
    WireError,
    auth_netstring,
    decode,
    encode_body,
    with_inner_auth,
)


class Rejected(WireError):  # noqa: N818 (the daemon reads `except Rejected`)
    """A datagram ``open_envelope`` refused. Every refusal raises this, parse errors included;
    ``verdict`` says why and ``detail`` is for the log."""


def seal(msg: Message, auth: Auth) -> bytes:
    """The datagram Heartbeat would send for ``msg``, signed with the active authkeys line.

    Raises ``ValueError`` when the result would exceed ``MAX_DATAGRAM`` (no peer could
    receive it)."""
    key = auth.signing_key
    body = encode_body(with_inner_auth(msg, key))
    packet = body + auth_netstring(key.index, sign(key, body))
    if len(packet) > MAX_DATAGRAM:
        raise ValueError(f"message of {len(packet)} bytes exceeds {MAX_DATAGRAM}")
    return packet


_TRAILER = re.compile(rb"([1-9][0-9]{0,3}):(0|[1-9][0-9]?) ([0-9a-f]{1,%d}),\Z" % MAX_TOKEN_LEN)


def _check_trailer_first(data: bytes, auth: Auth, allow_crc: bool) -> None:
    """Verify a netstring packet's token before parsing its fields, when the trailing auth
    netstring can be read from the end. Checking an HMAC costs microseconds; parsing a
    crafted 16 KiB packet costs a millisecond: a forged flood is refused at the cheap step.
    A packet whose trailer cannot be read this way is left to the full parser's verdict."""
    if not data.startswith(NETSTRING_START):
        return
    match = _TRAILER.search(data, max(0, len(data) - MAX_TOKEN_LEN - 12))
    if match is None or int(match[1]) != len(match[2]) + 1 + len(match[3]):
        return
    body = data[: match.start()]
    if not body.endswith(NETSTRING_END):
        return
    _verify(
        auth, int(match[2]), body, match[3].decode("ascii"), allow_crc=allow_crc, form="netstring"
    )


def _verify(
    auth: Auth, index: int, signed: bytes, token: str, *, allow_crc: bool, form: str
) -> None:
    key = auth.key(index)
    if key is None:
        raise Rejected(Verdict.UNKNOWN_KEY, f"no authkeys line {index}")
    if key.method is AuthMethod.CRC and not allow_crc:
        raise Rejected(Verdict.WEAK_AUTH, f"authkeys line {key.index} is crc, not allowed")
    if not verify(key, signed, token):
        raise Rejected(Verdict.BAD_AUTH, f"{form} token does not match key {key.index}")


def open_envelope(data: bytes, auth: Auth, *, allow_crc: bool = False) -> Message:
    """The fields of an authentic datagram, without its ``auth`` field.

    Raises ``Rejected``: MALFORMED/TRUNCATED/OVERSIZED from parsing, UNKNOWN_KEY when the
    packet's index has no key line, WEAK_AUTH for crc unless ``allow_crc`` (crc is a
    checksum anyone can compute, not authentication), BAD_AUTH when the token is wrong."""
    if len(data) > MAX_DATAGRAM:
        raise Rejected(Verdict.OVERSIZED, f"{len(data)} bytes, more than {MAX_DATAGRAM}")
    _check_trailer_first(data, auth, allow_crc)
    try:
        decoded = decode(data)
    except WireError as exc:
        raise Rejected(exc.reason, exc.detail) from None
    form = "classic" if decoded.classic else "netstring"
    _verify(auth, decoded.auth_index, decoded.signed, decoded.token, allow_crc=allow_crc, form=form)
    return decoded.message.without(AUTH_FIELD)
