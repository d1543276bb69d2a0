"""The port between the agents and the kernel's address configuration, and its netlink adapter.

``AddressPort`` is the handful of operations the agents need; ``NetlinkAddressPort`` implements
it with pyroute2's ``AsyncIPRoute`` (rtnetlink, no ``ip`` subprocesses), and
``hacore_ipaddr.testing.FakeAddressPort`` with a dictionary. Errors from the kernel come out as
``OSError`` with the kernel's errno, so callers never see pyroute2's types.

Everything acts on the network namespace of the calling thread, which is the daemon's.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import ipaddress
import os
import socket
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from pathlib import Path
from typing import Any, Protocol, TypeVar

# Imported with the module, not on first use: a first import costs tens of milliseconds, which
# belong to loading the agent, not to the failover that first adds an address. pyroute2's
# package __init__ imports every netlink family it supports (and sqlite3, for its NDB)
# whichever submodule is asked for: about 9.5 MB of the daemon's memory, whatever the path.
from pyroute2.iproute.linux import AsyncIPRoute
from pyroute2.netlink import NLM_F_DUMP_INTR
from pyroute2.netlink.exceptions import NetlinkError

IPAddress = IPv4Address | IPv6Address
IPInterface = IPv4Interface | IPv6Interface

ARPHRD_ETHER = 1
RT_TABLE_MAIN = 254
RT_SCOPE_LINK = 253
RTN_UNICAST = 1
IFF_UP = 0x1

_T = TypeVar("_T")


class AddressFlag(enum.IntFlag):
    """IFA_F_* (linux/if_addr.h)."""

    SECONDARY = 0x01
    NODAD = 0x02
    OPTIMISTIC = 0x04
    DADFAILED = 0x08
    HOMEADDRESS = 0x10
    DEPRECATED = 0x20
    TENTATIVE = 0x40
    PERMANENT = 0x80
    MANAGETEMPADDR = 0x100
    NOPREFIXROUTE = 0x200
    MCAUTOJOIN = 0x400
    STABLE_PRIVACY = 0x800


NO_FLAGS = AddressFlag(0)


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    mac: bytes  # hardware address; 6 bytes on Ethernet
    hwtype: int  # ARPHRD_*
    admin_up: bool  # IFF_UP: "ip link set up" was done
    operstate: str  # RFC 2863 state as the kernel reports it: UP, DOWN, UNKNOWN, LOWERLAYERDOWN...

    @property
    def running(self) -> bool:
        """Can the link carry traffic? UNKNOWN counts: drivers without carrier reporting
        (and dummy, tun, loopback) never say UP."""
        return self.admin_up and self.operstate in ("UP", "UNKNOWN")

    @property
    def ethernet(self) -> bool:
        return self.hwtype == ARPHRD_ETHER and len(self.mac) == 6


@dataclass(frozen=True)
class Address:
    index: int
    interface: IPInterface  # address with its prefix length
    label: str | None = None
    broadcast: IPv4Address | None = None
    flags: AddressFlag = NO_FLAGS

    @property
    def ip(self) -> IPAddress:
        return self.interface.ip


@dataclass(frozen=True)
class Route:
    """A route of the main table that reaches a subnet directly (no gateway)."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    index: int  # outgoing interface
    scope: int = RT_SCOPE_LINK
    priority: int = 0  # metric: lower wins
    # RTA_PREFSRC: the address whose adding made the kernel create this route (IPv4 prefix
    # routes carry their subnet's primary address); None when the route does not say.
    source: IPAddress | None = None


@dataclass(frozen=True)
class NewAddress:
    """Everything ``ip addr add`` would be told."""

    index: int
    interface: IPInterface
    label: str | None = None
    broadcast: IPv4Address | None = None
    nodad: bool = False
    noprefixroute: bool = False
    preferred_lft: int | None = None  # seconds; None: forever


class AddressPort(Protocol):
    async def link(self, name: str) -> Link | None:
        """The link called ``name``, or None if there is none."""
        ...

    async def links(self) -> list[Link]: ...

    async def addresses(self, index: int | None = None) -> list[Address]:
        """Every address (both families) on the link with this index, or on every link."""
        ...

    async def routes(self, version: int) -> list[Route]:
        """The main table's directly connected unicast routes of IPv4 (4) or IPv6 (6)."""
        ...

    async def add_address(self, new: NewAddress) -> None:
        """Add one address; OSError(EEXIST) if it is already there."""
        ...

    async def delete_address(self, index: int, interface: IPInterface) -> None:
        """Delete exactly this address (never a flush); OSError(EADDRNOTAVAIL) if absent."""
        ...

    async def set_link_up(self, index: int) -> None: ...

    async def promote_secondaries(self, ifname: str) -> bool:
        """Make sure deleting a primary IPv4 address promotes a secondary instead of removing
        every secondary of its subnet with it. True if the setting had to be changed."""
        ...


