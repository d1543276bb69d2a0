"""The agents against a real kernel, in a namespace lab: a node that holds the address, a client
that pings it and watches the link, a bridge between them (see ipaddr_lab)."""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import struct
import time
from collections.abc import Callable
from ipaddress import IPv6Address, ip_address
from pathlib import Path

import pytest
from hacore.agent import AgentError, ConfigurationError, Instance, OCFResult
from hacore.lab.netns import wait_for
from hacore.lab.nsloop import NamespaceLoop
from hacore.testing.conformance import check_agent
from ipaddr_lab import ETH_P_ARP, ETH_P_IPV6, Capture, Lab

from hacore_ipaddr.agents import IPaddr, IPaddr2
from hacore_ipaddr.announce import Announcer
from hacore_ipaddr.netlink import NetlinkAddressPort, NewAddress

pytestmark = pytest.mark.netns

VIP = "198.51.100.100"
VIP6 = "2001:db8::100"
SEEN = 5.0  # seconds for the client or the monitor to notice a change
Agent = IPaddr | IPaddr2


def make(cls: type[Agent] = IPaddr2, **params: str) -> Agent:
    return cls(Instance(cls.instance_name(params), cls.resolve(params)))


# -- reading frames ----------------------------------------------------------------------------


def garp_for(ip: str) -> Callable[[bytes], bool]:
    """Gratuitous ARP for ``ip``: sender and target protocol addresses both ``ip``."""
    packed = ip_address(ip).packed

    def match(frame: bytes) -> bool:
        return frame[12:14] == b"\x08\x06" and frame[28:32] == packed and frame[38:42] == packed

    return match


def na_for(ip: str) -> Callable[[bytes], bool]:
    """An ICMPv6 neighbour advertisement whose target is ``ip``."""
    packed = ip_address(ip).packed

    def match(frame: bytes) -> bool:
        return (
            frame[12:14] == b"\x86\xdd"
            and frame[20] == 58  # next header: ICMPv6
            and frame[54] == 136
            and frame[62:78] == packed
        )

    return match


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


# -- IPv4 --------------------------------------------------------------------------------------


def test_start_announces_the_address_and_the_client_learns_it_unasked(
    lab: Lab, node: NamespaceLoop
) -> None:
    capture = Capture(lab.client, ETH_P_ARP)
    try:
        assert lab.neighbour(lab.client, VIP) is None
        vip = make(ip=VIP, cidr_netmask="24", nic="eth0", arp_count="3", arp_interval="50")
        node.run(vip.start())
        mac = lab.mac(lab.node)
        # The client has not sent anything to the address: it learnt the MAC from the GARP.
        assert wait_for(lambda: lab.neighbour(lab.client, VIP), SEEN, what="the VIP's MAC") == mac
        frames = capture.frames(garp_for(VIP), count=6, timeout=5)
    finally:
        capture.close()

    own = mac_bytes(mac)
    operations = [struct.unpack("!H", f.data[20:22])[0] for f in frames]
    assert operations == [1, 2, 1, 2, 1, 2]  # REQUEST + REPLY, three rounds
    for frame in frames:
        assert frame.data[0:6] == b"\xff" * 6  # Ethernet broadcast
        assert frame.data[6:12] == own
        assert frame.data[22:28] == own  # sender MAC
        target_mac = frame.data[32:38]
        assert target_mac == (b"\x00" * 6 if frame.data[21] == 1 else own)
    # Rounds are paced by arp_interval (50 ms); the two frames of a round go together.
    assert frames[1].at - frames[0].at < 0.04
    assert frames[2].at - frames[0].at >= 0.04
    assert lab.ping(lab.client, VIP)


