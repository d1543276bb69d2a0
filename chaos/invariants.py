"""The invariants of issue 7, judged from what the chaos run recorded (no I/O here).

Inputs: the kernel's record of who held the VIP (``AddressWatch.timeline()``: time → holders),
the faults with the times they were applied and reverted, and the aggregates the status poller
kept. Output: one ``Verdict`` per invariant, with its worst observed value and its bound.

How the two timing invariants are judged:

1. **Dual holders.** Without fencing, some faults *must* give two holders: a frozen (SIGSTOP),
   killed or cut-off holder cannot release its address while a peer, rightly, takes over. What
   hacore controls is how long the conflict lasts once it can be seen, so each episode's
   *excess* is measured: the time it lasted after the later of its own start and the revert of
   every fault active during it (heal, SIGCONT, restart, link up). The bound applies to the
   excess; the raw window is reported too.
2. **No holder.** Every episode without a holder is bounded by deadtime plus the group's start
   time (with an allowance for a loaded machine), since with one fault at a time at least two
   nodes are always healthy and eligible.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Episode",
    "FaultRecord",
    "Verdict",
    "episodes",
    "judge_dual",
    "judge_empty",
]

Timeline = Sequence[tuple[float, frozenset[str]]]


@dataclass
class FaultRecord:
    """One fault of the run: what, on whom, when applied and reverted (wall-clock seconds)."""

    step: int
    kind: str
    targets: tuple[str, ...]
    detail: str
    applied: float
    reverted: float | None = None
    settled: float | None = None
    notes: list[str] = field(default_factory=list)

    def active(self, start: float, end: float) -> bool:
        """Was this fault in force at some time within [start, end]?"""
        reverted = self.reverted if self.reverted is not None else float("inf")
        return self.applied <= end and reverted >= start

    def describe(self) -> str:
        who = ",".join(self.targets)
        return f"#{self.step} {self.kind}({who}{'; ' + self.detail if self.detail else ''})"


@dataclass(frozen=True)
class Episode:
    start: float
    end: float
    holders: frozenset[str]

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Verdict:
    name: str
    worst: float | int
    bound: float | int | None
    unit: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        worst = f"{self.worst:.3f}" if isinstance(self.worst, float) else str(self.worst)
        bound = "" if self.bound is None else f" (bound {self.bound:g}{self.unit})"
        status = "ok  " if self.ok else "FAIL"
        detail = f" — {self.detail}" if self.detail else ""
        return f"{status} {self.name}: worst {worst}{self.unit}{bound}{detail}"


def episodes(timeline: Timeline, end: float, *, dual: bool) -> list[Episode]:
    """Maximal runs of the timeline with two or more holders (``dual``) or with none."""
    found: list[Episode] = []
    marks = [*timeline, (end, frozenset())]
    current: tuple[float, frozenset[str]] | None = None
    for (at, holders), (following, _) in itertools.pairwise(marks):
        bad = len(holders) >= 2 if dual else not holders
        if bad and following > at:
            current = (at, holders) if current is None else (current[0], current[1] | holders)
        elif not bad and current is not None:
            found.append(Episode(current[0], at, current[1]))
            current = None
    if current is not None:
        found.append(Episode(current[0], end, current[1]))
    return found


def _excess(episode: Episode, faults: Iterable[FaultRecord]) -> tuple[float, list[str]]:
    """Seconds the episode lasted after every fault in force during it was reverted."""
    causes = [f for f in faults if f.active(episode.start, episode.end)]
    reverted = [f.reverted if f.reverted is not None else episode.end for f in causes]
    resolvable_from = max([episode.start, *reverted])
    return max(0.0, episode.end - resolvable_from), [f.describe() for f in causes]


def judge_dual(
    timeline: Timeline, faults: Sequence[FaultRecord], end: float, bound: float
) -> tuple[Verdict, Verdict, list[str]]:
    """Invariant 1: (raw worst window, worst excess after its causes were reverted, lines)."""
    worst_raw, worst_excess, lines = 0.0, 0.0, []
    worst_excess_text = ""
    for episode in episodes(timeline, end, dual=True):
        excess, causes = _excess(episode, faults)
        worst_raw = max(worst_raw, episode.seconds)
        text = (
            f"{sorted(episode.holders)} for {episode.seconds:.3f} s, {excess:.3f} s after its "
            f"causes were reverted; causes: {', '.join(causes) or 'none'}"
        )
        lines.append(text)
        if excess >= worst_excess:
            worst_excess, worst_excess_text = excess, text
    raw = Verdict(
        "1. dual holders: longest window (no fencing: a frozen or cut-off holder keeps its VIP)",
        worst_raw,
        None,
        " s",
        True,
        f"{len(lines)} episodes",
    )
    excess_verdict = Verdict(
        "1. dual holders: longest after the cause was reverted (detect + resolve)",
        worst_excess,
        bound,
        " s",
        worst_excess <= bound,
        worst_excess_text,
    )
    return raw, excess_verdict, lines


def judge_empty(
    timeline: Timeline, faults: Sequence[FaultRecord], end: float, start_at: float, bound: float
) -> tuple[Verdict, list[str]]:
    """Invariant 2: the longest time nobody held the VIP (after ``start_at``)."""
    worst, lines, worst_text = 0.0, [], ""
    for episode in episodes(timeline, end, dual=False):
        if episode.end <= start_at:
            continue
        causes = [f.describe() for f in faults if f.active(episode.start, episode.end)]
        text = f"{episode.seconds:.3f} s from +{episode.start - start_at:.1f} s; " + (
            f"during {', '.join(causes)}" if causes else "no fault in force"
        )
        lines.append(text)
        if episode.seconds >= worst:
            worst, worst_text = episode.seconds, text
    verdict = Verdict(
        "2. no holder while an eligible node was healthy",
        worst,
        bound,
        " s",
        worst <= bound,
        worst_text,
    )
    return verdict, lines
