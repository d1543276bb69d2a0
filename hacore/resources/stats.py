"""How long resource actions take and how they fail, per agent and action.

Recorded on the daemon's event loop as each action ends (``GroupRuntime._act``); read through
``summary()``, a plain copy the metrics endpoint's thread may keep without sharing anything live.
Durations go into fixed buckets, as a Prometheus histogram needs, so memory stays bounded.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Seconds. From a fast monitor to a stop near a typical action timeout; longer lands in +Inf.
DURATION_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# How an action ended when it did what it was asked (any other word is a failure).
OK = "ok"


@dataclass
class _Tally:
    per_bucket: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS_S) + 1))
    sum_s: float = 0.0
    failures: Counter[str] = field(default_factory=Counter)


class ActionStats:
    """Per (agent, action): a duration histogram and failure counts by result. Not thread-safe:
    only the event loop records, and readers get ``summary()``."""

    def __init__(self) -> None:
        self._tallies: dict[tuple[str, str], _Tally] = {}

    def record(self, agent: str, action: str, duration_s: float, result: str) -> None:
        """One finished action; ``result`` is ``OK`` or what went wrong (``timeout``,
        ``err_generic``, ``not_running``...)."""
        tally = self._tallies.setdefault((agent, action), _Tally())
        tally.per_bucket[bisect.bisect_left(DURATION_BUCKETS_S, duration_s)] += 1
        tally.sum_s += duration_s
        if result != OK:
            tally.failures[result] += 1

    def summary(self) -> list[dict[str, Any]]:
        """A copy, one entry per agent and action, sorted: ``count``, ``sum_s``, ``buckets``
        (``[upper bound in s, actions at most that long]``, cumulative) and ``failures``
        (result -> count)."""
        out: list[dict[str, Any]] = []
        for (agent, action), tally in sorted(self._tallies.items()):
            cumulative, buckets = 0, []
            for bound, n in zip(DURATION_BUCKETS_S, tally.per_bucket, strict=False):
                cumulative += n
                buckets.append([bound, cumulative])
            out.append({
                "agent": agent,
                "action": action,
                "count": sum(tally.per_bucket),
                "sum_s": tally.sum_s,
                "buckets": buckets,
                "failures": dict(sorted(tally.failures.items())),
            })  # fmt: skip
        return out