class NetlinkAddressPort:
    """``AddressPort`` over rtnetlink, with pyroute2's native asyncio ``AsyncIPRoute``.

    One socket for the port's life, opened on first use, with one request in flight at a
    time: a failover's start is then a single request and its reply on a socket already open.
    The socket belongs to the event loop that opened it (pyroute2 keeps its transport per
    thread and loop); a call from another loop (the runner gives a group a new worker when an
    agent hung) opens a fresh one, and so does the call after one that failed other than with
    the kernel's answer (cancelled, or a reply that did not parse), since its queue may hold a
    late answer then. ``close`` releases it, and so does dropping the port; either way the
    socket is closed on its own loop, which still watches it. A port still open when its loop
    is closed has its socket closed when it is dropped, and asyncio warns (ResourceWarning)
    about the transport it could not close: close the agent before its loop.
    """

    dump_retries = 3  # a dump the kernel marks interrupted (the table changed) is done again

    def __init__(self, sysctl_root: Path = Path("/proc/sys/net/ipv4/conf")) -> None:
        self._sysctl_root = sysctl_root
        self._ipr: Any = None  # AsyncIPRoute; pyroute2 ships no type hints
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._closer: weakref.finalize[Any, NetlinkAddressPort] | None = None

    def close(self) -> None:
        """Close the socket (a later call opens a new one)."""
        closer, self._closer, self._ipr = self._closer, None, None
        if closer is not None:
            closer()

    async def link(self, name: str) -> Link | None:
        try:
            found = await self._request(lambda ipr: ipr.link("get", ifname=name))
        except OSError as err:
            if err.errno == errno.ENODEV:
                return None
            raise
        return _link(found[0]) if found else None

    async def links(self) -> list[Link]:
        return [_link(msg) for msg in await self._dump(lambda ipr: ipr.link("dump"))]

    async def addresses(self, index: int | None = None) -> list[Address]:
        selector = {} if index is None else {"index": index}
        found = await self._dump(lambda ipr: ipr.addr("dump", **selector))
        return [a for a in map(_address, found) if index is None or a.index == index]

    async def routes(self, version: int) -> list[Route]:
        family = socket.AF_INET if version == 4 else socket.AF_INET6
        found = await self._dump(lambda ipr: ipr.route("dump", family=family, table=RT_TABLE_MAIN))
        return [route for route in map(_route, found) if route is not None]

    async def add_address(self, new: NewAddress) -> None:
        flags = 0
        if new.nodad and new.interface.version == 6:
            flags |= AddressFlag.NODAD
        if new.noprefixroute:
            flags |= AddressFlag.NOPREFIXROUTE
        kwargs: dict[str, Any] = {
            "index": new.index,
            "address": str(new.interface.ip),
            "prefixlen": new.interface.network.prefixlen,
        }
        if flags:
            kwargs["flags"] = int(flags)
        if new.label:
            kwargs["label"] = new.label
        if new.broadcast is not None:
            kwargs["broadcast"] = str(new.broadcast)
        if new.preferred_lft is not None:
            kwargs["preferred_lft"] = new.preferred_lft
        await self._request(lambda ipr: ipr.addr("add", **kwargs))

    async def delete_address(self, index: int, interface: IPInterface) -> None:
        address, prefixlen = str(interface.ip), interface.network.prefixlen
        await self._request(
            lambda ipr: ipr.addr("del", index=index, address=address, prefixlen=prefixlen)
        )

    async def set_link_up(self, index: int) -> None:
        await self._request(lambda ipr: ipr.link("set", index=index, state="up"))

    async def promote_secondaries(self, ifname: str) -> bool:
        # /proc/sys/net belongs to the network namespace of the thread that opens it, and the
        # default executor's threads are started by the event loop's thread, so this reaches
        # the same namespace as the netlink socket.
        return await asyncio.to_thread(self._promote_secondaries, ifname)

    def _promote_secondaries(self, ifname: str) -> bool:
        # The kernel ORs "all" with the device's own setting.
        for scope in ("all", ifname):
            if (self._sysctl_root / scope / "promote_secondaries").read_text().strip() == "1":
                return False
        (self._sysctl_root / ifname / "promote_secondaries").write_text("1\n")
        return True

    # -- the socket ---------------------------------------------------------------------------

    async def _dump(self, request: Callable[[Any], Awaitable[AsyncIterator[Any]]]) -> list[Any]:
        """Every message of a dump. pyroute2 passes NLM_F_DUMP_INTR through without acting on
        it: a dump the kernel marks inconsistent (the table changed under it) is done again."""

        async def whole(ipr: Any) -> list[Any]:
            return [msg async for msg in await request(ipr)]

        for _ in range(self.dump_retries - 1):
            found = await self._request(whole)
            if not any(msg["header"]["flags"] & NLM_F_DUMP_INTR for msg in found):
                return found
        return await self._request(whole)

    async def _request(self, request: Callable[[Any], Awaitable[_T]]) -> _T:
        """Run one request on the socket. The kernel's error answer raises OSError with its
        errno."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self.close()
            self._loop, self._lock = loop, asyncio.Lock()
        async with self._lock:
            ipr = self._ipr
            if ipr is None:
                # The constructor does no I/O: the socket is made, bound and registered with
                # this loop by the first request.
                ipr = self._ipr = AsyncIPRoute()
                self._closer = weakref.finalize(self, _close_on, loop, ipr)
            try:
                return await request(ipr)
            except NetlinkError as err:
                # The kernel answered in full: the socket is in step.
                raise OSError(err.code, os.strerror(err.code)) from None
            except BaseException:
                if self._ipr is ipr:
                    self.close()
                raise


def _close_on(loop: asyncio.AbstractEventLoop, ipr: Any) -> None:
    """Close ``ipr`` on the loop that owns it: pyroute2 keeps its transport per thread, and the
    loop's selector must drop the socket before its descriptor number can be reused. A loop
    that no longer runs is being closed (a finished worker): the descriptor is closed here, and
    asyncio warns (ResourceWarning) about the transport it can no longer close."""
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not loop and loop.is_running():
        try:
            loop.call_soon_threadsafe(ipr.close)
            return
        except RuntimeError:
            pass  # closed meanwhile
    ipr.close()


def _link(msg: Any) -> Link:
    mac = msg.get("address") or ""
    return Link(
        index=msg["index"],
        name=msg.get("ifname") or "",
        mac=bytes.fromhex(mac.replace(":", "")),
        hwtype=msg["ifi_type"],
        admin_up=bool(msg["flags"] & IFF_UP),
        operstate=msg.get("operstate") or "UNKNOWN",
    )


def _address(msg: Any) -> Address:
    # For IPv4, IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
    # point-to-point links. IPv6 has only IFA_ADDRESS.
    ip = msg.get("local") or msg.get("address")
    broadcast = msg.get("broadcast")
    # IFA_FLAGS carries the flags above bit 7; the header field is its truncated copy.
    flags = msg.get("IFA_FLAGS")
    return Address(
        index=msg["index"],
        interface=ipaddress.ip_interface((ipaddress.ip_address(ip), msg["prefixlen"])),
        label=msg.get("label"),
        broadcast=IPv4Address(broadcast) if broadcast else None,
        flags=AddressFlag(flags if flags is not None else msg["flags"]),
    )


def _route(msg: Any) -> Route | None:
    """A main-table route straight to a subnet, or None for any other kind."""
    # Gateways, the default route and multipath routes (no RTA_OIF) never say which subnet a
    # link is on; the table is checked here because older kernels ignore a dump's filter.
    if (
        msg["type"] != RTN_UNICAST
        or msg.get("gateway")
        or not msg.get("dst")
        or msg["dst_len"] == 0
        or msg.get("oif") is None
        # RTA_TABLE, or the header's 8-bit field when the kernel sends no attribute.
        or msg.get("table") != RT_TABLE_MAIN
    ):
        return None
    source = msg.get("prefsrc")
    return Route(
        ipaddress.ip_network((ipaddress.ip_address(msg.get("dst")), msg["dst_len"]), strict=False),
        msg.get("oif"),
        msg["scope"],
        msg.get("priority") or 0,
        ipaddress.ip_address(source) if source else None,
    )
