"""The haresources argument and the parameters, checked and normalised without a node."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from hacore.agent import ConfigurationError

from hacore_ipaddr.agents import IPaddr, IPaddr2
from hacore_ipaddr.spec import AnnouncePolicy, Broadcast, build_spec, parse_haresources

POLICY = AnnouncePolicy(count=5, interval_ms=200)


@pytest.mark.parametrize(
    ("argument", "params"),
    [
        ("192.168.10.55", {"ip": "192.168.10.55"}),
        ("192.168.10.55/24", {"ip": "192.168.10.55", "cidr_netmask": "24"}),
        ("192.168.10.55/24/eth0", {"ip": "192.168.10.55", "cidr_netmask": "24", "nic": "eth0"}),
        (
            "192.168.10.55/24/eth0:web",
            {"ip": "192.168.10.55", "cidr_netmask": "24", "nic": "eth0", "iflabel": "web"},
        ),
        (
            "135.9.8.7/24/eth0/135.9.8.210",
            {"ip": "135.9.8.7", "cidr_netmask": "24", "nic": "eth0", "broadcast": "135.9.8.210"},
        ),
        # A third field of digits and dots is the broadcast address, not an interface.
        ("1.2.3.4/24/1.2.3.255", {"ip": "1.2.3.4", "cidr_netmask": "24", "broadcast": "1.2.3.255"}),
        ("192.168.10.55/255.255.255.0", {"ip": "192.168.10.55", "cidr_netmask": "255.255.255.0"}),
        # Empty fields mean "derive it".
        ("192.168.10.55//eth0", {"ip": "192.168.10.55", "nic": "eth0"}),
        ("2001:db8::55/64/eth0", {"ip": "2001:db8::55", "cidr_netmask": "64", "nic": "eth0"}),
    ],
)
def test_haresources_argument(argument: str, params: dict[str, str]) -> None:
    assert parse_haresources("IPaddr", [argument]) == params


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "takes one argument"),
        (["1.2.3.4", "eth0"], "takes one argument"),
        (["/24/eth0"], "the address is missing"),
        (["1.2.3.4/24/eth0/1.2.3.255/x"], "too many '/' fields"),
        (["1.2.3.4/24/1.2.3.255/eth0"], "too many '/' fields"),
    ],
)
def test_malformed_haresources_argument(args: list[str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_haresources("IPaddr", args)


def test_agents_parse_their_haresources_argument() -> None:
    assert IPaddr.parse_args(["192.168.10.55/24/eth0"]) == {
        "ip": "192.168.10.55",
        "cidr_netmask": "24",
        "nic": "eth0",
    }
    params = IPaddr2.resolve(IPaddr2.parse_args(["192.168.10.55/24/eth0"]))
    assert params["arp_count"] == "5"
    assert params["arp_interval"] == "200"


def test_ipv6_is_normalised_to_rfc5952() -> None:
    spec = build_spec({"ip": "2001:0DB8:0000:0000:0000:0000:0000:0100"}, POLICY)
    assert spec.ip == IPv6Address("2001:db8::100")
    assert str(spec.ip) == "2001:db8::100"


def test_dotted_netmask_becomes_a_prefix_length() -> None:
    spec = build_spec({"ip": "198.51.100.100", "cidr_netmask": "255.255.255.0"}, POLICY)
    assert spec.prefixlen == 24


def test_deprecated_nic_label_spelling_wins_over_iflabel() -> None:
    spec = build_spec({"ip": "198.51.100.100", "nic": "eth0:web", "iflabel": "other"}, POLICY)
    assert (spec.nic, spec.label) == ("eth0", "web")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", Broadcast.AUTO),
        ("+", Broadcast.AUTO),
        ("-", Broadcast.NONE),
        ("198.51.100.127", IPv4Address("198.51.100.127")),
    ],
)
def test_broadcast(value: str, expected: object) -> None:
    assert build_spec({"ip": "198.51.100.100", "broadcast": value}, POLICY).broadcast == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ip": "198.51.100.300"}, "not a valid IPv4 or IPv6 address"),
        ({"ip": "eth0"}, "not a valid IPv4 or IPv6 address"),
        ({"ip": "0.0.0.0"}, "not a unicast address"),
        ({"ip": "224.0.0.18"}, "not a unicast address"),
        ({"ip": "198.51.100.100", "cidr_netmask": "33"}, "prefix length from 1 to 32"),
        ({"ip": "198.51.100.100", "cidr_netmask": "0"}, "prefix length from 1 to 32"),
        ({"ip": "2001:db8::1", "cidr_netmask": "129"}, "prefix length from 1 to 128"),
        ({"ip": "198.51.100.100", "cidr_netmask": "255.0.255.0"}, "not a valid netmask"),
        ({"ip": "198.51.100.0", "cidr_netmask": "24"}, "network address of 198.51.100.0/24"),
        ({"ip": "198.51.100.255", "cidr_netmask": "24"}, "broadcast address of 198.51.100.0/24"),
        ({"ip": "198.51.100.100", "nic": "a-very-long-ifname"}, "not a valid interface name"),
        ({"ip": "198.51.100.100", "broadcast": "x"}, "not an IPv4 address"),
        ({"ip": "2001:db8::1", "broadcast": "1.2.3.4"}, "meaningless for IPv6"),
        ({"ip": "fe80::1"}, "link-local: 'nic' must say which link"),
        ({"ip": "2001:db8::1", "preferred_lft": "soon"}, "'forever' or a number of seconds"),
    ],
)
def test_bad_parameters_are_configuration_errors(params: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build_spec(params, POLICY)


def test_negative_announcement_count_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must not be negative"):
        build_spec({"ip": "198.51.100.100"}, AnnouncePolicy(count=-1, interval_ms=200))


def test_instance_name_is_heartbeats() -> None:
    assert IPaddr2.instance_name({"ip": "2001:db8:0::100"}) == "IPaddr2_2001:db8::100"
    assert IPaddr.instance_name({"ip": "192.168.10.55"}) == "IPaddr_192.168.10.55"
