"""The IPaddr2 and IPaddr resource agents: a floating IP address on this node.

Both are ``AddressAgent``; each has its own metadata. IPaddr2 follows ``ocf:heartbeat:IPaddr2``.
IPaddr keeps Heartbeat's legacy parameter names and defaults, which ``IPaddr::ip/cidr/nic``
lines expect.
"""

from __future__ import annotations

from hacore.agent import Action, Metadata, Parameter, ParamType

from hacore_ipaddr.address_agent import AddressAgent

_PARAM_NIC = Parameter(
    "nic",
    "Network interface",
    "The interface the address goes on. Empty: the interface with a directly connected subnet "
    "that contains the address (the longest prefix wins), as findif does. The deprecated "
    "'eth0:label' spelling is accepted and sets the label.",
)
_PARAM_CIDR = Parameter(
    "cidr_netmask",
    "Prefix length",
    "The prefix length (24) or, for IPv4, a dotted netmask (255.255.255.0). Empty: the prefix "
    "of the route that covers the address.",
)
_PARAM_BROADCAST = Parameter(
    "broadcast",
    "Broadcast address",
    "IPv4 only. Empty or '+': the subnet's broadcast address; '-': none.",
)
_PARAM_IFLABEL = Parameter(
    "iflabel",
    "Interface label",
    "IPv4 only. The address is labelled '<nic>:<iflabel>' (at most 15 characters in all), "
    "so that ifconfig shows it as an alias.",
)
_DESCRIPTION = (
    "Adds the address to an interface, brings the interface up, and announces the address "
    "with gratuitous ARP (an ARP REQUEST and an ARP REPLY per round, both broadcast) or, for "
    "IPv6, unsolicited neighbour advertisements. The first round leaves as soon as the address "
    "is up; the rest follow in the background. Stopping deletes only this address; if it is "
    "the primary address of its subnet, promote_secondaries is enabled on the interface first "
    "so that the subnet's other addresses survive."
)


def _announce_params(
    count: str, count_default: str, interval: str, interval_default: str, refresh: str | None = None
) -> tuple[Parameter, ...]:
    params = [
        Parameter(
            interval,
            "Interval between announcements (ms)",
            "Milliseconds between two rounds of gratuitous ARP (REQUEST + REPLY) or "
            "neighbour advertisements.",
            ParamType.INTEGER,
            interval_default,
        ),
        Parameter(
            count,
            "Number of announcements at start",
            "Rounds of gratuitous ARP or neighbour advertisements sent at start; the "
            "first leaves as soon as the address is up.",
            ParamType.INTEGER,
            count_default,
        ),
    ]
    if refresh is not None:
        params.append(
            Parameter(
                refresh,
                "Announcements at each monitor",
                "Rounds re-sent after each successful monitor, for switches and routers that "
                "forget (0: none).",
                ParamType.INTEGER,
                "0",
            )
        )
    return tuple(params)


class IPaddr2(AddressAgent):
    """``ocf:heartbeat:IPaddr2``'s parameters and defaults."""

    count_param = "arp_count"
    interval_param = "arp_interval"
    refresh_param = "arp_count_refresh"

    metadata = Metadata(
        name="IPaddr2",
        shortdesc="Manages virtual IPv4 and IPv6 addresses",
        longdesc=_DESCRIPTION,
        parameters=(
            Parameter(
                "ip",
                "IPv4 or IPv6 address",
                "The floating address, e.g. 192.168.10.55 or 2001:db8::55.",
                required=True,
                unique=True,
            ),
            _PARAM_NIC,
            _PARAM_CIDR,
            _PARAM_BROADCAST,
            _PARAM_IFLABEL,
            *_announce_params("arp_count", "5", "arp_interval", "200", "arp_count_refresh"),
            Parameter(
                "nodad",
                "Skip IPv6 duplicate address detection",
                "IPv6 only. The address is usable, and announced, at once instead of "
                "after one to two seconds of duplicate address detection.",
                ParamType.BOOLEAN,
                "false",
            ),
            Parameter(
                "noprefixroute",
                "Do not add a prefix route",
                "Add the address without the route to its subnet.",
                ParamType.BOOLEAN,
                "false",
            ),
            Parameter(
                "preferred_lft",
                "IPv6 preferred lifetime",
                "IPv6 only. 'forever' or seconds; 0 keeps the address from being "
                "chosen as a source address.",
                default="forever",
            ),
        ),
        positional=("ip",),
    )


class IPaddr(AddressAgent):
    """Heartbeat's legacy ``IPaddr``: same behaviour, its own parameter names and defaults.

    Unlike the shell agent, ``nic`` has no ``eth0`` default: it is derived from the routing
    table, since few machines still have an eth0. IPaddr's ifconfig aliases (``eth0:0``) are
    not made up: an address gets a label only when ``iflabel`` asks for one."""

    count_param = "ARP_REPEAT"
    interval_param = "ARP_INTERVAL_MS"

    metadata = Metadata(
        name="IPaddr",
        shortdesc="Manages virtual IPv4 addresses (portable version)",
        longdesc=_DESCRIPTION,
        parameters=(
            Parameter(
                "ip",
                "IPv4 address",
                "The floating address, e.g. 192.168.10.55.",
                required=True,
                unique=True,
            ),
            _PARAM_NIC,
            _PARAM_CIDR,
            _PARAM_BROADCAST,
            _PARAM_IFLABEL,
            *_announce_params("ARP_REPEAT", "10", "ARP_INTERVAL_MS", "500"),
        ),
        actions=(
            Action("start", 20_000),
            Action("stop", 20_000),
            Action("monitor", 20_000, interval_ms=5_000),
            Action("validate-all", 20_000),
            Action("meta-data", 5_000),
        ),
        positional=("ip",),
    )