def test_first_garp_leaves_milliseconds_after_the_address_is_added(
    lab: Lab, node: NamespaceLoop
) -> None:
    class TimedPort(NetlinkAddressPort):
        added_at = 0.0

        async def add_address(self, new: NewAddress) -> None:
            await super().add_address(new)
            self.added_at = time.time()

    port = TimedPort()
    vip = IPaddr2(
        Instance("IPaddr2_" + VIP, IPaddr2.resolve({"ip": VIP, "arp_count": "1"})), port=port
    )

    async def timed_start() -> tuple[float, float]:
        called = time.time()
        await vip.start()
        return called, time.time()

    after_add, after_call, start_took = [], [], []
    for _ in range(5):
        capture = Capture(lab.client, ETH_P_ARP)
        try:
            called, returned = node.run(timed_start())
            [first, _] = capture.frames(garp_for(VIP), count=2, timeout=5)
        finally:
            capture.close()
        node.run(vip.stop())
        after_add.append(first.at - port.added_at)
        after_call.append(first.at - called)
        start_took.append(returned - called)

    def ms(values: list[float]) -> str:
        return "/".join(
            f"{v * 1000:.2f}" for v in (min(values), statistics.median(values), max(values))
        )

    print(
        f"\nfirst GARP on the wire, min/median/max ms: {ms(after_add)} after the address was "
        f"added, {ms(after_call)} after start() was called; start() took {ms(start_took)}"
    )
    # Generous bounds against a loaded machine; the measured values are a few milliseconds.
    assert statistics.median(after_add) < 0.05
    assert statistics.median(after_call) < 0.25


def test_start_without_nic_or_netmask_uses_the_subnet_that_contains_the_address(
    lab: Lab, node: NamespaceLoop
) -> None:
    vip = make(ip=VIP, arp_count="1")
    node.run(vip.start())
    [held] = [a for a in lab.addresses(lab.node) if a["local"] == VIP]
    assert (held["prefixlen"], held["broadcast"]) == (24, "198.51.100.255")
    assert lab.ping(lab.client, VIP)


def test_legacy_ipaddr_runs_the_heartbeat_haresources_argument(
    lab: Lab, node: NamespaceLoop
) -> None:
    vip = make(IPaddr, **IPaddr.parse_args([f"{VIP}/24/eth0"]), ARP_REPEAT="1")
    node.run(vip.start())
    assert lab.holds(lab.node, VIP)
    assert lab.ping(lab.client, VIP)
    node.run(vip.stop())
    assert not lab.holds(lab.node, VIP)


def test_stop_removes_only_the_address(lab: Lab, node: NamespaceLoop) -> None:
    lab.ip(lab.node, "addr", "add", "198.51.100.101/24", "dev", "eth0")
    vip = make(ip=VIP, nic="eth0", arp_count="1")
    node.run(vip.start())
    node.run(vip.stop())
    held = [a["local"] for a in lab.addresses(lab.node) if a["family"] == "inet"]
    assert held == ["198.51.100.1", "198.51.100.101"]


def test_stopping_a_primary_address_keeps_its_subnets_secondaries(
    lab: Lab, node: NamespaceLoop
) -> None:
    # The address is the first of its subnet on eth0, so it is the primary; the kernel's
    # default would delete 203.0.113.101 along with it.
    host_sysctl = Path("/proc/sys/net/ipv4/conf/all/promote_secondaries")
    host_before = host_sysctl.read_text()
    assert lab.sysctl(lab.node, "net.ipv4.conf.all.promote_secondaries") == "0"
    assert lab.sysctl(lab.node, "net.ipv4.conf.eth0.promote_secondaries") == "0"
    vip = make(ip="203.0.113.100", cidr_netmask="24", nic="eth0", arp_count="1")
    node.run(vip.start())
    lab.ip(lab.node, "addr", "add", "203.0.113.101/24", "dev", "eth0")

    node.run(vip.stop())

    held = [a["local"] for a in lab.addresses(lab.node) if a["family"] == "inet"]
    assert held == ["198.51.100.1", "203.0.113.101"]
    assert lab.sysctl(lab.node, "net.ipv4.conf.eth0.promote_secondaries") == "1"
    assert host_sysctl.read_text() == host_before  # the node's namespace, not the host's


