"""Real ICMP between namespaces: the score the plugin gives placement as ping nodes come and go.

The plugin is started from a thread inside the lab's node namespace (as the daemon would start it
on its node), with short timings from ping.toml so that each test takes seconds. Measured round
and reaction times are printed (``pytest -s``); the assertions bound them generously.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hacore.config.model import Auth, AuthKey, AuthMethod, ClusterConfig, PingGroup
from hacore.lab.netns import wait_for
from hacore.lab.nsloop import in_namespace, namespace_of
from ping_lab import PingLab

from hacore_ping.icmp import IcmpSocket
from hacore_ping.pinger import PingStatus
from hacore_ping.plugin import PingPlugin
from hacore_ping.prober import Prober

pytestmark = pytest.mark.netns

INTERVAL_S = 0.2
TIMEOUT_S = 0.3


class Node:
    """The plugin as the daemon on the lab's node holds it."""

    def __init__(self, lab: PingLab, config: ClusterConfig) -> None:
        self.plugin = PingPlugin()
        self.config = config
        in_namespace(lab.node.netns, lambda: self.plugin.hacore_daemon_started(config))

    def score(self) -> int | None:
        return self.plugin.hacore_connectivity_score(node=self.config.local_node)

    def status(self) -> PingStatus:
        status = self.plugin.status()
        assert status is not None
        return status

    def stop(self) -> None:
        self.plugin.hacore_daemon_stopping(self.config)


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    started: list[Node] = []
    yield started
    for node in started:  # before the lab goes (this fixture is set up after it)
        node.stop()


def start(
    lab: PingLab,
    tmp_path: Path,
    started: list[Node],
    *,
    ping: tuple[str, ...] = (),
    groups: tuple[PingGroup, ...] = (),
    dampen: str = "0s",
    multiplier: int = 1,
    timeout: float = TIMEOUT_S,
) -> Node:
    (tmp_path / "ping.toml").write_text(
        f'attempts = 3\ntimeout = "{int(timeout * 1000)}ms"\nmultiplier = {multiplier}\n'
        f'dampen = "{dampen}"\ninterval = "{int(INTERVAL_S * 1000)}ms"\n'
    )
    config = ClusterConfig(
        nodes=("pc1", "pc2"),
        local_node="pc1",
        links=(),
        auth=Auth(1, (AuthKey(1, AuthMethod.SHA256, b"secret"),)),
        ping_nodes=ping,
        ping_groups=groups,
        source=tmp_path,
    )
    node = Node(lab, config)
    started.append(node)
    return node


def ping_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "hacore ping"]


def rounds_after(node: Node, count: int) -> int:
    """Wait until ``count`` more rounds are done; returns the round number reached."""
    target = node.status().rounds + count
    wait_for(lambda: node.status().rounds >= target, 10, what=f"{count} more rounds")
    return target


def test_both_ping_nodes_reached_score_two_for_the_local_node_only(
    lab: PingLab, tmp_path: Path, nodes: list[Node]
) -> None:
    node = start(lab, tmp_path, nodes, ping=(lab.pa.address, lab.pb.address))

    wait_for(lambda: node.score() == 2, 10, what="score 2")
    assert node.plugin.hacore_connectivity_score(node="pc2") is None  # pc2 measures for itself
    rounds_after(node, 3)
    status = node.status()
    assert status.reached == (lab.pa.address, lab.pb.address)
    rtts = ", ".join(f"{a} {rtt * 1e3:.2f} ms" for a, rtt in status.round_trip_s.items())
    print(f"\nall reached: round {status.round_s * 1e3:.2f} ms; round trips {rtts}")
    assert status.round_s < TIMEOUT_S  # nobody silent: the round ends with the last reply


def test_the_pinger_runs_in_the_namespace_it_was_started_from(
    lab: PingLab, tmp_path: Path, nodes: list[Node]
) -> None:
    start(lab, tmp_path, nodes, ping=(lab.pa.address,))

    (thread,) = ping_threads()
    assert thread.native_id is not None
    node_ns = in_namespace(lab.node.netns, lambda: namespace_of(threading.get_native_id()))
    assert namespace_of(thread.native_id) == node_ns
    assert namespace_of(threading.get_native_id()) != node_ns


def test_the_hook_answers_at_once(lab: PingLab, tmp_path: Path, nodes: list[Node]) -> None:
    # A ping node that never answers: rounds last the whole timeout, the hook must not.
    node = start(lab, tmp_path, nodes, ping=(lab.pa.address,), timeout=1.0)
    lab.lab.link_down(lab.pa)

    started = time.perf_counter()
    for _ in range(1000):
        node.score()
    per_call = (time.perf_counter() - started) / 1000

    assert per_call < 1e-4
    wait_for(lambda: node.score() == 0, 10, what="score 0")


