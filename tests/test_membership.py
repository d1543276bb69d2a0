"""Membership under a fake clock: 2, 3 and 16 nodes, death, restart, partition, loss, replays."""

from __future__ import annotations

import pytest

from hacore.config.model import Timers
from hacore.membership.events import (
    CommUp,
    DatagramRejected,
    LateHeartbeat,
    LinkState,
    LinkStateChanged,
    NodeRestarted,
    NodeReturned,
    NodeState,
    NodeStateChanged,
    Send,
)
from hacore.membership.wire import Message, Verdict
from tests.membership_sim import Network

FAST = Timers(
    keepalive_ms=100, deadtime_ms=1000, warntime_ms=500, initdead_ms=2000, deadping_ms=1000
)


def _states(net: Network, observer: str) -> dict[str, NodeState]:
    m = net.nodes[observer].membership
    return {n: m.node_state(n) for n in net.names}


def _local_state(net: Network, name: str) -> NodeState:
    return net.nodes[name].membership.state


def _all_active(net: Network) -> bool:
    return all(
        set(_states(net, name).values()) == {NodeState.ACTIVE}
        for name, node in net.nodes.items()
        if node.alive
    )


@pytest.mark.parametrize("count", [2, 3, 16])
def test_nodes_started_together_all_become_active_within_two_keepalives(count: int) -> None:
    net = Network([f"n{i}" for i in range(count)], FAST)
    net.run(0.2, until=lambda: _all_active(net))
    assert _all_active(net)
    assert net.now <= 0.2
    for node in net.nodes.values():
        assert any(isinstance(e, CommUp) for e in node.events)


def test_a_lone_node_comes_up_after_initdead_and_marks_the_silent_peer_dead() -> None:
    net = Network(["a", "b"], FAST)
    net.kill("b")
    net.run(1.9)
    assert _local_state(net, "a") is NodeState.UP
    net.run(0.2)
    assert _local_state(net, "a") is NodeState.ACTIVE
    assert net.nodes["a"].membership.node_state("b") is NodeState.DEAD


@pytest.mark.parametrize("count", [2, 3, 16])
def test_a_killed_node_is_declared_dead_after_deadtime_and_within_one_keepalive(count: int) -> None:
    net = Network([f"n{i}" for i in range(count)], FAST)
    net.run(0.5)
    assert _all_active(net)
    net.kill("n1")
    killed_at = net.now
    # The last status n1 sent left at most one keepalive before the kill.
    net.run(
        5.0,
        until=lambda: all(
            net.nodes[o].membership.node_state("n1") is NodeState.DEAD
            for o in net.names
            if o != "n1"
        ),
    )
    for observer in net.names:
        if observer == "n1":
            continue
        died = [
            e
            for e in net.nodes[observer].events
            if isinstance(e, NodeStateChanged) and e.node == "n1" and e.new is NodeState.DEAD
        ]
        assert len(died) == 1
    elapsed = net.now - killed_at
    assert FAST.deadtime_ms / 1000 - FAST.keepalive_ms / 1000 <= elapsed
    assert elapsed <= (FAST.deadtime_ms + FAST.keepalive_ms) / 1000 + 0.001


def test_a_restarted_node_is_recognised_by_its_higher_generation() -> None:
    net = Network(["a", "b"], FAST)
    net.run(0.5)
    net.kill("b")
    net.run(1.5)
    assert net.nodes["a"].membership.node_state("b") is NodeState.DEAD
    net.start("b")
    net.run(0.5)
    events = net.nodes["a"].events
    assert any(isinstance(e, NodeRestarted) and e.node == "b" for e in events)
    assert not any(isinstance(e, NodeReturned) for e in events)
    assert net.nodes["a"].membership.node_state("b") is NodeState.ACTIVE


def test_a_partition_that_heals_is_reported_as_a_return_with_the_same_generation() -> None:
    net = Network(["a", "b"], FAST)
    net.run(0.5)
    net.cut.add(frozenset(("a", "b")))
    net.run(1.5)
    assert net.nodes["a"].membership.node_state("b") is NodeState.DEAD
    assert net.nodes["b"].membership.node_state("a") is NodeState.DEAD
    net.cut.clear()
    net.run(0.3)
    for observer, other in (("a", "b"), ("b", "a")):
        events = net.nodes[observer].events
        assert any(isinstance(e, NodeReturned) and e.node == other for e in events)
        assert not any(isinstance(e, NodeRestarted) for e in events)
        assert net.nodes[observer].membership.node_state(other) is NodeState.ACTIVE


