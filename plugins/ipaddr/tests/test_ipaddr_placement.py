"""Where an address goes (findif's rules), from routing tables given by hand."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, ip_interface, ip_network

import pytest

from hacore_ipaddr.netlink import RT_SCOPE_LINK, Link, Route
from hacore_ipaddr.placement import PlacementError, place
from hacore_ipaddr.spec import AnnouncePolicy, VipSpec, build_spec

ETH0 = Link(2, "eth0", bytes.fromhex("00005e005301"), 1, True, "UP")
ETH1 = Link(3, "eth1", bytes.fromhex("00005e005302"), 1, True, "UP")
LINKS = [ETH0, ETH1]
ROUTES = [
    Route(ip_network("198.51.100.0/24"), ETH0.index),
    Route(ip_network("198.51.100.0/26"), ETH1.index),  # a longer prefix inside eth0's subnet
    Route(ip_network("203.0.113.0/24"), ETH1.index),
    Route(ip_network("2001:db8::/64"), ETH0.index, scope=0),
]


def spec(**params: str) -> VipSpec:
    return build_spec(params, AnnouncePolicy(count=5, interval_ms=200))


def test_nic_and_prefix_come_from_the_covering_route() -> None:
    where = place(spec(ip="198.51.100.100"), LINKS, ROUTES)
    assert where.link == ETH0
    assert where.interface == ip_interface("198.51.100.100/24")
    assert where.broadcast == IPv4Address("198.51.100.255")


def test_longest_prefix_wins() -> None:
    where = place(spec(ip="198.51.100.10"), LINKS, ROUTES)
    assert (where.link, where.interface) == (ETH1, ip_interface("198.51.100.10/26"))


def test_a_given_netmask_only_matches_routes_at_least_that_wide() -> None:
    # "ip route list match 198.51.100.10/25" skips the /26 route.
    where = place(spec(ip="198.51.100.10", cidr_netmask="25"), LINKS, ROUTES)
    assert (where.link, where.interface) == (ETH0, ip_interface("198.51.100.10/25"))


def test_a_given_nic_restricts_the_routes() -> None:
    where = place(spec(ip="198.51.100.10", nic="eth0"), LINKS, ROUTES)
    assert (where.link, where.interface) == (ETH0, ip_interface("198.51.100.10/24"))


def test_nic_and_netmask_given_need_no_route() -> None:
    where = place(spec(ip="192.0.2.7", nic="eth1", cidr_netmask="32"), LINKS, ROUTES)
    assert (where.link, where.interface, where.broadcast) == (
        ETH1,
        ip_interface("192.0.2.7/32"),
        None,
    )


def test_ipv6_has_no_broadcast_and_no_label() -> None:
    where = place(spec(ip="2001:db8::100", iflabel="web"), LINKS, ROUTES)
    assert (where.link, where.interface) == (ETH0, ip_interface("2001:db8::100/64"))
    assert (where.broadcast, where.label) == (None, None)


def test_ipv4_ignores_routes_that_are_not_link_scope() -> None:
    routes = [Route(ip_network("198.51.100.0/24"), ETH0.index, scope=0)]
    with pytest.raises(PlacementError, match="no interface has a subnet"):
        place(spec(ip="198.51.100.100"), LINKS, routes)


def test_label_is_nic_colon_iflabel() -> None:
    assert place(spec(ip="198.51.100.100", iflabel="web"), LINKS, ROUTES).label == "eth0:web"


def test_label_longer_than_15_characters_is_refused() -> None:
    with pytest.raises(PlacementError, match="longer than the kernel's 15 characters"):
        place(spec(ip="198.51.100.100", iflabel="webserver12"), LINKS, ROUTES)


def test_explicit_and_suppressed_broadcast() -> None:
    given = place(spec(ip="198.51.100.100", broadcast="198.51.100.127"), LINKS, ROUTES)
    assert given.broadcast == IPv4Address("198.51.100.127")
    assert place(spec(ip="198.51.100.100", broadcast="-"), LINKS, ROUTES).broadcast is None


def test_missing_nic() -> None:
    with pytest.raises(PlacementError, match="interface 'eth9' does not exist on this node"):
        place(spec(ip="198.51.100.100", nic="eth9", cidr_netmask="24"), LINKS, ROUTES)


def test_no_subnet_and_no_netmask_says_what_to_set() -> None:
    with pytest.raises(PlacementError) as caught:
        place(spec(ip="192.0.2.7"), LINKS, ROUTES)
    assert str(caught.value) == (
        "no interface has a subnet containing 192.0.2.7: set 'nic' (and 'cidr_netmask') to say "
        "where it goes (e.g. IPaddr2::192.0.2.7/24/eth0), or give an interface an address in "
        "that subnet"
    )


def test_nic_without_netmask_and_no_route_asks_for_the_netmask() -> None:
    with pytest.raises(PlacementError, match="set cidr_netmask"):
        place(spec(ip="192.0.2.7", nic="eth0"), LINKS, ROUTES)


def test_same_subnet_on_two_interfaces_is_ambiguous() -> None:
    routes = [
        Route(ip_network("198.51.100.0/24"), ETH0.index, RT_SCOPE_LINK),
        Route(ip_network("198.51.100.0/24"), ETH1.index, RT_SCOPE_LINK),
    ]
    with pytest.raises(PlacementError, match=r"several interfaces \(eth0, eth1\)"):
        place(spec(ip="198.51.100.100"), LINKS, routes)


def test_lower_metric_breaks_a_tie() -> None:
    routes = [
        Route(ip_network("198.51.100.0/24"), ETH0.index, RT_SCOPE_LINK, priority=100),
        Route(ip_network("198.51.100.0/24"), ETH1.index, RT_SCOPE_LINK, priority=10),
    ]
    assert place(spec(ip="198.51.100.100"), LINKS, routes).link == ETH1


def test_derived_prefix_must_not_make_the_address_its_subnets_broadcast() -> None:
    with pytest.raises(PlacementError, match=re.escape("broadcast address of 198.51.100.0/24")):
        place(spec(ip="198.51.100.255"), LINKS, ROUTES)