def test_a_ping_node_lost_counts_only_after_dampen(
    lab: PingLab, tmp_path: Path, nodes: list[Node]
) -> None:
    dampen_s = 1.5
    node = start(lab, tmp_path, nodes, ping=(lab.pa.address, lab.pb.address), dampen="1500ms")
    wait_for(lambda: node.score() == 2, 10, what="score 2")

    lab.lab.link_down(lab.pb)
    cut = time.monotonic()
    wait_for(lambda: node.status().measured == 1, 10, what="a round without pb")
    measured_at = time.monotonic()
    assert node.status().score == 2  # measured, not yet in force
    wait_for(lambda: node.score() == 1, 10, what="score 1")
    in_force_at = time.monotonic()

    held = in_force_at - measured_at
    print(
        f"\npb cut: measured 1 after {measured_at - cut:.2f} s, "
        f"in force {held:.2f} s later (dampen {dampen_s} s)"
    )
    assert dampen_s - 0.1 <= held <= dampen_s + INTERVAL_S + TIMEOUT_S + 1.0


def test_without_dampen_a_change_counts_within_a_round(
    lab: PingLab, tmp_path: Path, nodes: list[Node]
) -> None:
    node = start(lab, tmp_path, nodes, ping=(lab.pa.address, lab.pb.address))
    wait_for(lambda: node.score() == 2, 10, what="score 2")

    lab.lab.link_down(lab.pb)
    cut = time.monotonic()
    wait_for(lambda: node.score() == 1, 10, what="score 1")
    lost_after = time.monotonic() - cut
    round_s = node.status().round_s
    lab.lab.link_up(lab.pb)
    back = time.monotonic()
    wait_for(lambda: node.score() == 2, 10, what="score 2 again")
    back_after = time.monotonic() - back

    print(
        f"\nno dampen: pb lost after {lost_after:.2f} s (a round with pb silent: "
        f"{round_s:.2f} s), back after {back_after:.2f} s"
    )
    # At worst the round in progress still saw pb, then one interval, then a full silent round.
    assert lost_after < 2 * (INTERVAL_S + TIMEOUT_S) + 0.5
    assert TIMEOUT_S - 0.05 <= round_s < TIMEOUT_S + 0.2


def test_a_ping_group_counts_once_and_is_reached_while_any_member_answers(
    lab: PingLab, tmp_path: Path, nodes: list[Node]
) -> None:
    routers = PingGroup("routers", (lab.pa.address, lab.pb.address))
    node = start(lab, tmp_path, nodes, ping=(lab.pc.address,), groups=(routers,))
    wait_for(lambda: node.score() == 2, 10, what="score 2")  # pc, and the group once

    lab.lab.link_down(lab.pb)
    rounds_after(node, 4)
    assert (node.score(), node.status().reached) == (2, (lab.pc.address, "routers"))

    lab.lab.link_down(lab.pa)
    wait_for(lambda: node.score() == 1, 10, what="the group lost")
    assert node.status().reached == (lab.pc.address,)


def test_the_multiplier_scales_the_score(lab: PingLab, tmp_path: Path, nodes: list[Node]) -> None:
    node = start(lab, tmp_path, nodes, ping=(lab.pa.address, lab.pb.address), multiplier=100)

    wait_for(lambda: node.score() == 200, 10, what="score 200")


def test_stopping_is_prompt_even_in_the_middle_of_a_round(
    lab: PingLab, tmp_path: Path, nodes: list[Node]
) -> None:
    lab.lab.link_down(lab.pa)
    node = start(lab, tmp_path, nodes, ping=(lab.pa.address,), timeout=30.0)
    (thread,) = ping_threads()

    started = time.monotonic()
    nodes.remove(node)
    node.stop()

    assert time.monotonic() - started < 0.5
    assert not thread.is_alive()
    assert node.score() is None


def test_a_ping_socket_works_where_raw_sockets_are_not_allowed(lab: PingLab) -> None:
    # The fallback: an unprivileged daemon allowed by net.ipv4.ping_group_range (per namespace).
    lab.node.exec(["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"])
    lab.lab.link_down(lab.pb)

    def one_round() -> dict[str, float]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
        wake_read, wake_write = os.pipe()
        try:
            prober = Prober(IcmpSocket(sock, raw=False), wake_read)
            return prober.round([lab.pa.address, lab.pb.address], 2, 0.3)
        finally:
            sock.close()
            os.close(wake_read)
            os.close(wake_write)

    assert list(in_namespace(lab.node.netns, one_round)) == [lab.pa.address]
