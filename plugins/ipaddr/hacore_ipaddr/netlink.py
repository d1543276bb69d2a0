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
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from pathlib import Path
from typing import Any, Protocol, TypeVar

# Imported with the module, not on first use: a first import costs tens of milliseconds, which
# belong to loading the agent, not to the failover that first adds an address.
from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

IPAddress = IPv4Address | IPv6Address
IPInterface = IPv4Interface | IPv6Interface

ARPHRD_ETHER = 1
RT_TABLE_MAIN = 254
RT_SCOPE_LINK = 253
RTN_UNICAST = 1
IFF_UP = 0x1
FOREVER = 0xFFFFFFFF  # lifetimes: INFINITY_LIFE_TIME


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


_T = TypeVar("_T")


class NetlinkAddressPort:
    """``AddressPort`` over rtnetlink.

    pyroute2 0.9's ``IPRoute`` is a synchronous facade that runs a private event loop per
    thread, so it cannot be called from a coroutine; ``AsyncIPRoute`` is the native form and
    keeps the event loop free without a thread hop. One socket per operation: opening one costs
    well under a millisecond and leaves nothing to close when an agent is dropped.
    """

    def __init__(self, sysctl_root: Path = Path("/proc/sys/net/ipv4/conf")) -> None:
        self._sysctl_root = sysctl_root

    async def link(self, name: str) -> Link | None:
        async with _rtnl() as ipr:
            try:
                msgs = await _call(ipr.link("get", ifname=name))
            except OSError as err:
                if err.errno == errno.ENODEV:
                    return None
                raise
        return _link(msgs[0]) if msgs else None

    async def links(self) -> list[Link]:
        async with _rtnl() as ipr:
            return [_link(msg) async for msg in await _call(ipr.link("dump"))]

    async def addresses(self, index: int | None = None) -> list[Address]:
        selector = {} if index is None else {"index": index}
        async with _rtnl() as ipr:
            return [_address(msg) async for msg in await _call(ipr.addr("dump", **selector))]

    async def routes(self, version: int) -> list[Route]:
        family = socket.AF_INET if version == 4 else socket.AF_INET6
        async with _rtnl() as ipr:
            msgs = [
                m async for m in await _call(ipr.route("dump", family=family, table=RT_TABLE_MAIN))
            ]
        out = []
        for msg in msgs:
            # Gateways, the default route and multipath routes (no RTA_OIF) never say which
            # subnet a link is on; the table filter is repeated because older kernels ignore it.
            if (
                msg["type"] != RTN_UNICAST
                or msg.get("gateway")
                or not msg.get("dst")
                or msg["dst_len"] == 0
                or msg.get("oif") is None
                or msg.get("table") != RT_TABLE_MAIN
            ):
                continue
            network = ipaddress.ip_network(f"{msg.get('dst')}/{msg['dst_len']}", strict=False)
            out.append(Route(network, msg.get("oif"), msg["scope"], msg.get("priority") or 0))
        return out

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
        async with _rtnl() as ipr:
            await _call(ipr.addr("add", **kwargs))

    async def delete_address(self, index: int, interface: IPInterface) -> None:
        async with _rtnl() as ipr:
            await _call(
                ipr.addr(
                    "del",
                    index=index,
                    address=str(interface.ip),
                    prefixlen=interface.network.prefixlen,
                )
            )

    async def set_link_up(self, index: int) -> None:
        async with _rtnl() as ipr:
            await _call(ipr.link("set", index=index, state="up"))

    async def promote_secondaries(self, ifname: str) -> bool:
        # /proc/sys/net belongs to the network namespace of the thread that opens it, and the
        # default executor's threads are started by the event loop's thread, so this reaches
        # the same namespace as the netlink sockets.
        return await asyncio.to_thread(self._promote_secondaries, ifname)

    def _promote_secondaries(self, ifname: str) -> bool:
        # The kernel ORs "all" with the device's own setting.
        for scope in ("all", ifname):
            if (self._sysctl_root / scope / "promote_secondaries").read_text().strip() == "1":
                return False
        (self._sysctl_root / ifname / "promote_secondaries").write_text("1\n")
        return True


@asynccontextmanager
async def _rtnl() -> AsyncIterator[Any]:
    ipr = AsyncIPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


async def _call(request: Awaitable[_T]) -> _T:
    """Await a pyroute2 request, turning its NetlinkError into the OSError it stands for."""
    try:
        return await request
    except NetlinkError as err:
        raise OSError(err.code, os.strerror(err.code)) from None


def _link(msg: Any) -> Link:
    mac = msg.get("address") or ""
    return Link(
        index=msg["index"],
        name=msg.get("ifname"),
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
        interface=ipaddress.ip_interface(f"{ip}/{msg['prefixlen']}"),
        label=msg.get("label"),
        broadcast=IPv4Address(broadcast) if broadcast else None,
        flags=AddressFlag(flags if flags is not None else msg["flags"]),
    )
