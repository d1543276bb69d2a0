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

from hacore.config.model import Auth, AuthMethod
from hacore.membership.auth import sign, verify
from hacore.membership.wire import (
    AUTH_FIELD,
    MAX_DATAGRAM,
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


def open_envelope(data: bytes, auth: Auth, *, allow_crc: bool = False) -> Message:
    """The fields of an authentic datagram, without its ``auth`` field.

    Raises ``Rejected``: MALFORMED/TRUNCATED/OVERSIZED from parsing, UNKNOWN_KEY when the
    packet's index has no key line, WEAK_AUTH for crc unless ``allow_crc`` (crc is a
    checksum anyone can compute, not authentication), BAD_AUTH when the token is wrong."""
    try:
        decoded = decode(data)
    except WireError as exc:
        raise Rejected(exc.reason, exc.detail) from None
    key = auth.key(decoded.auth_index)
    if key is None:
        raise Rejected(Verdict.UNKNOWN_KEY, f"no authkeys line {decoded.auth_index}")
    if key.method is AuthMethod.CRC and not allow_crc:
        raise Rejected(Verdict.WEAK_AUTH, f"authkeys line {key.index} is crc, not allowed")
    if not verify(key, decoded.signed, decoded.token):
        form = "classic" if decoded.classic else "netstring"
        raise Rejected(Verdict.BAD_AUTH, f"{form} token does not match key {key.index}")
    return decoded.message.without(AUTH_FIELD)
