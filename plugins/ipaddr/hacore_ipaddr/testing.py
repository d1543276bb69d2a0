"""In-memory stand-ins for the two ports, for unit tests of the agents (here and in hacore's
own tests of the resource manager): ``FakeAddressPort`` behaves like the kernel's address
configuration in the ways the agents depend on, ``FakeAnnouncer`` records announcements.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from dataclasses import dataclass, replace

from hacore_ipaddr.announce import Announcement
from hacore_ipaddr.netlink import (
    NO_FLAGS,
    RT_SCOPE_LINK,
    Address,
    AddressFlag,
    IPInterface,
    Link,
    NewAddress,
    Route,
)


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class FakeAddressPort:
    """``AddressPort`` over dictionaries.

    Kept true to the kernel where the agents rely on it: a subnet route exists for every
    address on an up link (unless noprefixroute); an IPv4 address in a subnet that already has
    one is SECONDARY; deleting a primary deletes its secondaries unless promote_secondaries is
    on; IPv6 addresses added without nodad stay TENTATIVE for ``dad_listings`` listings of
    their link's addresses, then become usable, or DADFAILED if ``dad_fails``.
    ``fail[operation]`` makes that operation raise the given OSError. ``calls`` records the
    operations in order.
    """

    def __init__(self, *, dad_listings: int = 0, dad_fails: bool = False) -> None:
        self._links: dict[int, Link] = {}
        self._addresses: list[Address] = []
        self._extra_routes: list[Route] = []
        self._dad_pending: dict[tuple[int, IPInterface], int] = {}
        self.dad_listings = dad_listings
        self.dad_fails = dad_fails
        self.carrier: dict[int, bool] = {}
        self.promote: set[str] = set()
        self.fail: dict[str, OSError] = {}
        self.calls: list[str] = []
        self._next_index = 1  # as in the kernel, a removed link's index is not reused at once

    # -- setting the scene --------------------------------------------------------------------

    def add_link(
        self,
        name: str,
        *,
        up: bool = True,
        carrier: bool = True,
        mac: bytes | None = None,
        hwtype: int = 1,
    ) -> Link:
        index, self._next_index = self._next_index, self._next_index + 1
        link = Link(
            index=index,
            name=name,
            mac=mac if mac is not None else bytes([0x02, 0, 0x5E, 0, 0x53, index]),
            hwtype=hwtype,
            admin_up=up,
            operstate=("UP" if carrier else "DOWN") if up else "DOWN",
        )
        self._links[index] = link
        self.carrier[index] = carrier
        return link

    def remove_link(self, name: str) -> None:
        """The link vanishes with its addresses and routes (``ip link del``)."""
        index = self._by_name(name).index
        self._addresses = [a for a in self._addresses if a.index != index]
        self._extra_routes = [r for r in self._extra_routes if r.index != index]
        del self._links[index], self.carrier[index]

    def assign(self, name: str, interface: str, *, flags: AddressFlag = NO_FLAGS) -> Address:
        """Put an address on a link as the node's own configuration would."""
        return self._insert(self._by_name(name).index, ipaddress.ip_interface(interface), flags)

    def add_route(self, network: str, name: str, *, priority: int = 0) -> None:
        self._extra_routes.append(
            Route(ipaddress.ip_network(network), self._by_name(name).index, RT_SCOPE_LINK, priority)
        )

    def set_carrier(self, name: str, carrier: bool) -> None:
        link = self._by_name(name)
        self.carrier[link.index] = carrier
        self._links[link.index] = replace(link, operstate=self._operstate(link.admin_up, carrier))

    def set_admin(self, name: str, up: bool) -> None:
        link = self._by_name(name)
        self._links[link.index] = replace(
            link, admin_up=up, operstate=self._operstate(up, self.carrier[link.index])
        )

    def link_index(self, name: str) -> int:
        return self._by_name(name).index

    def held(self, name: str) -> list[str]:
        """The addresses on a link, as ``ip/prefix`` strings."""
        index = self._by_name(name).index
        return [str(a.interface) for a in self._addresses if a.index == index]

    def address(self, name: str, ip: str) -> Address | None:
        index = self._by_name(name).index
        wanted = ipaddress.ip_address(ip)
        return next((a for a in self._addresses if a.index == index and a.ip == wanted), None)

    # -- AddressPort --------------------------------------------------------------------------

    async def link(self, name: str) -> Link | None:
        self._enter("link")
        return next((link for link in self._links.values() if link.name == name), None)

    async def links(self) -> list[Link]:
        self._enter("links")
        return list(self._links.values())

    async def addresses(self, index: int | None = None) -> list[Address]:
        self._enter("addresses")
        self._advance_dad(index)
        return [a for a in self._addresses if index is None or a.index == index]

    async def routes(self, version: int) -> list[Route]:
        self._enter("routes")
        connected = [
            # IPv4: one route per subnet, made by its primary address and naming it.
            Route(
                a.interface.network,
                a.index,
                RT_SCOPE_LINK,
                0 if version == 4 else 256,
                a.ip if version == 4 else None,
            )
            for a in self._addresses
            if a.interface.version == version
            and not a.flags & AddressFlag.SECONDARY
            and a.interface.network.prefixlen < a.interface.max_prefixlen
            and not a.flags & AddressFlag.NOPREFIXROUTE
            and self._links[a.index].admin_up
        ]
        extra = [r for r in self._extra_routes if r.network.version == version]
        return list({r: None for r in connected + extra})

    async def add_address(self, new: NewAddress) -> None:
        self._enter("add_address")
        if new.index not in self._links:
            raise _error(errno.ENODEV)
        if any(a.index == new.index and a.ip == new.interface.ip for a in self._addresses):
            raise _error(errno.EEXIST)
        flags = NO_FLAGS
        if new.noprefixroute:
            flags |= AddressFlag.NOPREFIXROUTE
        if new.interface.version == 6:
            if new.nodad:
                flags |= AddressFlag.NODAD
            elif self.dad_listings or self.dad_fails:
                flags |= AddressFlag.TENTATIVE
                self._dad_pending[(new.index, new.interface)] = self.dad_listings
        self._insert(new.index, new.interface, flags, label=new.label, broadcast=new.broadcast)

    async def delete_address(self, index: int, interface: IPInterface) -> None:
        self._enter("delete_address")
        victim = next(
            (a for a in self._addresses if a.index == index and a.interface == interface), None
        )
        if victim is None:
            raise _error(errno.EADDRNOTAVAIL)
        self._addresses.remove(victim)
        if victim.interface.version != 4 or victim.flags & AddressFlag.SECONDARY:
            return
        same_subnet = [
            a
            for a in self._addresses
            if a.index == index and a.interface.network == victim.interface.network
        ]
        if self._links[index].name in self.promote:
            if same_subnet:
                promoted = replace(
                    same_subnet[0], flags=same_subnet[0].flags & ~AddressFlag.SECONDARY
                )
                self._addresses[self._addresses.index(same_subnet[0])] = promoted
        else:
            for gone in same_subnet:
                self._addresses.remove(gone)

    async def set_link_up(self, index: int) -> None:
        self._enter("set_link_up")
        link = self._links[index]
        self._links[index] = replace(
            link, admin_up=True, operstate=self._operstate(True, self.carrier[index])
        )

    async def promote_secondaries(self, ifname: str) -> bool:
        self._enter("promote_secondaries")
        if ifname in self.promote:
            return False
        self.promote.add(ifname)
        return True

    # -- internals ----------------------------------------------------------------------------

    def _enter(self, operation: str) -> None:
        self.calls.append(operation)
        if operation in self.fail:
            raise self.fail[operation]

    def _by_name(self, name: str) -> Link:
        return next(link for link in self._links.values() if link.name == name)

    @staticmethod
    def _operstate(admin_up: bool, carrier: bool) -> str:
        return "UP" if admin_up and carrier else "DOWN"

    def _insert(
        self,
        index: int,
        interface: IPInterface,
        flags: AddressFlag,
        *,
        label: str | None = None,
        broadcast: ipaddress.IPv4Address | None = None,
    ) -> Address:
        if interface.version == 4:
            if any(
                a.index == index and a.interface.network == interface.network
                for a in self._addresses
            ):
                flags |= AddressFlag.SECONDARY
            label = label or self._links[index].name
        address = Address(
            index, interface, label if interface.version == 4 else None, broadcast, flags
        )
        self._addresses.append(address)
        return address

    def _advance_dad(self, index: int | None) -> None:
        for key, left in list(self._dad_pending.items()):
            if index is not None and key[0] != index:
                continue
            if left > 0:
                self._dad_pending[key] = left - 1
                continue
            del self._dad_pending[key]
            for i, a in enumerate(self._addresses):
                if (a.index, a.interface) == key:
                    done = a.flags & ~AddressFlag.TENTATIVE
                    if self.dad_fails:
                        done |= AddressFlag.DADFAILED
                    self._addresses[i] = replace(a, flags=done)


@dataclass(frozen=True)
class Burst:
    what: Announcement
    count: int
    interval_ms: int


class FakeAnnouncer:
    """``AnnouncerPort`` that records each burst instead of sending it."""

    def __init__(self) -> None:
        self.bursts: list[Burst] = []
        self.cancels = 0

    async def announce(self, what: Announcement, count: int, interval_ms: int) -> None:
        self.bursts.append(Burst(what, count, interval_ms))

    async def cancel(self) -> None:
        self.cancels += 1
