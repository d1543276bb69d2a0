"""Placement as Pacemaker's scheduler tests do it: a cluster state in, the actions out."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from hacore.config.model import AutoFailback
from hacore.resources.placement import (
    Direction,
    GroupSpec,
    Move,
    NodeView,
    Plan,
    Scope,
    place_group,
    plan,
)

VIP = GroupSpec("IPaddr::198.51.100.55/24/eth0", "pc1")
WEB = GroupSpec("IPaddr::198.51.100.56/24/eth0", "pc2")
ON, OFF, LEGACY = AutoFailback.ON, AutoFailback.OFF, AutoFailback.LEGACY


def node(name: str, *holds: str, **kw: object) -> NodeView:
    return NodeView(name, holds=frozenset(holds), **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Case:
    name: str
    nodes: tuple[NodeView, ...]
    expected: str | None
    auto_failback: AutoFailback = ON
    group: GroupSpec = VIP
    extra: dict[str, object] = field(default_factory=dict)


CASES = [
    Case("both up, nothing held: the preferred node", (node("pc1"), node("pc2")), "pc1"),
    Case(
        "preferred dead: the survivor", (node("pc1", live=False, present=False), node("pc2")), "pc2"
    ),
    Case("failback on: back to the preferred node", (node("pc1"), node("pc2", VIP.key)), "pc1"),
    Case("failback off: stays with the holder", (node("pc1"), node("pc2", VIP.key)), "pc2", OFF),
    Case("legacy behaves as on", (node("pc1"), node("pc2", VIP.key)), "pc1", LEGACY),
    Case(
        "after a partition both hold, off: the preferred holder keeps it",
        (node("pc1", VIP.key), node("pc2", VIP.key)),
        "pc1",
        OFF,
    ),
    Case(
        "after a partition both hold, the preferred is not a holder: first in node order",
        (node("pc1", live=False, present=False), node("pc2", VIP.key), node("pc3", VIP.key)),
        "pc2",
        OFF,
    ),
    Case(
        "failed on the preferred node: elsewhere",
        (node("pc1", failed=frozenset({VIP.key})), node("pc2")),
        "pc2",
    ),
    Case(
        "failed everywhere: nowhere",
        (node("pc1", failed=frozenset({VIP.key})), node("pc2", failed=frozenset({VIP.key}))),
        None,
    ),
    Case(
        "blocked by a configuration error: nowhere",
        (node("pc1"), node("pc2", blocked=frozenset({VIP.key}))),
        None,
    ),
    Case(
        "standby on the preferred node: the peer",
        (node("pc1", moves=(Move(Scope.LOCAL, Direction.GIVE, 10),)), node("pc2")),
        "pc2",
    ),
    Case(
        "standby never blocks failover: the standby node is the last resort",
        (
            node("pc1", moves=(Move(Scope.LOCAL, Direction.GIVE, 10),)),
            node("pc2", live=False, present=False),
        ),
        "pc1",
    ),
    Case(
        "takeover of foreign groups by pc2 beats auto_failback",
        (node("pc1"), node("pc2", moves=(Move(Scope.FOREIGN, Direction.TAKE, 10),))),
        "pc2",
    ),
    Case(
        "the latest move wins: pc1 took back after pc2's takeover",
        (
            node("pc1", moves=(Move(Scope.LOCAL, Direction.TAKE, 20),)),
            node("pc2", moves=(Move(Scope.FOREIGN, Direction.TAKE, 10),)),
        ),
        "pc1",
    ),
    Case(
        "a move of a node that is not live does not count",
        (
            node("pc1"),
            node(
                "pc2", live=False, present=False, moves=(Move(Scope.FOREIGN, Direction.TAKE, 10),)
            ),
        ),
        "pc1",
    ),
    Case(
        "more ping nodes reached wins over the preferred node",
        (node("pc1", score=1), node("pc2", score=2)),
        "pc2",
    ),
    Case("equal scores: the preferred node", (node("pc1", score=2), node("pc2", score=2)), "pc1"),
    Case(
        "three nodes, preferred dead: first survivor in node order",
        (node("pc1", live=False, present=False), node("pc2"), node("pc3")),
        "pc2",
    ),
    Case(
        "three nodes, preferred dead, the third holds it already (off): it keeps it",
        (node("pc1", live=False, present=False), node("pc2"), node("pc3", VIP.key)),
        "pc3",
        OFF,
    ),
    Case("nobody live: nowhere", (node("pc1", live=False), node("pc2", live=False)), None),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_placement_table(case: Case) -> None:
    assert place_group(case.group, case.nodes, case.auto_failback) == case.expected


def _plan(local: str, *nodes: NodeView, auto_failback: AutoFailback = ON) -> Plan:
    return plan([VIP, WEB], nodes, local, auto_failback)


def test_both_starting_each_starts_only_its_own_group() -> None:
    assert _plan("pc1", node("pc1"), node("pc2")).start == (VIP.key,)
    assert _plan("pc2", node("pc1"), node("pc2")).start == (WEB.key,)


def test_the_survivor_starts_the_dead_nodes_group() -> None:
    p = _plan("pc2", node("pc1", live=False, present=False), node("pc2", WEB.key))
    assert p.start == (VIP.key,) and p.stop == ()


def test_a_planned_move_waits_until_the_holder_announces_the_release() -> None:
    # pc1 is back (failback on): pc2 must stop first, pc1 must wait.
    pc1, pc2 = node("pc1"), node("pc2", VIP.key, WEB.key)
    assert _plan("pc2", pc1, pc2).stop == (VIP.key,)
    waiting = _plan("pc1", pc1, pc2)
    assert waiting.start == () and waiting.waiting == (VIP.key,)
    released = _plan("pc1", pc1, node("pc2", WEB.key))
    assert released.start == (VIP.key,)


def test_a_dead_holder_does_not_make_the_taker_wait() -> None:
    p = _plan("pc2", node("pc1", VIP.key, live=False, present=False), node("pc2"))
    assert VIP.key in p.start


def test_a_leaving_node_still_holding_makes_the_taker_wait() -> None:
    leaving = node("pc1", VIP.key, live=False, present=True)
    p = _plan("pc2", leaving, node("pc2"))
    assert p.waiting == (VIP.key,)


def test_after_a_partition_the_loser_stops_and_the_winner_keeps() -> None:
    pc1, pc2 = node("pc1", VIP.key, WEB.key), node("pc2", VIP.key, WEB.key)
    assert _plan("pc1", pc1, pc2, auto_failback=OFF).stop == (WEB.key,)
    assert _plan("pc2", pc1, pc2, auto_failback=OFF).stop == (VIP.key,)