def test_start_and_stop_twice_succeed(lab: Lab, node: NamespaceLoop) -> None:
    vip = make(ip=VIP, nic="eth0", cidr_netmask="24", arp_count="1")
    node.run(vip.start())
    node.run(vip.start())
    assert [a["local"] for a in lab.addresses(lab.node)].count(VIP) == 1
    node.run(vip.stop())
    node.run(vip.stop())
    assert not lab.holds(lab.node, VIP)


def test_stop_ends_the_background_announcements(lab: Lab, node: NamespaceLoop) -> None:
    vip = make(ip=VIP, nic="eth0", arp_count="100", arp_interval="20")
    announcer = vip.announcer
    assert isinstance(announcer, Announcer)
    node.run(vip.start())
    assert announcer.busy
    node.run(vip.stop())
    assert not announcer.busy


def test_monitor_tells_stopped_running_and_dead_link_apart(lab: Lab, node: NamespaceLoop) -> None:
    vip = make(ip=VIP, nic="eth0", cidr_netmask="24", arp_count="1")

    def monitor() -> OCFResult | AgentError:
        try:
            return node.run(vip.monitor())
        except AgentError as err:
            return err

    assert monitor() is OCFResult.NOT_RUNNING
    node.run(vip.start())
    assert monitor() is OCFResult.SUCCESS

    lab.ip(lab.node, "link", "set", "eth0", "down")
    failed = wait_for(lambda: isinstance(monitor(), AgentError), SEEN, what="the monitor to fail")
    assert failed
    assert "administratively down" in str(monitor())
    lab.ip(lab.node, "link", "set", "eth0", "up")
    wait_for(lambda: monitor() is OCFResult.SUCCESS, SEEN, what="the monitor to succeed")

    # The cable: the switch's end of the link goes down, the node's loses its carrier.
    lab.ip(lab.switch, "link", "set", "n0", "down")
    wait_for(lambda: isinstance(monitor(), AgentError), SEEN, what="the monitor to fail")
    assert "but the link is down" in str(monitor())
    lab.ip(lab.switch, "link", "set", "n0", "up")
    wait_for(lambda: monitor() is OCFResult.SUCCESS, SEEN, what="the monitor to succeed")

    node.run(vip.stop())
    assert monitor() is OCFResult.NOT_RUNNING


def test_missing_interface_is_a_configuration_error(lab: Lab, node: NamespaceLoop) -> None:
    vip = make(ip=VIP, nic="eth9", cidr_netmask="24")
    for action in (vip.validate, vip.start):
        with pytest.raises(ConfigurationError, match="interface 'eth9' does not exist"):
            node.run(action())
    assert node.run(vip.monitor()) is OCFResult.NOT_RUNNING


def test_address_outside_every_subnet_without_netmask_is_a_configuration_error(
    lab: Lab, node: NamespaceLoop
) -> None:
    vip = make(ip="203.0.113.50")
    with pytest.raises(ConfigurationError, match="no interface has a subnet containing"):
        node.run(vip.start())
    assert not lab.holds(lab.node, "203.0.113.50")


# -- IPv6 --------------------------------------------------------------------------------------


