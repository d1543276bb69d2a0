"""UDP links: one socket per configured medium, the thin I/O side of membership.

Each socket is bound to its interface (SO_BINDTODEVICE) so that a datagram's link is known from
the socket it arrived on, and per-link liveness means something. Sending never blocks: a full
socket buffer drops the datagram (the next keepalive follows), it never stalls the loop.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from hacore.config.model import Link, LinkKind

log = logging.getLogger(__name__)

_SIOCGIFBRDADDR = 0x8919

Receiver = Callable[[bytes, str, tuple[str, int]], None]


class LinkError(Exception):
    """A link that cannot be opened; the message names the link and what to do."""


@dataclass(frozen=True)
class OpenLink:
    link: Link
    sock: socket.socket
    destination: tuple[str, int]

    @property
    def name(self) -> str:
        return self.link.name


def _ifindex(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise LinkError(f"interface '{name}' does not exist on this node") from None


def _broadcast_address(ifname: str) -> str:
    """The interface's IPv4 broadcast address (SIOCGIFBRDADDR, as Heartbeat's bcast does): one
    ioctl at start-up, which also works inside the running event loop."""
    _ifindex(ifname)
    ifreq = struct.pack("16s16x", ifname.encode()[:15])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            reply = fcntl.ioctl(probe.fileno(), _SIOCGIFBRDADDR, ifreq)
        except OSError:
            raise LinkError(
                f"interface '{ifname}' has no IPv4 broadcast address (give it an address)"
            ) from None
    # struct ifreq: 16 bytes of name, then a sockaddr_in (family, port, address).
    return socket.inet_ntoa(reply[20:24])


def is_local_address(address: str) -> bool:
    """True if ``address`` is one of this node's own (a ucast line naming ourselves)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address.partition("%")[0], 0))
        except OSError:
            return False
    return True


def _socket(link: Link, family: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, link.interface.encode())
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def open_link(link: Link) -> OpenLink | None:
    """Open one medium. None for a ucast line that names this very node (Heartbeat skips it)."""
    _ifindex(link.interface)
    kind = link.kind
    if (
        kind in (LinkKind.UCAST, LinkKind.UCAST6)
        and link.address
        and is_local_address(link.address)
    ):
        return None
    family = socket.AF_INET6 if kind in (LinkKind.MCAST6, LinkKind.UCAST6) else socket.AF_INET
    try:
        sock = _socket(link, family)
    except OSError as err:
        raise LinkError(f"{link.name}: cannot open a socket ({err.strerror})") from None
    try:
        sock.bind(("", link.port))
        if kind is LinkKind.BCAST:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            dest = (_broadcast_address(link.interface), link.port)
        elif kind is LinkKind.MCAST:
            assert link.address
            index = _ifindex(link.interface)
            mreqn = socket.inet_aton(link.address) + struct.pack("=4xi", index)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, link.ttl)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(link.loop))
            dest = (link.address, link.port)
        elif kind is LinkKind.MCAST6:
            assert link.address
            index = _ifindex(link.interface)
            group = socket.inet_pton(socket.AF_INET6, link.address)
            sock.setsockopt(
                socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group + struct.pack("@I", index)
            )
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, link.ttl)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, int(link.loop))
            dest = (link.address, link.port)
        else:
            assert link.address
            dest = (str(ipaddress.ip_address(link.address.partition("%")[0])), link.port)
    except LinkError:
        sock.close()
        raise
    except OSError as err:
        sock.close()
        raise LinkError(f"{link.name}: {err.strerror}") from None
    return OpenLink(link, sock, dest)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, name: str, receiver: Receiver) -> None:
        self.name = name
        self.receiver = receiver

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.receiver(data, self.name, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (a ucast peer that is down) are normal in a cluster; note them quietly.
        log.debug("link %s: %s", self.name, exc)


class Links:
    """All open links of a node: ``send`` puts one datagram on every one of them."""

    def __init__(self) -> None:
        self._open: list[tuple[OpenLink, asyncio.DatagramTransport]] = []

    @property
    def names(self) -> list[str]:
        return [o.name for o, _ in self._open]

    async def start(self, links: tuple[Link, ...], receiver: Receiver) -> None:
        loop = asyncio.get_running_loop()
        for link in links:
            opened = open_link(link)
            if opened is None:
                log.info("%s: peer address is our own; link not used on this node", link.name)
                continue
            transport, _ = await loop.create_datagram_endpoint(
                functools.partial(_Protocol, opened.name, receiver), sock=opened.sock
            )
            self._open.append((opened, transport))
            log.info("link %s open, sending to %s:%d", opened.name, *opened.destination[:2])

    def send(self, datagram: bytes) -> None:
        for opened, transport in self._open:
            try:
                transport.sendto(datagram, opened.destination)
            except OSError as err:  # a downed interface must not stop the other links
                log.debug("link %s: send failed: %s", opened.name, err)

    def close(self) -> None:
        for _, transport in self._open:
            transport.close()
        self._open.clear()
