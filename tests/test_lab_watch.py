"""The address watcher and the address sampler: they must see a real overlap of a virtual IP on
two hosts, and must never report one for a clean move, however fast."""

from __future__ import annotations

import itertools
import subprocess
import time

import pytest

from hacore.lab.netns import Host, Lab, wait_for
from hacore.lab.watch import (
    AddressEvent,
    AddressSampler,
    AddressWatch,
    parse_monitor,
    sample_addresses,
)

VIP = "198.51.100.55"
VIP_CIDR = f"{VIP}/24"


def _pair(lab: Lab) -> tuple[Host, Host]:
    return lab.add_host("pc1"), lab.add_host("pc2")


# -- parsing, without namespaces ---------------------------------------------------------------


def test_parse_monitor_reads_adds_and_deletes_of_one_address_per_namespace() -> None:
    tail = r"\       valid_lft forever preferred_lft forever"
    lines = [
        # The header of a notification ip filtered out, left on the next one's line.
        "[2026-11-25T13:45:54.100000] [nsid 0][2026-11-25T13:45:54.119184] [nsid 0]2: br0    "
        f"inet 198.51.100.55/24 brd 198.51.100.255 scope global secondary eth0{tail}\n",
        "[2026-11-25T13:45:54.175912] [nsid 1]2: br0    inet 198.51.100.56/24 scope global "
        f"eth0{tail}\n",
        "[2026-11-25T13:45:54.175919] [nsid 0]Deleted 2: br0    inet 198.51.100.55/24 brd "
        f"198.51.100.255 scope global secondary eth0{tail}\n",
        "[2026-11-25T13:45:54.175920] [nsid current]2: lo    inet 198.51.100.55/32 scope host "
        f"lo{tail}\n",
        "[2026-11-25T13:45:54.175921] [nsid 7]2: eth0    inet 198.51.100.55/24 scope global "
        f"eth0{tail}\n",
        "[2026-11-25T13:45:54.175930] [nsid 1]2: br0    inet 198.51.100.55/24 scope global"
        f"{tail}\n",
        "[2026-11-25T13:45:54.175940] [nsid 1]Deleted 2: br0    inet 198.51.100.55/24 sco",
    ]
    events = parse_monitor(lines, VIP, {0: "pc1", 1: "pc2"})
    base = 1795614354.0  # 2026-11-25T13:45:54Z
    assert [(e.host, e.present) for e in events] == [("pc1", True), ("pc1", False), ("pc2", True)]
    assert events[0].time == pytest.approx(base + 0.119184, abs=1e-6)
    assert events[2].time == pytest.approx(base + 0.175930, abs=1e-6)


def test_parse_monitor_matches_ipv6_addresses_in_any_spelling() -> None:
    line = (
        "[2026-11-25T13:45:54.000001] [nsid 3]Deleted 2: br0    inet6 2001:db8:1:0::55/64 "
        r"scope global nodad \       valid_lft forever preferred_lft forever" + "\n"
    )
    assert parse_monitor([line], "2001:db8:1::55", {3: "pc2"}) == [
        AddressEvent(1795614354.000001, "pc2", False)
    ]


# -- the watch, in namespaces ------------------------------------------------------------------


@pytest.mark.netns
def test_a_move_with_a_deliberate_overlap_is_measured(lab: Lab) -> None:
    pc1, pc2 = _pair(lab)
    pc1.add_address(VIP_CIDR)
    with AddressWatch([pc1, pc2], VIP) as watch:
        assert watch.holders_now() == {"pc1"}
        pc2.add_address(VIP_CIDR)
        both_since = watch.wait_holders({"pc1", "pc2"}, timeout=5)
        pc1.remove_address(VIP_CIDR)
        pc2_alone_since = watch.wait_holders({"pc2"}, timeout=5)

    (episode,) = watch.overlaps()
    assert episode.hosts == {"pc1", "pc2"}
    assert (episode.start, episode.end) == (both_since, pc2_alone_since)
    assert watch.overlap() == pytest.approx(pc2_alone_since - both_since)
    assert watch.overlap() > 0
    assert watch.max_overlap() == watch.overlap()
    assert watch.intervals() == {
        "pc1": [(watch.started_at, pc2_alone_since)],
        "pc2": [(both_since, None)],
    }
    print(f"\ndeliberate overlap measured: {watch.overlap() * 1000:.3f} ms")


@pytest.mark.netns
def test_a_clean_move_has_no_overlap(lab: Lab) -> None:
    pc1, pc2 = _pair(lab)
    pc1.add_address(VIP_CIDR)
    with AddressWatch([pc1, pc2], VIP) as watch:
        pc1.remove_address(VIP_CIDR)
        pc2.add_address(VIP_CIDR)
        watch.wait_holders({"pc2"}, timeout=5)

    assert watch.overlaps() == []
    assert watch.overlap() == 0.0
    assert watch.max_overlap() == 0.0
    held = watch.intervals()
    (pc1_held,), (pc2_held,) = held["pc1"], held["pc2"]
    released = pc1_held[1]
    assert released is not None and released <= pc2_held[0]
    assert pc2_held[1] is None


