"""ICMP echo (RFC 792) for IPv4: building requests, recognising our replies, opening the socket.

Two kinds of socket can send echo requests without a helper program:

- a **raw** socket (``SOCK_RAW``/``IPPROTO_ICMP``): needs CAP_NET_RAW, which the daemon has as
  root. It sees every ICMP message reaching the host, IP header included, so replies are
  recognised by our identifier and a random token in the payload;
- a **ping** socket (``SOCK_DGRAM``/``IPPROTO_ICMP``): allowed to the groups in
  ``net.ipv4.ping_group_range``. The kernel picks the identifier and hands the socket only its
  own replies, without the IP header.

The raw kind is tried first: ping sockets are disabled by default in a new network namespace.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

__all__ = ["Echo", "IcmpSocket", "build_request", "checksum", "open_socket", "parse_reply"]

ECHO_REPLY = 0
ECHO_REQUEST = 8
_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
# <linux/in.h> SOL_RAW and <linux/icmp.h> ICMP_FILTER: a raw socket's bitmask of ICMP types the
# kernel should *not* deliver to it. Python's socket module does not name them.
_SOL_RAW = 255
_ICMP_FILTER = 1


@dataclass(frozen=True)
class Echo:
    identifier: int
    sequence: int
    payload: bytes


@dataclass
class IcmpSocket:
    sock: socket.socket
    raw: bool  # False: a ping socket (the kernel owns the identifier)

    def close(self) -> None:
        self.sock.close()


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): ones' complement of the ones' complement sum."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def build_request(identifier: int, sequence: int, payload: bytes) -> bytes:
    header = _HEADER.pack(ECHO_REQUEST, 0, 0, identifier, sequence)
    return _HEADER.pack(ECHO_REQUEST, 0, checksum(header + payload), identifier, sequence) + payload


def parse_reply(data: bytes, raw: bool) -> Echo | None:
    """The echo reply in ``data`` (with its IPv4 header when ``raw``), or None for anything else."""
    if raw:
        if len(data) < 20 or data[0] >> 4 != 4:
            return None
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < _HEADER.size:
        return None
    kind, code, _, identifier, sequence = _HEADER.unpack_from(data)
    if kind != ECHO_REPLY or code != 0:
        return None
    return Echo(identifier, sequence, data[_HEADER.size :])


def open_socket() -> IcmpSocket:
    """A raw ICMP socket if we may, else a ping socket; raises PermissionError if neither."""
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    except PermissionError:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
        return IcmpSocket(sock, raw=False)
    # Wake up for echo replies only, not for every ICMP message the host receives.
    sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("I", ~(1 << ECHO_REPLY) & 0xFFFFFFFF))
    return IcmpSocket(sock, raw=True)