def test_a_status_later_than_warntime_is_reported_as_a_late_heartbeat() -> None:
    net = Network(["a", "b"], FAST)
    net.run(0.5)
    net.cut.add(frozenset(("a", "b")))
    net.run(0.7)
    net.cut.clear()
    net.run(0.2)
    late = [e for e in net.nodes["a"].events if isinstance(e, LateHeartbeat)]
    assert late and late[0].node == "b"
    assert 500 < late[0].interval_ms < 1000
    assert net.nodes["a"].membership.node_state("b") is NodeState.ACTIVE


def test_late_heartbeats_are_counted_per_node_in_the_view() -> None:
    net = Network(["a", "b", "c"], FAST)
    net.run(0.5)
    net.cut.add(frozenset(("a", "b")))
    net.run(0.7)
    net.cut.clear()
    net.run(0.2)
    view = {n.name: n for n in net.nodes["a"].membership.view(net.now).nodes}
    late = [e for e in net.nodes["a"].events if isinstance(e, LateHeartbeat)]
    assert view["b"].late_heartbeats == len(late) == 1
    assert view["c"].late_heartbeats == 0


def test_twenty_percent_loss_and_reordering_cause_no_false_death() -> None:
    net = Network(["a", "b", "c"], FAST, loss=0.2, latency=(0.0001, 0.15), seed=7)
    net.run(60.0)
    for node in net.nodes.values():
        assert not any(
            isinstance(e, NodeStateChanged) and e.new is NodeState.DEAD for e in node.events
        ), node.name
    assert _all_active(net)


def test_a_replayed_status_is_rejected_and_does_not_keep_a_dead_node_alive() -> None:
    net = Network(["a", "b"], FAST)
    net.run(0.5)
    old = [m for src, m in net.captured if src == "b"][-1]
    net.kill("b")
    net.run(1.5)
    assert net.nodes["a"].membership.node_state("b") is NodeState.DEAD
    events = net.inject("a", old)
    assert [e.verdict for e in events if isinstance(e, DatagramRejected)] == [Verdict.REPLAY]
    assert net.nodes["a"].membership.node_state("b") is NodeState.DEAD
    assert net.nodes["a"].membership.rejected[Verdict.REPLAY] == 1


def test_the_same_datagram_on_a_second_link_refreshes_that_link_only() -> None:
    net = Network(["a", "b"], FAST, links=("eth0", "eth1"))
    net.run(0.5)
    view = net.nodes["a"].membership.view(net.now)
    links = {li.name: li.state for li in view.nodes[0].links}
    assert links == {"eth0": LinkState.UP, "eth1": LinkState.UP}
    assert not net.nodes["a"].membership.rejected


def test_a_link_that_stops_carrying_traffic_is_declared_dead_while_the_node_lives() -> None:
    net = Network(["a", "b"], FAST, links=("eth0", "eth1"))
    net.run(0.5)
    net.links = ("eth0",)  # eth1 is unplugged: nothing arrives over it any more
    net.run(1.5)
    a = net.nodes["a"]
    assert any(
        isinstance(e, LinkStateChanged) and e.link == "eth1" and e.new is LinkState.DEAD
        for e in a.events
    )
    assert a.membership.node_state("b") is NodeState.ACTIVE


def _forge(net: Network, sender: str, **changes: str) -> Message:
    original = [m for s, m in net.captured if s == sender][-1]
    fields = tuple((k, changes.get(k, v)) for k, v in original.fields)
    return Message(fields)


def test_a_lower_generation_is_rejected_as_stale() -> None:
    net = Network(["a", "b"], FAST)
    net.run(0.5)
    gen = net.nodes["b"].membership.generation
    events = net.inject("a", _forge(net, "b", hg=f"{gen - 1:x}", seq="ffff"))
    assert [e.verdict for e in events if isinstance(e, DatagramRejected)] == [
        Verdict.STALE_GENERATION
    ]