@pytest.mark.netns
def test_fast_back_and_forth_moves_are_recorded_in_kernel_order(lab: Lab) -> None:
    # One shell makes the moves as fast as `ip` can: each add follows its delete by a
    # millisecond or two, far below what a scheduler delay of the watcher could reorder.
    pc1, pc2 = _pair(lab)
    pc1.add_address(VIP_CIDR)
    moves = []
    for n in range(10):
        src, dst = (pc1, pc2) if n % 2 == 0 else (pc2, pc1)
        moves.append(f"ip -n {src.netns} address del {VIP_CIDR} dev eth0")
        moves.append(f"ip -n {dst.netns} address add {VIP_CIDR} dev eth0")
    with AddressWatch([pc1, pc2], VIP) as watch:
        subprocess.run(["sh", "-ec", "; ".join(moves)], check=True, timeout=30)
        watch.wait_holders({"pc1"}, timeout=5)
        wait_for(lambda: len(watch.events()) == 20, 5, what="20 notifications")

    assert watch.overlaps() == []
    held = watch.intervals()
    assert len(held["pc1"]) == 6 and len(held["pc2"]) == 5
    spans = sorted(held["pc1"] + held["pc2"])
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        assert end is not None and end <= next_start


@pytest.mark.netns
def test_a_change_made_just_before_the_watch_stops_is_recorded(lab: Lab) -> None:
    pc1, pc2 = _pair(lab)
    for _ in range(5):
        with AddressWatch([pc1, pc2], VIP) as watch:
            pc1.add_address(VIP_CIDR)
        assert watch.holders_now() == {"pc1"}
        with AddressWatch([pc1, pc2], VIP) as watch:
            pc1.remove_address(VIP_CIDR)
        assert watch.holders_now() == set()
        assert watch.intervals()["pc1"] == [(watch.started_at, watch.events()[-1].time)]


@pytest.mark.netns
def test_watch_times_are_those_of_the_changes_within_milliseconds(lab: Lab) -> None:
    pc1, pc2 = _pair(lab)
    with AddressWatch([pc1, pc2], VIP) as watch:
        before = time.time()
        pc2.add_address(VIP_CIDR)
        after = time.time()
        watch.wait_holders({"pc2"}, timeout=5)

    ((added, _),) = watch.intervals()["pc2"]
    # The stamp is taken when the monitor reads the notification: not before the command ran,
    # and (generously bounded, for a loaded machine) soon after it returned.
    assert before <= added <= after + 0.5
    took = (after - before) * 1000
    print(f"\nadd stamped {(added - before) * 1000:.3f} ms into a {took:.3f} ms command")


@pytest.mark.netns
def test_the_watch_survives_a_power_off_and_sees_power_on_clear_the_address(lab: Lab) -> None:
    pc1, pc2 = _pair(lab)
    pc1.add_address(VIP_CIDR)
    with AddressWatch([pc1, pc2], VIP) as watch:
        lab.power_off(pc1)
        pc2.add_address(VIP_CIDR)
        # The dead host's address stays on its downed interface: that is an overlap.
        watch.wait_holders({"pc1", "pc2"}, timeout=5)
        lab.power_on(pc1)
        watch.wait_holders({"pc2"}, timeout=5)
    assert len(watch.overlaps()) == 1


# -- the sampler -------------------------------------------------------------------------------


@pytest.mark.netns
def test_the_sampler_sees_a_deliberate_overlap(lab: Lab) -> None:
    pc1, pc2 = _pair(lab)
    pc1.add_address(VIP_CIDR)
    with AddressSampler([pc1, pc2], VIP, period=0.005) as sampler:
        pc2.add_address(VIP_CIDR)
        # Held on both until the sampler has surely seen it.
        wait_for(lambda: sampler.result().together(), 5, what="a sample of both holding")
        pc1.remove_address(VIP_CIDR)
        wait_for(lambda: sampler.result().holders() == {"pc2"}, 5, what="pc2 alone")
    result = sampler.result()
    assert {hosts for _, _, hosts in result.together()} == {frozenset({"pc1", "pc2"})}


@pytest.mark.netns
def test_the_sampler_reports_no_overlap_for_a_clean_move(lab: Lab) -> None:
    pc1, pc2 = _pair(lab)
    pc1.add_address(VIP_CIDR)
    with AddressSampler([pc1, pc2], VIP, period=0.002) as sampler:
        pc1.remove_address(VIP_CIDR)
        pc2.add_address(VIP_CIDR)
        wait_for(lambda: sampler.result().holders() == {"pc2"}, 5, what="pc2 alone")
    result = sampler.result()
    assert result.together() == []
    assert result.held()["pc1"] and result.held()["pc2"]


@pytest.mark.netns
def test_sample_addresses_polls_every_host_for_the_duration(lab: Lab) -> None:
    pc1, pc2 = _pair(lab)
    pc2.add_address(VIP_CIDR)
    result = sample_addresses([pc1, pc2], VIP, period=0.005, duration=0.2)
    assert result.holders() == {"pc2"}
    per_host = {name: [s for s in result.samples if s.host == name] for name in ("pc1", "pc2")}
    # 0.2 s at 5 ms: dozens of rounds even on a slow machine; never all of 40.
    assert all(5 <= len(samples) <= 41 for samples in per_host.values()), per_host
    assert not any(s.present for s in per_host["pc1"])
