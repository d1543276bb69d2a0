"""Where an address goes: interface, prefix length, broadcast and label, decided from the routing
table as resource-agents' ``findif`` does, but as pure functions of what the kernel reported.

findif's rule: among the main table's directly connected routes whose subnet covers the address
(and covers ``ip/cidr_netmask`` when a netmask is given), the longest prefix wins; it names the
interface when ``nic`` is not given and the prefix length when ``cidr_netmask`` is not given.
IPv4 considers only link-scope routes. With both ``nic`` and ``cidr_netmask`` given no route is
needed, so an address outside every configured subnet can still be held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, ip_interface

from hacore_ipaddr.netlink import RT_SCOPE_LINK, IPInterface, Link, Route
from hacore_ipaddr.spec import IFNAMSIZ, Broadcast, VipSpec, host_problem


class PlacementError(Exception):
    """The address cannot be placed on this node; the message says what to configure."""


@dataclass(frozen=True)
class Placement:
    link: Link
    interface: IPInterface  # the address with its prefix length
    broadcast: IPv4Address | None
    label: str | None  # the full label, "<nic>:<iflabel>"


def place(spec: VipSpec, links: Sequence[Link], routes: Sequence[Route]) -> Placement:
    """Decide the placement of ``spec``. ``links`` must hold the link named by ``spec.nic`` (if
    any; it may hold only that one) and, when ``spec.nic`` is unset, every link a route names."""
    by_name = {link.name: link for link in links}
    if spec.nic is not None and spec.nic not in by_name:
        raise PlacementError(f"interface '{spec.nic}' does not exist on this node")

    prefixlen = spec.prefixlen
    if spec.nic is not None and prefixlen is not None:
        link = by_name[spec.nic]
    else:
        link, route_prefix = _best_route(spec, links, routes)
        if prefixlen is None:
            prefixlen = route_prefix
            problem = host_problem(spec.ip, prefixlen)
            if problem:
                raise PlacementError(f"{problem} (/{prefixlen} is the subnet on {link.name})")

    interface: IPInterface = ip_interface(f"{spec.ip}/{prefixlen}")
    return Placement(
        link=link,
        interface=interface,
        broadcast=_broadcast(spec, interface),
        label=_label(spec, link),
    )


def _best_route(spec: VipSpec, links: Sequence[Link], routes: Sequence[Route]) -> tuple[Link, int]:
    by_index = {link.index: link for link in links}
    # "ip route list match ip/prefix": the route's subnet holds the address and is no smaller
    # than the wanted prefix.
    wanted = spec.prefixlen or spec.max_prefixlen
    candidates = [
        r
        for r in routes
        if r.network.version == spec.version
        and (spec.version == 6 or r.scope == RT_SCOPE_LINK)
        and spec.ip in r.network
        and r.network.prefixlen <= wanted
        and r.index in by_index
        and (spec.nic is None or by_index[r.index].name == spec.nic)
    ]
    if not candidates:
        raise PlacementError(_no_route_message(spec))
    # Longest prefix first, then the lowest metric, as the kernel would route to it.
    candidates.sort(key=lambda r: (-r.network.prefixlen, r.priority))
    best = candidates[0]
    rivals = sorted(
        {
            by_index[r.index].name
            for r in candidates
            if (r.network.prefixlen, r.priority) == (best.network.prefixlen, best.priority)
        }
    )
    if len(rivals) > 1:
        raise PlacementError(
            f"{spec.ip} is in subnet {best.network} on several interfaces "
            f"({', '.join(rivals)}): set 'nic' to the one it belongs on"
        )
    return by_index[best.index], best.network.prefixlen


def _no_route_message(spec: VipSpec) -> str:
    netmask = f"/{spec.prefixlen}" if spec.prefixlen is not None else ""
    if spec.nic is not None:
        return (
            f"cannot derive the netmask of {spec.ip}: no subnet on '{spec.nic}' contains it; "
            f"set cidr_netmask (e.g. IPaddr2::{spec.ip}/24/{spec.nic})"
        )
    example = f"{spec.ip}/{spec.prefixlen or (24 if spec.version == 4 else 64)}/eth0"
    return (
        f"no interface has a subnet containing {spec.ip}{netmask}: set 'nic' (and "
        f"'cidr_netmask') to say where it goes (e.g. IPaddr2::{example}), or give an "
        "interface an address in that subnet"
    )


def _broadcast(spec: VipSpec, interface: IPInterface) -> IPv4Address | None:
    if not isinstance(interface, IPv4Interface) or spec.broadcast is Broadcast.NONE:
        return None
    if isinstance(spec.broadcast, IPv4Address):
        return spec.broadcast
    # /31 (RFC 3021) and /32 have no broadcast address.
    if interface.network.prefixlen > 30:
        return None
    return interface.network.broadcast_address


def _label(spec: VipSpec, link: Link) -> str | None:
    # Labels exist for IPv4 only (the ifconfig alias "eth0:1"); the kernel has none for IPv6.
    if spec.label is None or spec.version == 6:
        return None
    label = f"{link.name}:{spec.label}"
    if len(label) >= IFNAMSIZ:
        raise PlacementError(
            f"interface label '{label}' is longer than the kernel's {IFNAMSIZ - 1} characters; "
            "shorten iflabel"
        )
    return label