def test_a_timestamp_far_from_our_clock_is_rejected() -> None:
    net = Network(["a", "b"], FAST)
    net.run(0.5)
    ts = int(net.wall()) - FAST.freshness_ms // 1000 - 60
    events = net.inject("a", _forge(net, "b", ts=f"{ts:x}", seq="ffff"))
    assert [e.verdict for e in events if isinstance(e, DatagramRejected)] == [Verdict.STALE_TIME]


def test_a_node_that_is_not_configured_is_rejected() -> None:
    net = Network(["a", "b"], FAST)
    net.run(0.5)
    events = net.inject("a", _forge(net, "b", src="mallory", seq="ffff"))
    assert [e.verdict for e in events if isinstance(e, DatagramRejected)] == [Verdict.NOT_MEMBER]


def test_our_own_looped_back_broadcast_is_ignored_without_counting_as_rejected() -> None:
    net = Network(["a", "b"], FAST)
    net.run(0.5)
    assert net.inject("a", _forge(net, "a")) == []
    assert net.nodes["a"].membership.loopback == 1
    assert not net.nodes["a"].membership.rejected


def test_a_shutdown_notice_marks_the_node_dead_at_once() -> None:
    net = Network(["a", "b"], FAST)
    net.run(0.5)
    b = net.nodes["b"]
    for event in b.membership.shutdown(net.wall()):
        net._emit(b, [event])
    b.alive = False
    net.run(0.01)
    assert net.nodes["a"].membership.node_state("b") is NodeState.DEAD


def test_status_messages_carry_heartbeats_standard_fields_in_order() -> None:
    net = Network(["a", "b"], FAST)
    net.run(0.01)
    status = next(m for s, m in net.captured if s == "a")
    names = [k for k, _ in status.fields]
    assert names == ["t", "st", "dt", "src", "srcuuid", "seq", "hg", "ts", "ld", "ttl"]
    assert status.get("dt") == "3e8"
    assert status.get("ttl") == "3"
    assert status.get("seq") == "1"


def test_a_datagram_repeated_on_the_same_link_is_a_replay_even_at_once() -> None:
    net = Network(["a", "b"], FAST)
    net.run(0.5)
    newest = [m for s, m in net.captured if s == "b"][-1]
    events = net.inject("a", newest, link="eth0")
    assert [e.verdict for e in events if isinstance(e, DatagramRejected)] == [Verdict.REPLAY]


def test_a_lost_message_is_asked_for_and_retransmitted() -> None:
    from hacore.membership.events import Delivered

    net = Network(["a", "b"], FAST)
    net.run(0.5)
    b = net.nodes["b"]
    net.cut.add(frozenset(("a", "b")))
    lost = b.membership.message("resource", [("rsc_hold", "local")], net.wall())
    net._emit(b, [Send(lost)])
    net.cut.clear()
    net.run(1.0)
    delivered = [e.message for e in net.nodes["a"].events if isinstance(e, Delivered)]
    assert lost in delivered  # the very message, resent unchanged
    asked = [m for s, m in net.captured if s == "a" and m.type == "NS_rexmit"]
    assert asked and asked[0].get("dest") == "b"
    assert asked[0].get("firstseq") == str(int(lost.get("seq") or "0", 16))


def test_a_message_no_longer_held_is_refused_with_a_nak() -> None:
    net = Network(["a", "b"], FAST)
    net.run(0.2)
    b = net.nodes["b"].membership
    for _ in range(600):
        b.message("resource", [], net.wall())
    request = net.nodes["a"].membership.message(
        "NS_rexmit", [("dest", "b"), ("firstseq", "1"), ("lastseq", "1")], net.wall()
    )
    events = net.inject("b", request)
    naks = [e.message for e in events if isinstance(e, Send)]
    assert [m.type for m in naks] == ["NS_nak_rexmit"]
    assert naks[0].get("firstseq") == "1" and naks[0].get("dest") == "a"


def test_a_heartbeat_peers_reqnodes_is_answered_with_the_node_list() -> None:
    net = Network(["a", "b"], FAST)
    net.run(0.2)
    ask = net.nodes["b"].membership.message("reqnodes", [("dest", "a")], net.wall())
    events = net.inject("a", ask)
    (reply,) = [e.message for e in events if isinstance(e, Send)]
    assert reply.type == "repnodes"
    assert reply.get("dest") == "b"
    assert set((reply.get("nodelist") or "").split()) == {"a", "b"}
