"""What the configuration asks for: the haresources argument split into parameters, and the
parameters checked and normalised into one frozen ``VipSpec``.

Nothing here looks at the node: which interface and prefix the address ends up on is decided by
``placement`` against the routing table. Every error is a ``ConfigurationError`` whose message
names the parameter and says what would be accepted.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from hacore.agent import ConfigurationError, is_true

IPAddress = IPv4Address | IPv6Address

IFNAMSIZ = 16  # the kernel's limit, NUL included: names and labels are at most 15 characters

USAGE = "ip[/cidr[/nic[:label]][/broadcast]]"

# Heartbeat's wrapper takes a third field that starts with a digit as the broadcast address
# (``IPaddr::1.2.3.4/24/1.2.3.255``); requiring digits and dots only keeps that rule and still
# lets an interface name such as ``0vlan`` be told apart when it has a letter in it.
_BROADCAST_FIELD = re.compile(r"[0-9.]+")


class Broadcast(enum.Enum):
    """Broadcast modes besides an explicit address (IPaddr2's ``+``/``-`` spelling)."""

    AUTO = "+"  # the subnet's broadcast address (what ``ip addr add ... brd +`` computes)
    NONE = "-"  # no broadcast address


@dataclass(frozen=True)
class AnnouncePolicy:
    """How loudly a newly held address is announced (gratuitous ARP / unsolicited NA)."""

    count: int  # rounds at start; each IPv4 round is an ARP REQUEST and an ARP REPLY
    interval_ms: int  # between rounds; the first round leaves at once
    refresh: int = 0  # rounds re-sent after each successful monitor (0: none)


@dataclass(frozen=True)
class VipSpec:
    ip: IPAddress  # normalised: str() gives the RFC 5952 form for IPv6
    prefixlen: int | None  # None: taken from the route that covers the address
    nic: str | None  # None: the interface whose subnet covers the address (findif)
    label: str | None  # the suffix only: the address gets label "<nic>:<label>" (IPv4)
    broadcast: IPv4Address | Broadcast
    announce: AnnouncePolicy
    nodad: bool = False  # IPv6: skip duplicate address detection, usable at once
    noprefixroute: bool = False
    preferred_lft: int | None = None  # IPv6 preferred lifetime in seconds; None: forever

    @property
    def version(self) -> int:
        return self.ip.version

    @property
    def max_prefixlen(self) -> int:
        return self.ip.max_prefixlen


def parse_haresources(agent: str, args: Sequence[str]) -> dict[str, str]:
    """Map a haresources argument (``IPaddr::192.168.10.55/24/eth0``) onto parameters.

    The form is ``ip[/cidr[/nic[:label]][/broadcast]]``; a third field made of digits and dots
    is the broadcast address (``1.2.3.4/24/1.2.3.255``). Empty fields mean "derive it"."""
    if len(args) != 1:
        raise ConfigurationError(
            f"{agent} takes one argument, {USAGE} (e.g. {agent}::192.168.10.55/24/eth0), "
            f"got {len(args)}"
        )
    fields = args[0].strip().split("/")
    if not fields[0]:
        raise ConfigurationError(f"{agent}::{args[0]}: the address is missing; expected {USAGE}")
    params = {"ip": fields[0]}
    if len(fields) > 1 and fields[1]:
        params["cidr_netmask"] = fields[1]
    rest = fields[2:]
    if rest and _BROADCAST_FIELD.fullmatch(rest[0]):
        params["broadcast"] = rest[0]
        extra = rest[1:]
    else:
        if rest and rest[0]:
            nic, _, label = rest[0].partition(":")
            params["nic"] = nic
            if label:
                params["iflabel"] = label
        if len(rest) > 1 and rest[1]:
            params["broadcast"] = rest[1]
        extra = rest[2:]
    if extra:
        raise ConfigurationError(f"{agent}::{args[0]}: too many '/' fields; expected {USAGE}")
    return params


def parse_ip(text: str) -> IPAddress:
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        raise ConfigurationError(f"ip '{text}' is not a valid IPv4 or IPv6 address") from None
    if ip.is_unspecified or ip.is_multicast or ip == IPv4Address("255.255.255.255"):
        raise ConfigurationError(f"ip '{text}' is not a unicast address a node can hold")
    return ip


def parse_prefixlen(text: str, ip: IPAddress) -> int:
    """A prefix length (``24``) or, for IPv4, a dotted netmask (``255.255.255.0``)."""
    text = text.strip()
    if ip.version == 4 and "." in text:
        try:
            return ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen
        except ValueError:
            raise ConfigurationError(
                f"cidr_netmask '{text}' is not a valid netmask (use a prefix length such as 24)"
            ) from None
    if not text.isdigit() or not 1 <= int(text) <= ip.max_prefixlen:
        raise ConfigurationError(
            f"cidr_netmask '{text}' must be a prefix length from 1 to {ip.max_prefixlen}"
        )
    return int(text)


def host_problem(ip: IPAddress, prefixlen: int) -> str | None:
    """Why ``ip/prefixlen`` cannot be a host address (its subnet's network or broadcast address
    in IPv4), or None."""
    if ip.version == 4 and prefixlen <= 30:
        net = ipaddress.ip_network(f"{ip}/{prefixlen}", strict=False)
        if ip in (net.network_address, net.broadcast_address):
            kind = "network" if ip == net.network_address else "broadcast"
            return f"ip {ip} is the {kind} address of {net}"
    return None


def check_ifname(name: str, what: str) -> str:
    if not name or len(name) >= IFNAMSIZ or "/" in name or any(c.isspace() for c in name):
        raise ConfigurationError(
            f"{what} '{name}' is not a valid interface name (1 to {IFNAMSIZ - 1} characters, "
            "no '/' or spaces)"
        )
    return name


def build_spec(params: Mapping[str, str], announce: AnnouncePolicy) -> VipSpec:
    """The checked, normalised form of an agent's parameters (defaults already applied)."""
    ip = parse_ip(params["ip"])
    prefixlen = None
    if params.get("cidr_netmask"):
        prefixlen = parse_prefixlen(params["cidr_netmask"], ip)
        problem = host_problem(ip, prefixlen)
        if problem:
            raise ConfigurationError(problem)

    nic = params.get("nic") or None
    label = params.get("iflabel") or None
    if nic and ":" in nic:
        # The deprecated "eth0:label" spelling; as in IPaddr2 it wins over iflabel.
        nic, _, label = nic.partition(":")
    if nic is not None:
        check_ifname(nic, "nic")
    if ip.is_link_local and ip.version == 6 and nic is None:
        raise ConfigurationError(f"ip {ip} is link-local: 'nic' must say which link")

    broadcast: IPv4Address | Broadcast = Broadcast.AUTO
    raw = (params.get("broadcast") or "").strip()
    if raw == "-":
        broadcast = Broadcast.NONE
    elif raw and raw != "+":
        if ip.version != 4:
            raise ConfigurationError(f"broadcast '{raw}' is meaningless for IPv6 address {ip}")
        try:
            broadcast = IPv4Address(raw)
        except ValueError:
            raise ConfigurationError(
                f"broadcast '{raw}' is not an IPv4 address (or '+' for the subnet's, '-' for none)"
            ) from None

    preferred_lft = None
    lft = (params.get("preferred_lft") or "forever").strip()
    if lft != "forever":
        if not lft.isdigit():
            raise ConfigurationError(
                f"preferred_lft '{lft}' must be 'forever' or a number of seconds"
            )
        preferred_lft = int(lft)

    for name, value in (
        ("count", announce.count),
        ("interval", announce.interval_ms),
        ("refresh", announce.refresh),
    ):
        if value < 0:
            raise ConfigurationError(f"the announcement {name} must not be negative, not {value}")

    return VipSpec(
        ip=ip,
        prefixlen=prefixlen,
        nic=nic,
        label=label,
        broadcast=broadcast,
        announce=announce,
        nodad=is_true(params.get("nodad")),
        noprefixroute=is_true(params.get("noprefixroute")),
        preferred_lft=preferred_lft,
    )
