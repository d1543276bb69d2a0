"""The namespace lab itself: topology, teardown, faults, the prober and real Heartbeat nodes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hacore.lab import (
    Lab,
    LabError,
    check_lab_address,
    parse_probe,
    start_heartbeat,
    start_probe,
    wait_for,
    write_heartbeat_config,
)

if TYPE_CHECKING:
    from hacore.lab import Host
    from tests.conftest import LabFactory

VIP = "198.51.100.200"


def reaches(src: Host, address: str, timeout: float = 1.0) -> bool:
    """One ping from ``src``; bounded by ``timeout``."""
    ping = ["ping", "-c", "1", "-W", str(timeout), address]
    return src.exec(ping, check=False, timeout=timeout + 5).returncode == 0


def root_ip(*args: str) -> str:
    """`ip` in the root namespace, read-only (listing what exists)."""
    done = subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)
    return done.stdout


def netns_names() -> set[str]:
    return {line.split()[0] for line in root_ip("netns", "list").splitlines() if line.strip()}


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


# -- without namespaces -----------------------------------------------------------------------


def test_wait_for_returns_the_first_truthy_value() -> None:
    answers = iter([None, 0, "", "ready"])
    assert wait_for(lambda: next(answers), timeout=1.0, interval=0.001) == "ready"


def test_wait_for_says_what_it_waited_for() -> None:
    with pytest.raises(TimeoutError, match="the moon"):
        wait_for(lambda: False, timeout=0.05, what="the moon")


def test_lab_refuses_a_subnet_outside_the_documentation_ranges() -> None:
    with pytest.raises(LabError, match=r"198\.51\.100\.0/24"):
        Lab(subnet="192.168.10.0/24")


def test_lab_addresses_must_be_documentation_addresses() -> None:
    assert str(check_lab_address("203.0.113.7/24")) == "203.0.113.7/24"
    assert str(check_lab_address("2001:db8:5::1/64")) == "2001:db8:5::1/64"
    for real in ("192.168.10.55/24", "10.0.0.1/8", "2001:4860::1/64", "8.8.8.8/32"):
        with pytest.raises(LabError, match="outside the lab's address space"):
            check_lab_address(real)


def test_heartbeat_config_is_the_three_files_heartbeat_reads(tmp_path: Path) -> None:
    write_heartbeat_config(
        tmp_path,
        nodes=["pc1", "pc2"],
        keepalive=100,
        deadtime="1",
        initdead=2000,
        auth_key="s3cret",
        haresources=["pc1 IPaddr::198.51.100.200/24/eth0"],
        install_scripts=False,
    )
    ha_cf = (tmp_path / "ha.cf").read_text().splitlines()
    assert ha_cf[1:4] == [
        "logfile /var/log/ha-log",
        "debugfile /var/log/ha-debug",
        "logfacility none",
    ]
    for line in ("keepalive 100ms", "deadtime 1", "initdead 2000ms", "bcast eth0", "node pc2"):
        assert line in ha_cf
    assert (tmp_path / "authkeys").read_text() == "auth 1\n1 sha1 s3cret\n"
    assert (tmp_path / "authkeys").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "haresources").read_text() == "pc1 IPaddr::198.51.100.200/24/eth0\n"


@pytest.mark.parametrize(
    ("keepalive", "deadtime", "initdead", "complaint"),
    [(500, 1000, 2000, "must exceed twice keepalive"), (100, 1000, 500, "at least deadtime")],
)
def test_heartbeat_config_refuses_timings_heartbeat_refuses(
    tmp_path: Path, keepalive: int, deadtime: int, initdead: int, complaint: str
) -> None:
    with pytest.raises(LabError, match=complaint):
        write_heartbeat_config(
            tmp_path,
            nodes=["pc1"],
            keepalive=keepalive,
            deadtime=deadtime,
            initdead=initdead,
            auth_key="k",
            install_scripts=False,
        )


def probe_lines(events: list[dict[str, object]]) -> list[str]:
    return [json.dumps(event) + "\n" for event in events]


def test_probe_result_tells_who_answered_and_the_longest_silence() -> None:
    a, b = "02:00:c6:33:64:01", "02:00:c6:33:64:02"
    s = 1_000_000_000
    events: list[dict[str, object]] = [
        {"event": "start", "target": VIP, "interval": 0.1, "time_ns": 0},
    ]
    for seq in range(10):
        events.append({"event": "request", "seq": seq, "time_ns": seq * s // 10})
    # Replies to 0-2 from a, nothing for 3-5, replies to 6-9 from b.
    for seq, mac in [(0, a), (1, a), (2, a), (6, b), (7, b), (8, b), (9, b)]:
        events.append({"event": "reply", "seq": seq, "time_ns": seq * s // 10 + 1000, "mac": mac})
    events.append({"event": "end", "time_ns": s, "sent": 10, "received": 7})

    result = parse_probe(probe_lines(events))

    assert result.sent == 10
    assert result.lost == 3
    assert result.macs() == [a, b]
    assert [run.replies for run in result.answerers()] == [3, 4]
    assert result.longest_gap().seconds == pytest.approx(0.4)


def test_probe_result_of_a_probe_still_running_ignores_the_line_being_written() -> None:
    lines = probe_lines(
        [
            {"event": "start", "target": VIP, "interval": 0.005, "time_ns": 0},
            {"event": "request", "seq": 0, "time_ns": 10},
        ]
    )
    result = parse_probe([*lines, '{"event": "reply", "se'])
    assert result.ended is None
    assert result.sent == 1
    assert result.replies == ()


# -- the lab ----------------------------------------------------------------------------------


@pytest.mark.netns
def test_hosts_reach_each_other_over_ipv4_and_ipv6(lab: Lab) -> None:
    pc1, pc2 = lab.add_host("pc1"), lab.add_host("pc2")
    assert reaches(pc1, pc2.address)
    assert reaches(pc2, pc1.address6)


@pytest.mark.netns
def test_hosts_follow_the_lab_address_plan(lab: Lab) -> None:
    pc1 = lab.add_host("pc1")
    pc2 = lab.add_host("pc2", address="198.51.100.42")

    assert (pc1.address, pc1.address6, pc1.mac) == (
        "198.51.100.1",
        "2001:db8:1::1",
        "02:00:c6:33:64:01",
    )
    assert (pc2.address, pc2.address6, pc2.mac) == (
        "198.51.100.42",
        "2001:db8:1::2a",
        "02:00:c6:33:64:2a",
    )
    assert pc1.netns == f"{lab.prefix}-pc1"
    assert re.fullmatch(r"hc-[0-9a-f]{4}", lab.prefix)
    assert {pc1.address, pc1.address6} <= pc1.addresses()
    arp_accept = pc1.exec(["sysctl", "-n", "net.ipv4.conf.eth0.arp_accept"]).stdout.strip()
    assert arp_accept == "1"
    # No lab interface in the root namespace.
    assert pc1.port not in root_ip("-o", "link")


@pytest.mark.netns
def test_a_pulled_cable_cuts_the_host_off_until_plugged_back(lab: Lab) -> None:
    pc1, pc2 = lab.add_host("pc1"), lab.add_host("pc2")

    lab.link_down(pc1)
    assert not reaches(pc2, pc1.address, timeout=0.3)

    lab.link_up(pc1)
    assert reaches(pc2, pc1.address)


@pytest.mark.netns
def test_a_partition_separates_the_pair_but_both_still_reach_the_client(lab: Lab) -> None:
    pc1, pc2, client = lab.add_host("pc1"), lab.add_host("pc2"), lab.add_host("client")

    lab.partition(pc1, pc2)
    assert not reaches(pc1, pc2.address, timeout=0.3)
    assert reaches(pc1, client.address)
    assert reaches(pc2, client.address)

    lab.heal(pc1, pc2)
    assert reaches(pc1, pc2.address)


@pytest.mark.netns
def test_a_partition_that_isolation_cannot_express_is_refused(lab: Lab) -> None:
    a, b, c, d = (lab.add_host(name) for name in ("a", "b", "c", "d"))
    lab.partition(a, b)
    with pytest.raises(LabError, match=r"use lab\.block"):
        lab.partition(c, d)


@pytest.mark.netns
def test_a_block_drops_one_direction_only(lab: Lab) -> None:
    pc1, pc2 = lab.add_host("pc1"), lab.add_host("pc2")

    lab.block(pc1, pc2)
    assert not reaches(pc2, pc1.address, timeout=0.3)
    # pc2's ARP request reached pc1 (pc1 learned pc2's MAC); pc1's answer never came back.
    assert pc1.neighbour_mac(pc2.address) == pc2.mac
    assert pc2.neighbour_mac(pc1.address) is None

    lab.clear_faults()
    assert reaches(pc2, pc1.address)


@pytest.mark.netns
def test_loss_drops_about_the_asked_share_of_frames(lab: Lab) -> None:
    pc1, pc2 = lab.add_host("pc1"), lab.add_host("pc2")

    # Resolve addresses first: a lost ARP exchange would silence the whole probe for a second.
    assert reaches(pc1, pc2.address)
    lab.loss(pc2, 20)
    lossy = start_probe(pc1, pc2.address, duration=1.0).wait()
    # Request and reply each cross pc2's port: a round trip survives with 0.8² = 64 %.
    assert 0.35 < len(lossy.replies) / lossy.sent < 0.9

    lab.clear_faults()
    clean = start_probe(pc1, pc2.address, duration=0.3).wait()
    assert clean.lost == 0


def sleeping_pids(host: Host) -> list[int]:
    """Pids (as the root namespace sees them) of the live `sleep` processes in ``host``."""
    pids = []
    for pid in map(int, root_ip("netns", "pids", host.netns).split()):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except FileNotFoundError:
            continue
        if comm == "sleep" and alive(pid):
            pids.append(pid)
    return pids


@pytest.mark.netns
def test_power_off_kills_every_process_of_the_host_at_once(lab: Lab) -> None:
    node, client = lab.add_host("node", pid_namespace=True), lab.add_host("client")
    node.add_address(f"{VIP}/24")
    # One sleeper stays in the process group, one leaves it (as daemons do): both must die.
    node.run(["sh", "-c", "sleep 1000 & setsid sleep 1000 & wait"])

    def both_sleepers() -> list[int] | None:
        pids = sleeping_pids(node)
        return pids if len(pids) == 2 else None

    sleepers = wait_for(both_sleepers, 5.0, what="both sleepers to start")

    lab.power_off(node)

    assert not any(alive(pid) for pid in sleepers)
    assert not reaches(client, node.address, timeout=0.3)

    lab.power_on(node)
    assert VIP not in node.addresses()  # a reboot forgets the virtual IP
    assert reaches(client, node.address)
    assert node.exec(["true"]).returncode == 0


@pytest.mark.netns
def test_power_off_without_a_pid_namespace_still_kills_detached_daemons(lab: Lab) -> None:
    node = lab.add_host("node")
    node.run(["sh", "-c", "setsid sleep 1000 &"])
    sleepers = wait_for(lambda: sleeping_pids(node), 5.0, what="the sleeper to start")

    lab.power_off(node)

    assert not any(alive(pid) for pid in sleepers)


@pytest.mark.netns
def test_close_leaves_no_namespace_process_or_file_behind(make_lab: LabFactory) -> None:
    lab = make_lab()  # the fixture closes it again if an assertion fails before close()
    pc1 = lab.add_host("pc1")
    lab.add_host("pc2", pid_namespace=True)
    group = pc1.run(["sleep", "1000"])
    pc1.run(["sh", "-c", "setsid sleep 1000 &"])  # a daemon that left its process group
    escaped = wait_for(lambda: [p for p in sleeping_pids(pc1) if p != group.pid], 5.0)
    names = set(lab.namespaces())
    assert names <= netns_names()

    lab.close()

    assert not names & netns_names()
    assert group.returncode is not None
    assert not any(alive(pid) for pid in escaped)
    assert not lab.workdir.exists()
    lab.close()  # idempotent


@pytest.mark.netns
def test_a_lab_used_as_a_context_manager_is_closed_on_error() -> None:
    with pytest.raises(RuntimeError, match="boom"), Lab() as lab:
        lab.add_host("pc1")
        names = set(lab.namespaces())
        raise RuntimeError("boom")
    assert lab.closed
    assert not names & netns_names()


# -- the prober -------------------------------------------------------------------------------


@pytest.mark.netns
def test_the_probe_sees_an_address_move_from_one_host_to_another(lab: Lab) -> None:
    pc1, pc2, client = lab.add_host("pc1"), lab.add_host("pc2"), lab.add_host("client")
    pc1.add_address(f"{VIP}/24")
    probe = start_probe(client, VIP, duration=2.0)
    probe.wait_for_replies(20, mac=pc1.mac, timeout=5.0)

    pc1.remove_address(f"{VIP}/24")
    pc2.add_address(f"{VIP}/24")
    # A gratuitous ARP tells the client (arp_accept=1) where the address went.
    pc2.exec(["arping", "-U", "-c", "1", "-I", "eth0", VIP], timeout=5.0)
    result = probe.wait()

    assert result.macs() == [pc1.mac, pc2.mac]
    assert all(reply.seq >= 0 for reply in result.replies)
    assert result.longest_gap().seconds < 0.5


@pytest.mark.netns
def test_the_probe_works_over_ipv6(lab: Lab) -> None:
    pc1, client = lab.add_host("pc1"), lab.add_host("client")
    result = start_probe(client, pc1.address6, duration=0.3).wait()
    assert result.sent > 0
    assert result.lost == 0
    assert result.macs() == [pc1.mac]


# -- real Heartbeat 3.0.6 ---------------------------------------------------------------------


@pytest.mark.netns
@pytest.mark.heartbeat
def test_heartbeat_nodes_see_each_other_and_notice_a_power_cut(lab: Lab) -> None:
    pc1, pc2 = lab.add_host("pc1"), lab.add_host("pc2")
    ha_d = write_heartbeat_config(
        lab.workdir / "ha.d",
        nodes=["pc1", "pc2"],
        keepalive=100,
        deadtime=1000,
        initdead=2000,
        auth_key="lab-secret",
    )
    node1, node2 = start_heartbeat(pc1, ha_d), start_heartbeat(pc2, ha_d)

    node1.wait_for_log(r"Status update for node pc2: status active", timeout=10)
    node2.wait_for_log(r"Status update for node pc1: status active", timeout=10)

    mark = node2.log_mark()
    node1.kill()  # first the power, then the cable: a dead machine says no goodbye
    lab.link_down(pc1)
    assert not node1.running()
    node2.wait_for_log(r"WARN: node pc1: is dead", timeout=10, since=mark)
    assert "Link pc1:eth0 dead." in node2.log()[mark:]


@pytest.mark.netns
@pytest.mark.heartbeat
def test_heartbeat_moves_the_virtual_ip_when_its_holder_dies(lab: Lab) -> None:
    pc1, pc2, client = lab.add_host("pc1"), lab.add_host("pc2"), lab.add_host("client")
    ha_d = write_heartbeat_config(
        lab.workdir / "ha.d",
        nodes=["pc1", "pc2"],
        keepalive=100,
        deadtime=300,
        initdead=2000,
        auth_key="lab-secret",
        haresources=[f"pc1 IPaddr::{VIP}/24/eth0"],
    )
    node1, node2 = start_heartbeat(pc1, ha_d), start_heartbeat(pc2, ha_d)
    # Heartbeat acquires resources only after a fixed ~10 s settling period, whatever the timings.
    wait_for(lambda: VIP in pc1.addresses(), 30, interval=0.05, what="pc1 to take the VIP")
    probe = start_probe(client, VIP, duration=3.0)
    probe.wait_for_replies(20, mac=pc1.mac, timeout=5.0)

    mark = node2.log_mark()
    node1.kill()
    lab.link_down(pc1)
    result = probe.wait()

    node2.wait_for_log(r"node pc1: is dead", timeout=5, since=mark)
    assert VIP in pc2.addresses()
    assert result.macs() == [pc1.mac, pc2.mac]
    # deadtime 300 ms plus heartbeat's own takeover work (~0.6 s measured on 2 cores).
    assert 0.3 < result.longest_gap().seconds < 2.0

    node2.stop(timeout=30)  # graceful: heartbeat gives its resources up before it exits
    assert node2.proc.returncode == 0
    assert "Heartbeat shutdown complete." in node2.log()
    assert VIP not in pc2.addresses()