def test_ipv6_address_is_announced_with_neighbour_advertisements(
    lab: Lab, node: NamespaceLoop
) -> None:
    capture = Capture(lab.client, ETH_P_IPV6)
    try:
        vip = make(
            ip="2001:db8:0:0::100",
            cidr_netmask="64",
            nic="eth0",
            nodad="yes",
            arp_count="2",
            arp_interval="50",
        )
        node.run(vip.start())
        mac = lab.mac(lab.node)
        assert wait_for(lambda: lab.neighbour(lab.client, VIP6), SEEN, what="the VIP's MAC") == mac
        frames = capture.frames(na_for(VIP6), count=2, timeout=5)
    finally:
        capture.close()

    assert len(frames) == 2
    for frame in (f.data for f in frames):
        assert frame[0:6] == bytes.fromhex("333300000001")  # ff02::1 on Ethernet
        assert frame[21] == 255  # hop limit: receivers drop anything else
        assert IPv6Address(frame[22:38]) == IPv6Address(VIP6)  # sent from the address
        assert IPv6Address(frame[38:54]) == IPv6Address("ff02::1")
        assert frame[58] & 0xE0 == 0x20  # override, not solicited, not router
        assert frame[78:80] == b"\x02\x01"  # target link-layer address option
        assert frame[80:86] == mac_bytes(mac)
    assert node.run(vip.monitor(depth=10)) is OCFResult.SUCCESS
    assert lab.ping(lab.client, VIP6)
    node.run(vip.stop())
    assert not lab.holds(lab.node, VIP6)


def test_ipv6_start_waits_out_duplicate_address_detection(lab: Lab, node: NamespaceLoop) -> None:
    capture = Capture(lab.client, ETH_P_IPV6)
    try:
        vip = make(ip=VIP6, cidr_netmask="64", nic="eth0", arp_count="1")
        node.run(vip.start())
        [held] = [a for a in lab.addresses(lab.node) if a["local"] == VIP6]
        assert not held.get("tentative")
        assert capture.frames(na_for(VIP6), count=1, timeout=5)
    finally:
        capture.close()


# -- the netlink socket ------------------------------------------------------------------------


def netlink_sockets() -> int:
    """How many netlink sockets this process has open (any namespace)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:") and _is_netlink(fd)
    return count


def _is_netlink(fd: str) -> bool:
    try:
        sock = socket.socket(fileno=int(fd))
    except OSError:
        return False
    try:
        return sock.family == socket.AF_NETLINK
    finally:
        sock.detach()


def test_one_netlink_socket_serves_every_action_until_closed(lab: Lab, node: NamespaceLoop) -> None:
    before = netlink_sockets()
    vip = make(ip=VIP, nic="eth0", cidr_netmask="24", arp_count="1")
    assert node.run(vip.monitor()) is OCFResult.NOT_RUNNING
    for _ in range(3):
        node.run(vip.start())
        assert node.run(vip.monitor()) is OCFResult.SUCCESS
        node.run(vip.stop())
    assert netlink_sockets() == before + 1
    node.run(vip.close())
    assert netlink_sockets() == before
    node.run(vip.start())  # a closed agent opens a new socket when it needs one
    assert lab.holds(lab.node, VIP)
    node.run(vip.stop())
    del vip  # dropping the agent closes its socket, on the loop it was opened on
    wait_for(lambda: netlink_sockets() == before, timeout=SEEN, what="the socket closed")


def test_an_agent_moved_to_another_loop_opens_a_socket_there(lab: Lab) -> None:
    # The runner gives a group a new worker thread (and loop) when an agent hung there; the
    # old loop lives on, and the old socket is closed on it.
    before = netlink_sockets()
    vip = make(ip=VIP, nic="eth0", cidr_netmask="24", arp_count="1")
    with NamespaceLoop(lab.node) as first, NamespaceLoop(lab.node) as second:
        first.run(vip.start())
        second.run(vip.stop())
        assert not lab.holds(lab.node, VIP)
        wait_for(lambda: netlink_sockets() == before + 1, timeout=SEEN, what="one socket")
        second.run(vip.close())
    assert netlink_sockets() == before


# -- the conformance kit -----------------------------------------------------------------------


@pytest.mark.parametrize("cls", [IPaddr2, IPaddr])
def test_the_agents_pass_the_conformance_suite_in_a_namespace(
    lab: Lab, node: NamespaceLoop, cls: type[Agent]
) -> None:
    report = node.run(check_agent(cls, {"ip": VIP, "cidr_netmask": "24", "nic": "eth0"}))
    assert report.passed, report.render()
    assert not lab.holds(lab.node, VIP)
