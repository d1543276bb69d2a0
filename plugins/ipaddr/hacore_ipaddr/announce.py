"""Telling the link that an address moved: gratuitous ARP (IPv4) and unsolicited neighbour
advertisements (IPv6).

Frames are built by pure functions (tested byte for byte against ``tests/vectors``); sockets
live in small senders, one per burst; ``Announcer`` paces a burst. The first round goes out
before ``announce`` returns, because failover time is measured until neighbours send to the new
MAC; the remaining rounds run in a background task that the next burst, or ``cancel``, stops.

Announcing is best effort, as with Heartbeat's ``send_arp``: a failure is logged (with what it
means for clients) and never fails the action, because the address itself is already up.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

log = logging.getLogger("hacore.ipaddr.announce")

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ARPHRD_ETHER = 1
ETHER_BROADCAST = b"\xff" * 6
ZERO_MAC = b"\x00" * 6

ALL_NODES = IPv6Address("ff02::1")
ND_NEIGHBOR_ADVERT = 136
NA_FLAG_OVERRIDE = 0x20000000  # the O bit: replace whatever link-layer address is cached
ND_OPT_TARGET_LINKADDR = 2
ICMP6_FILTER = 1  # <netinet/icmp6.h>; not in Python's socket module


class ArpOp(enum.IntEnum):
    REQUEST = 1
    REPLY = 2


def arp_frame(op: ArpOp, mac: bytes, ip: IPv4Address, target_mac: bytes) -> bytes:
    """An Ethernet broadcast ARP frame announcing ``ip`` at ``mac`` (sender and target IP are
    both ``ip``: that is what makes it gratuitous)."""
    _check_mac(mac)
    _check_mac(target_mac)
    ethernet = ETHER_BROADCAST + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", ARPHRD_ETHER, ETH_P_IP, 6, 4, op)
    return ethernet + arp + mac + ip.packed + target_mac + ip.packed


def gratuitous_arp(mac: bytes, ip: IPv4Address) -> tuple[bytes, bytes]:
    """One round as ``send_arp`` sends it: a REQUEST (target MAC zero) and a REPLY (target MAC
    our own). Some switches and routers only learn from one kind, so both go out."""
    return (
        arp_frame(ArpOp.REQUEST, mac, ip, ZERO_MAC),
        arp_frame(ArpOp.REPLY, mac, ip, mac),
    )


def unsolicited_na(mac: bytes, ip: IPv6Address) -> bytes:
    """The ICMPv6 message of an unsolicited neighbour advertisement (RFC 4861 4.4, 7.2.6): not
    solicited, override set, target ``ip``, with the target link-layer address option. The
    checksum is left zero: the kernel fills it in on ICMPv6 raw sockets (RFC 3542 3.1)."""
    _check_mac(mac)
    header = struct.pack("!BBHI", ND_NEIGHBOR_ADVERT, 0, 0, NA_FLAG_OVERRIDE)
    option = struct.pack("!BB", ND_OPT_TARGET_LINKADDR, 1) + mac  # length in units of 8 bytes
    return header + ip.packed + option


def _check_mac(mac: bytes) -> None:
    if len(mac) != 6:
        raise ValueError(f"an Ethernet MAC address has 6 bytes, not {len(mac)}")


@dataclass(frozen=True)
class Announcement:
    """What to announce where."""

    ifname: str
    ifindex: int
    mac: bytes
    ip: IPv4Address | IPv6Address

    def __str__(self) -> str:
        kind = "gratuitous ARP" if self.ip.version == 4 else "neighbour advertisement"
        return f"{kind} for {self.ip} on {self.ifname}"


class RoundSender(Protocol):
    async def send_round(self) -> None:
        """Put one round on the wire; OSError if the kernel refuses."""
        ...

    def close(self) -> None:
        """Release the socket. May block: closing a packet socket waits for an RCU grace
        period (10 to 20 ms measured), so the announcer calls it in a worker thread."""
        ...


class ArpSender:
    """A packet socket bound to the interface, sending whole Ethernet frames."""

    def __init__(self, what: Announcement) -> None:
        if not isinstance(what.ip, IPv4Address):
            raise TypeError("ARP announces IPv4 addresses")
        self._frames = gratuitous_arp(what.mac, what.ip)
        # Protocol 0: the socket only sends. With a protocol it would also queue every ARP
        # frame on the link until closed.
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            self._sock.setblocking(False)
            self._sock.bind((what.ifname, 0))
        except BaseException:
            self._sock.close()
            raise

    async def send_round(self) -> None:
        loop = asyncio.get_running_loop()
        for frame in self._frames:
            await loop.sock_sendall(self._sock, frame)

    def close(self) -> None:
        self._sock.close()


class NeighbourAdvertSender:
    """An ICMPv6 raw socket on the interface, sending to all nodes (ff02::1)."""

    def __init__(self, what: Announcement) -> None:
        if not isinstance(what.ip, IPv6Address):
            raise TypeError("neighbour advertisements announce IPv6 addresses")
        self._message = unsolicited_na(what.mac, what.ip)
        self._destination = (str(ALL_NODES), 0, 0, what.ifindex)
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, what.ifname.encode())
            # Receivers drop neighbour discovery that did not come from the link itself
            # (RFC 4861 7.1.2): the hop limit must arrive as 255.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, what.ifindex)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            # Block every ICMPv6 type on receive: the socket only sends.
            sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, b"\xff" * 32)
            try:
                # Sent from the address itself, as send_ua does; falls back to the kernel's
                # choice (the link-local address) if the address cannot be bound.
                sock.bind((str(what.ip), 0, 0, what.ifindex))
            except OSError as err:
                log.debug("%s: not sent from the address itself: %s", what, err.strerror)
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    async def send_round(self) -> None:
        await asyncio.get_running_loop().sock_sendto(self._sock, self._message, self._destination)

    def close(self) -> None:
        self._sock.close()


def open_sender(what: Announcement) -> RoundSender:
    if isinstance(what.ip, IPv4Address):
        return ArpSender(what)
    return NeighbourAdvertSender(what)


class AnnouncerPort(Protocol):
    async def announce(self, what: Announcement, count: int, interval_ms: int) -> None:
        """Send ``count`` rounds ``interval_ms`` apart; return once the first is sent. Stops
        a burst still running."""
        ...

    async def cancel(self) -> None:
        """Stop the burst still running, if any, and wait until it has stopped."""
        ...


class Announcer:
    """Paces bursts of announcements; owns at most one background burst at a time."""

    def __init__(self, opener: Callable[[Announcement], RoundSender] = open_sender) -> None:
        self._opener = opener
        self._task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        """Is a background burst still running?"""
        return self._task is not None and not self._task.done()

    async def announce(self, what: Announcement, count: int, interval_ms: int) -> None:
        await self.cancel()
        if count <= 0:
            return
        try:
            sender = self._opener(what)
        except OSError as err:
            log.warning(
                "%s not sent: %s; neighbours keep the old MAC until their caches expire",
                what,
                err.strerror,
            )
            return
        try:
            await _send(sender, what, 1)
        except BaseException:
            _close_soon(sender)
            raise
        if count == 1:
            _close_soon(sender)
            return
        self._task = asyncio.create_task(
            self._rest(sender, what, count, interval_ms / 1000), name=f"announce {what.ip}"
        )
        # Not a finally in _rest: a task cancelled before its first step never runs its body.
        self._task.add_done_callback(lambda _: _close_soon(sender))

    async def cancel(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            # wait() rather than await: our own cancellation must still propagate.
            await asyncio.wait([task])

    @staticmethod
    async def _rest(sender: RoundSender, what: Announcement, count: int, interval: float) -> None:
        for n in range(2, count + 1):
            await asyncio.sleep(interval)
            await _send(sender, what, n)


def _close_soon(sender: RoundSender) -> None:
    """Close in a worker thread: neither the action nor the event loop waits for it."""
    asyncio.get_running_loop().run_in_executor(None, sender.close)


async def _send(sender: RoundSender, what: Announcement, n: int) -> None:
    try:
        await sender.send_round()
    except OSError as err:
        # The link may be down for a moment (ENETDOWN); later rounds still try.
        log.warning("%s, round %d, not sent: %s", what, n, err.strerror)
    else:
        log.debug("%s, round %d, sent", what, n)
