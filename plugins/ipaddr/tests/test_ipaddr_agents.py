"""The agents' behaviour against the fake ports: what they ask the kernel, in which order."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Coroutine
from ipaddress import ip_interface
from pathlib import Path
from typing import Any, TypeVar
from xml.dom import minidom

import pytest
from hacore.agent import AgentError, ConfigurationError, Instance, OCFResult, PrivilegeError
from hacore.config import load
from hacore.resources.binding import bind

from hacore_ipaddr.agents import IPaddr, IPaddr2
from hacore_ipaddr.announce import Announcement
from hacore_ipaddr.netlink import AddressFlag
from hacore_ipaddr.testing import FakeAddressPort, FakeAnnouncer

_T = TypeVar("_T")
Agent = IPaddr | IPaddr2


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coro)


def node() -> FakeAddressPort:
    """eth0 on 198.51.100.0/24 and 2001:db8::/64, eth1 on 203.0.113.0/24."""
    port = FakeAddressPort()
    port.add_link("lo", hwtype=772, mac=bytes(6))
    port.add_link("eth0")
    port.add_link("eth1")
    port.assign("eth0", "198.51.100.1/24")
    port.assign("eth0", "2001:db8::1/64")
    port.assign("eth1", "203.0.113.1/24")
    return port


def agent(
    port: FakeAddressPort, cls: type[Agent] = IPaddr2, **params: str
) -> tuple[Agent, FakeAnnouncer]:
    announcer = FakeAnnouncer()
    instance = Instance(cls.instance_name(params), cls.resolve(params))
    return cls(instance, port=port, announcer=announcer), announcer


def test_start_adds_the_address_where_the_subnet_is_and_announces_it() -> None:
    port = node()
    vip, announcer = agent(port, ip="203.0.113.100")
    run(vip.start())
    assert port.held("eth1") == ["203.0.113.1/24", "203.0.113.100/24"]
    held = port.address("eth1", "203.0.113.100")
    assert held is not None
    assert str(held.broadcast) == "203.0.113.255"
    [burst] = announcer.bursts
    assert (burst.what.ifname, str(burst.what.ip), burst.count, burst.interval_ms) == (
        "eth1",
        "203.0.113.100",
        5,
        200,
    )
    assert burst.what.mac == bytes.fromhex("02005e005303")


def test_start_uses_the_given_nic_netmask_label_and_broadcast() -> None:
    port = node()
    vip, _ = agent(
        port, ip="192.0.2.7", nic="eth0", cidr_netmask="28", iflabel="web", broadcast="-"
    )
    run(vip.start())
    held = port.address("eth0", "192.0.2.7")
    assert held is not None
    assert (str(held.interface), held.label, held.broadcast) == ("192.0.2.7/28", "eth0:web", None)


def test_start_brings_a_down_link_up_after_adding_the_address() -> None:
    port = node()
    port.set_admin("eth0", False)
    vip, _ = agent(port, ip="198.51.100.100", nic="eth0", cidr_netmask="24")
    run(vip.start())
    assert port.calls.index("set_link_up") > port.calls.index("add_address")
    assert run(vip.monitor()) is OCFResult.SUCCESS


def test_start_of_a_started_address_succeeds_and_announces_again() -> None:
    port = node()
    vip, announcer = agent(port, ip="198.51.100.100")
    run(vip.start())
    run(vip.start())
    # The second start just asks for the address again; the kernel's EEXIST means held.
    assert port.held("eth0").count("198.51.100.100/24") == 1
    assert len(announcer.bursts) == 2


def test_stop_cancels_announcements_then_deletes_only_the_address() -> None:
    port = node()
    port.assign("eth0", "198.51.100.101/24")
    vip, announcer = agent(port, ip="198.51.100.100")
    run(vip.start())
    port.calls.clear()
    run(vip.stop())
    assert announcer.cancels == 1
    assert port.held("eth0") == ["198.51.100.1/24", "2001:db8::1/64", "198.51.100.101/24"]
    assert "promote_secondaries" not in port.calls  # the address was a secondary


def test_stop_of_a_stopped_address_succeeds() -> None:
    port = node()
    vip, announcer = agent(port, ip="198.51.100.100")
    run(vip.stop())
    run(vip.stop())
    assert "delete_address" not in port.calls
    assert announcer.cancels == 2


def test_stopping_a_primary_promotes_secondaries_first() -> None:
    port = node()
    vip, _ = agent(port, ip="192.0.2.7", nic="eth0", cidr_netmask="24")
    run(vip.start())
    port.assign("eth0", "192.0.2.8/24")  # someone else's address, secondary to ours
    address = port.address("eth0", "192.0.2.8")
    assert address is not None
    assert address.flags & AddressFlag.SECONDARY
    run(vip.stop())
    assert port.calls.index("promote_secondaries") < port.calls.index("delete_address")
    assert "192.0.2.8/24" in port.held("eth0")


def test_stop_goes_on_when_promote_secondaries_cannot_be_set(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = node()
    vip, _ = agent(port, ip="192.0.2.7", nic="eth0", cidr_netmask="24")
    run(vip.start())
    port.fail["promote_secondaries"] = OSError(errno.EROFS, os.strerror(errno.EROFS))
    run(vip.stop())
    assert "192.0.2.7/24" not in port.held("eth0")
    assert "deleting a primary address also deletes" in caplog.text


def test_monitor_tells_not_running_running_and_dead_link_apart() -> None:
    port = node()
    vip, _ = agent(port, ip="198.51.100.100", nic="eth0")
    assert run(vip.monitor()) is OCFResult.NOT_RUNNING
    run(vip.start())
    assert run(vip.monitor()) is OCFResult.SUCCESS
    port.set_carrier("eth0", False)
    with pytest.raises(AgentError, match=re.escape("198.51.100.100 is on eth0 but the link")):
        run(vip.monitor())
    port.set_carrier("eth0", True)
    run(vip.stop())
    assert run(vip.monitor()) is OCFResult.NOT_RUNNING


def test_without_nic_monitor_and_stop_find_the_address_on_a_downed_link() -> None:
    # An administratively downed link loses its routes, so the routes no longer say where the
    # address is; stop must still delete it.
    port = node()
    vip, _ = agent(port, ip="198.51.100.100")
    run(vip.start())
    port.set_admin("eth0", False)
    with pytest.raises(AgentError, match="administratively down"):
        run(vip.monitor())
    run(vip.stop())
    assert "198.51.100.100/24" not in port.held("eth0")


def test_monitor_refreshes_announcements_when_asked() -> None:
    port = node()
    vip, announcer = agent(port, ip="198.51.100.100", arp_count_refresh="2")
    run(vip.monitor())
    assert announcer.bursts == []
    run(vip.start())
    run(vip.monitor())
    assert [b.count for b in announcer.bursts] == [5, 2]


def test_missing_nic_is_a_configuration_error_for_start_and_validate() -> None:
    vip, _ = agent(node(), ip="198.51.100.100", nic="eth9", cidr_netmask="24")
    for action in (vip.start, vip.validate):
        with pytest.raises(ConfigurationError) as caught:
            run(action())
        assert str(caught.value) == (
            "IPaddr2 198.51.100.100: interface 'eth9' does not exist on this node"
        )


def test_missing_nic_means_not_running_for_monitor_and_stopped_for_stop() -> None:
    vip, _ = agent(node(), ip="198.51.100.100", nic="eth9", cidr_netmask="24")
    assert run(vip.monitor()) is OCFResult.NOT_RUNNING
    run(vip.stop())


def test_address_outside_every_subnet_needs_nic_and_netmask() -> None:
    vip, _ = agent(node(), ip="192.0.2.7")
    expected = "no interface has a subnet containing 192.0.2.7"
    with pytest.raises(ConfigurationError, match=re.escape(expected)):
        run(vip.validate())


def test_invalid_parameters_fail_every_action_monitor_included() -> None:
    vip, _ = agent(node(), ip="198.51.100.300")
    for action in (vip.start, vip.stop, vip.monitor, vip.validate):
        with pytest.raises(ConfigurationError, match="not a valid IPv4 or IPv6 address"):
            run(action())


def test_permission_denied_is_a_privilege_error() -> None:
    port = node()
    port.fail["add_address"] = OSError(errno.EPERM, os.strerror(errno.EPERM))
    vip, _ = agent(port, ip="198.51.100.100")
    with pytest.raises(PrivilegeError, match=re.escape("cannot add 198.51.100.100/24 to eth0")):
        run(vip.start())


def test_ipv6_start_waits_for_duplicate_address_detection_before_announcing() -> None:
    port = FakeAddressPort(dad_listings=3)
    port.add_link("eth0")
    port.assign("eth0", "2001:db8::1/64")
    vip, announcer = agent(port, ip="2001:db8::100")
    vip.dad_poll_s = 0
    run(vip.start())
    held = port.address("eth0", "2001:db8::100")
    assert held is not None
    assert not held.flags & AddressFlag.TENTATIVE
    assert port.calls.count("addresses") >= 4
    assert len(announcer.bursts) == 1


def test_ipv6_duplicate_address_fails_start_and_removes_the_address() -> None:
    port = FakeAddressPort(dad_listings=1, dad_fails=True)
    port.add_link("eth0")
    port.assign("eth0", "2001:db8::1/64")
    vip, announcer = agent(port, ip="2001:db8::100")
    vip.dad_poll_s = 0
    with pytest.raises(AgentError, match="another host on the link already uses it"):
        run(vip.start())
    assert port.held("eth0") == ["2001:db8::1/64"]
    assert announcer.bursts == []


def test_ipv6_still_tentative_at_the_deadline_is_not_announced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = FakeAddressPort(dad_listings=1_000_000)
    port.add_link("eth0")
    port.assign("eth0", "2001:db8::1/64")
    vip, announcer = agent(port, ip="2001:db8::100")
    vip.dad_timeout_s = 0
    run(vip.start())
    assert announcer.bursts == []
    assert "still tentative" in caplog.text


def test_ipv6_nodad_is_announced_at_once() -> None:
    port = FakeAddressPort(dad_listings=1_000_000)
    port.add_link("eth0")
    port.assign("eth0", "2001:db8::1/64")
    vip, announcer = agent(port, ip="2001:db8::100", nodad="true")
    run(vip.start())
    held = port.address("eth0", "2001:db8::100")
    assert held is not None
    assert held.flags & AddressFlag.NODAD
    assert len(announcer.bursts) == 1


def test_deep_monitor_reports_a_failed_duplicate_address_detection() -> None:
    port = node()
    port.assign("eth0", "2001:db8::100/64", flags=AddressFlag.DADFAILED)
    vip, _ = agent(port, ip="2001:db8::100")
    assert run(vip.monitor()) is OCFResult.SUCCESS
    with pytest.raises(AgentError, match="duplicate address detection failed"):
        run(vip.monitor(depth=10))


def test_no_announcements_on_links_without_ethernet_addresses() -> None:
    port = node()
    vip, announcer = agent(port, ip="127.0.0.2", nic="lo", cidr_netmask="8")
    run(vip.start())
    assert announcer.bursts == []


def test_iflabel_is_ignored_for_ipv6(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hacore.ipaddr")
    port = node()
    vip, _ = agent(port, ip="2001:db8::100", iflabel="web", nodad="yes")
    run(vip.start())
    assert "iflabel is ignored" in caplog.text


def test_ipaddr_keeps_heartbeats_announcement_defaults() -> None:
    port = node()
    vip, announcer = agent(port, IPaddr, **IPaddr.parse_args(["198.51.100.100/24/eth0"]))
    run(vip.start())
    assert [(b.count, b.interval_ms) for b in announcer.bursts] == [(10, 500)]


@pytest.mark.parametrize("cls", [IPaddr, IPaddr2])
def test_metadata_is_well_formed_ocf(cls: type[Agent]) -> None:
    document = minidom.parseString(cls.metadata.to_xml())
    names = [p.getAttribute("name") for p in document.getElementsByTagName("parameter")]
    assert names[:5] == ["ip", "nic", "cidr_netmask", "broadcast", "iflabel"]
    [ip] = [p for p in document.getElementsByTagName("parameter") if p.getAttribute("name") == "ip"]
    assert (ip.getAttribute("required"), ip.getAttribute("unique")) == ("1", "1")


RA_DTD = Path("/usr/share/resource-agents/ra-api-1.dtd")


@pytest.mark.parametrize("cls", [IPaddr, IPaddr2])
def test_metadata_is_valid_against_resource_agents_dtd(cls: type[Agent]) -> None:
    # What ocf-tester checks first: meta-data | xmllint --valid, in the DTD's directory.
    if shutil.which("xmllint") is None or not RA_DTD.exists():
        pytest.fail("needs xmllint and resource-agents' ra-api-1.dtd (scripts/bootstrap.sh)")
    checked = subprocess.run(
        ["xmllint", "--noout", "--valid", "-"],
        input=cls.metadata.to_xml(),
        cwd=RA_DTD.parent,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


# -- the failover path: what start and stop ask the kernel once the placement is known ----------


class OrderedAnnouncer(FakeAnnouncer):
    """Also notes how many port calls had been made when each burst went out."""

    def __init__(self, port: FakeAddressPort) -> None:
        super().__init__()
        self.port = port
        self.after_calls: list[list[str]] = []

    async def announce(self, what: Announcement, count: int, interval_ms: int) -> None:
        self.after_calls.append(list(self.port.calls))
        await super().announce(what, count, interval_ms)


def probed(port: FakeAddressPort, **params: str) -> tuple[Agent, OrderedAnnouncer]:
    """An agent after the daemon's start-up probe, with the port's call log cleared."""
    announcer = OrderedAnnouncer(port)
    instance = Instance(IPaddr2.instance_name(params), IPaddr2.resolve(params))
    vip = IPaddr2(instance, port=port, announcer=announcer)
    assert run(vip.monitor()) is OCFResult.NOT_RUNNING
    port.calls.clear()
    return vip, announcer


@pytest.mark.parametrize("params", [{}, {"nic": "eth0"}, {"nic": "eth0", "cidr_netmask": "24"}])
def test_after_the_probe_start_is_one_add_then_the_announcement(params: dict[str, str]) -> None:
    port = node()
    vip, announcer = probed(port, ip="198.51.100.100", **params)
    run(vip.start())
    assert announcer.after_calls == [["add_address"]]
    assert port.held("eth0").count("198.51.100.100/24") == 1


def test_after_a_start_stop_is_one_delete() -> None:
    port = node()
    vip, _ = probed(port, ip="198.51.100.100")
    run(vip.start())
    port.calls.clear()
    run(vip.stop())
    assert port.calls == ["delete_address"]
    assert "198.51.100.100/24" not in port.held("eth0")


def test_a_stop_finds_the_address_when_it_moved_since_start() -> None:
    port = node()
    vip, _ = agent(port, ip="198.51.100.100")
    run(vip.start())
    run(port.delete_address(port.link_index("eth0"), ip_interface("198.51.100.100/24")))
    port.assign("eth1", "198.51.100.100/24")
    run(vip.stop())
    assert "198.51.100.100/24" not in port.held("eth1")


def test_a_start_after_the_link_was_replaced_uses_the_new_link() -> None:
    port = node()
    vip, announcer = probed(port, ip="198.51.100.100", nic="eth0", cidr_netmask="24")
    port.remove_link("eth0")
    new = port.add_link("eth0")
    run(vip.start())
    assert port.held("eth0") == ["198.51.100.100/24"]
    [burst] = announcer.bursts
    assert (burst.what.ifindex, burst.what.mac) == (new.index, new.mac)


def test_a_start_moves_the_address_when_its_subnet_moved_to_another_link(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = node()
    vip, announcer = probed(port, ip="198.51.100.100")
    # While the node stood by, the subnet moved from eth0 to eth1.
    run(port.delete_address(port.link_index("eth0"), ip_interface("198.51.100.1/24")))
    port.assign("eth1", "198.51.100.1/24")
    run(vip.start())
    assert port.held("eth1") == ["203.0.113.1/24", "198.51.100.1/24", "198.51.100.100/24"]
    assert "198.51.100.100/24" not in port.held("eth0")
    assert "where it belongs changed" in caplog.text
    assert [b.what.ifname for b in announcer.bursts] == ["eth0", "eth1"]
    run(vip.stop())
    assert "198.51.100.100/24" not in port.held("eth1")


def test_a_start_brings_up_a_link_that_went_down_since_the_probe() -> None:
    port = node()
    vip, announcer = probed(port, ip="198.51.100.100", nic="eth0", cidr_netmask="24")
    port.set_admin("eth0", False)
    run(vip.start())
    assert port.calls.index("set_link_up") > port.calls.index("add_address")
    # The cached placement still said up, so the first burst went out at once (and fails on
    # a down link); the last one follows bringing the link up.
    assert "set_link_up" in announcer.after_calls[-1]
    assert run(vip.monitor()) is OCFResult.SUCCESS


@pytest.mark.parametrize("agent", [IPaddr, IPaddr2])
def test_cluster_toml_gives_the_parameters_by_name(tmp_path: Path, agent: type[IPaddr]) -> None:
    name = agent.metadata.name
    (tmp_path / "cluster.toml").write_text(
        '[cluster]\nnodes = ["pc1", "pc2"]\n[[link]]\nkind = "bcast"\ninterface = "eth0"\n'
        '[auth]\nactive = 1\n[[auth.key]]\nindex = 1\nmethod = "sha256"\nsecret = "s"\n'
        f'[[group]]\nnode = "pc1"\n[[group.resource]]\nagent = "{name}"\n'
        'params = { ip = "198.51.100.55", cidr_netmask = "24", nic = "eth0" }\n'
    )
    (tmp_path / "cluster.toml").chmod(0o600)
    groups, problems = bind(load(tmp_path / "cluster.toml", node_name="pc1").config)
    assert problems == ()
    (resource,) = groups[0].resources
    assert resource.instance.params["ip"] == "198.51.100.55"
    assert resource.instance.params["nic"] == "eth0"


def test_cluster_toml_without_an_ip_says_it_is_required() -> None:
    with pytest.raises(ConfigurationError, match="ip"):
        IPaddr2.resolve(IPaddr2.parse_args([]))
