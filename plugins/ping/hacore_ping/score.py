"""From replies to the score placement sees. Pure: no sockets, time passed in.

A *target* is what the score counts: each ``ping`` node, and each ``ping_group`` as one (reached
when any of its members answers, as in Heartbeat). The score is the number of targets reached
times the multiplier (``ocf:pacemaker:ping``). The ``Dampener`` lets a changed score count only
once it has held for ``dampen``, so a ping node that flaps does not move groups back and forth.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from hacore.config.model import ClusterConfig

__all__ = ["Dampener", "Target", "addresses", "reached", "targets"]


@dataclass(frozen=True)
class Target:
    name: str  # the address of a ping node, or the name of a ping group
    addresses: tuple[str, ...]


def targets(config: ClusterConfig) -> tuple[Target, ...]:
    nodes = tuple(Target(address, (address,)) for address in config.ping_nodes)
    groups = tuple(Target(group.name, group.addresses) for group in config.ping_groups)
    return nodes + groups


def addresses(of: Iterable[Target]) -> tuple[str, ...]:
    """Every address to ping, once each, in configuration order (a ping node may also be a
    member of a group)."""
    return tuple(dict.fromkeys(address for target in of for address in target.addresses))


def reached(of: Iterable[Target], answered: Collection[str]) -> tuple[Target, ...]:
    """The targets with at least one address in ``answered``."""
    return tuple(t for t in of if any(address in answered for address in t.addresses))


class Dampener:
    """The score in force, and the change waiting to be.

    The first measurement counts at once: until then there is no score at all. After that a
    different value must be measured continuously for ``dampen_s`` before it replaces the one in
    force; measuring the score in force again (or a third value) starts the wait over.
    """

    def __init__(self, dampen_s: float) -> None:
        self.dampen_s = dampen_s
        self.value: int | None = None
        self._pending: tuple[int, float] | None = None  # (value, first measured at)

    def update(self, measured: int, now: float) -> int:
        """Record a measurement taken at ``now``; returns the score in force."""
        if self.value is None or measured == self.value:
            self.value, self._pending = measured, None
            return measured
        if self._pending is None or self._pending[0] != measured:
            self._pending = (measured, now)
        if now - self._pending[1] >= self.dampen_s:
            self.value, self._pending = measured, None
        return self.value

    @property
    def pending(self) -> int | None:
        """The value waiting to take over, if any."""
        return self._pending[0] if self._pending is not None else None
