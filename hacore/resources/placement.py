"""Placement: which node should hold each group. A pure function of what every node announces.

Every node computes ``place`` from the same inputs (its own announcement and the latest one of
each live peer), so all nodes reach the same answer without a coordinator; each node then acts
only on its own part (``plan``). The rules, in order:

1. a group blocked by a configuration error anywhere runs nowhere (it would fail everywhere);
2. candidates are the live nodes where the group has not failed; nodes that gave the group away
   (standby) are used only when no other candidate is left, so a standby never blocks failover;
3. the node that reaches the most ping nodes wins (Heartbeat's ipfail);
4. the latest explicit move (``hactl takeover`` / ``standby``) decides among the rest;
5. with ``auto_failback on`` (and ``legacy``) the preferred node wins; with ``off`` the current
   holder keeps the group (after a partition, the preferred node among the holders);
6. otherwise the preferred node, else the first candidate in ``node`` line order.

Safety during a planned move comes from ``plan``: a node starts a group only once no other node
announces holding it, and announcing is done the moment a stop completes.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from hacore.config.model import AutoFailback


class Scope(enum.StrEnum):
    """Which groups a standby or takeover names, relative to the node that issued it."""

    LOCAL = "local"  # groups whose preferred node is the issuer
    FOREIGN = "foreign"  # the other groups

    def covers(self, issuer: str, preferred: str) -> bool:
        return (preferred == issuer) is (self is Scope.LOCAL)


class Direction(enum.StrEnum):
    TAKE = "take"
    GIVE = "give"


@dataclass(frozen=True)
class Move:
    """An explicit request by a node: take (or give away) the groups of ``scope``; the latest
    one that covers a group wins, whichever node made it."""

    scope: Scope
    direction: Direction
    at_ms: int


@dataclass(frozen=True)
class NodeView:
    """What one node announces (and, for the local node, knows) about itself."""

    name: str
    live: bool = True  # active, ready, and not leaving: may be given groups
    present: bool = True  # not dead: what it announces holding is still held
    holds: frozenset[str] = frozenset()
    failed: frozenset[str] = frozenset()
    blocked: frozenset[str] = frozenset()
    moves: tuple[Move, ...] = ()
    score: int = 0


@dataclass(frozen=True)
class GroupSpec:
    key: str
    preferred: str


@dataclass(frozen=True)
class Plan:
    """What the local node must do now."""

    start: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    # Groups this node should hold but another node still announces: wait for its release.
    waiting: tuple[str, ...] = ()
    desired: Mapping[str, str | None] = field(default_factory=dict)


def _latest_move(group: GroupSpec, candidates: Sequence[NodeView]) -> tuple[NodeView, Move] | None:
    best: tuple[NodeView, Move] | None = None
    for node in candidates:
        for move in node.moves:
            if not move.scope.covers(node.name, group.preferred):
                continue
            if best is None or (move.at_ms, node.name) > (best[1].at_ms, best[0].name):
                best = (node, move)
    return best


def place_group(
    group: GroupSpec, nodes: Sequence[NodeView], auto_failback: AutoFailback
) -> str | None:
    """The node that should hold ``group``; ``nodes`` are in ``node`` line order."""
    if any(group.key in n.blocked for n in nodes if n.present):
        return None
    ok = [n for n in nodes if n.live and group.key not in n.failed]
    gave = {
        n.name
        for n in ok
        if (m := _latest_move(group, [n])) is not None and m[1].direction is Direction.GIVE
    }
    pool = [n for n in ok if n.name not in gave] or ok
    if not pool:
        return None
    best = max(n.score for n in pool)
    candidates = [n for n in pool if n.score == best]
    names = [n.name for n in candidates]

    latest = _latest_move(group, [n for n in nodes if n.live])
    if latest is not None:
        issuer, move = latest
        if move.direction is Direction.TAKE and issuer.name in names:
            return issuer.name
        if move.direction is Direction.GIVE and len(names) > 1 and issuer.name in names:
            names.remove(issuer.name)
            candidates = [n for n in candidates if n.name != issuer.name]

    if auto_failback is not AutoFailback.OFF and group.preferred in names:
        return group.preferred
    holders = [n.name for n in candidates if group.key in n.holds]
    if holders:
        return group.preferred if group.preferred in holders else holders[0]
    return group.preferred if group.preferred in names else names[0]


def place(
    groups: Sequence[GroupSpec], nodes: Sequence[NodeView], auto_failback: AutoFailback
) -> dict[str, str | None]:
    return {g.key: place_group(g, nodes, auto_failback) for g in groups}


def plan(
    groups: Sequence[GroupSpec],
    nodes: Sequence[NodeView],
    local: str,
    auto_failback: AutoFailback,
    incomplete: Collection[str] = (),
) -> Plan:
    """Start what should be here and is free, stop what should not be here. ``incomplete``
    groups are held here but only partly run (a probe found some resources stopped): held,
    so stopped when they should not be here, and otherwise started like a group not held,
    once no other node announces them (it may serve the part missing here)."""
    desired = place(groups, nodes, auto_failback)
    me = next(n for n in nodes if n.name == local)
    start: list[str] = []
    stop: list[str] = []
    waiting: list[str] = []
    for group in groups:
        mine = desired[group.key] == local
        held_here = group.key in me.holds
        if mine and (not held_here or group.key in incomplete):
            others = [n for n in nodes if n.name != local and n.present and group.key in n.holds]
            (waiting if others else start).append(group.key)
        elif not mine and held_here:
            stop.append(group.key)
    return Plan(tuple(start), tuple(stop), tuple(waiting), desired)
