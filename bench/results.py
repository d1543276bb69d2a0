"""What a benchmark run records: every sample of every series, and how to summarise them.

A ``Series`` is one metric of one system in one scenario (``failover-fast`` / ``failover_s`` /
``keepalived``), with the command that reproduces it, the settings it ran at, every sample, a
free-form detail record per sample (timestamps, who held the VIP ...) and the errors of the
repetitions that could not be measured.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Run", "Series", "Summary", "percentile", "summarize"]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    n: int
    p50: float
    p95: float
    max: float
    min: float


def summarize(values: list[float]) -> Summary | None:
    if not values:
        return None
    return Summary(
        n=len(values),
        p50=percentile(values, 50),
        p95=percentile(values, 95),
        max=max(values),
        min=min(values),
    )


@dataclass
class Series:
    scenario: str
    metric: str
    system: str
    unit: str
    command: str = ""
    settings: str = ""
    limit: float | None = None  # the configured floor (deadtime) or target, when there is one
    samples: list[float] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, value: float, **detail: Any) -> None:
        self.samples.append(value)
        self.details.append(detail)

    def summary(self) -> Summary | None:
        return summarize(self.samples)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        summary = self.summary()
        data["summary"] = asdict(summary) if summary is not None else None
        return data


@dataclass
class Run:
    """Every series of one ``python -m bench`` invocation, and the machine it ran on."""

    meta: dict[str, Any] = field(default_factory=dict)
    series: list[Series] = field(default_factory=list)

    def get(self, scenario: str, metric: str, system: str) -> Series | None:
        for series in self.series:
            if (series.scenario, series.metric, series.system) == (scenario, metric, system):
                return series
        return None

    def new(self, scenario: str, metric: str, system: str, unit: str, **kwargs: Any) -> Series:
        """The series for (scenario, metric, system), created on first use."""
        series = self.get(scenario, metric, system)
        if series is None:
            series = Series(scenario, metric, system, unit, **kwargs)
            self.series.append(series)
        return series

    def to_json(self) -> dict[str, Any]:
        return {"meta": self.meta, "series": [s.to_json() for s in self.series]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        """A run read back from its results.json (to render its report again)."""
        names = set(Series.__dataclass_fields__)
        series = [Series(**{k: v for k, v in s.items() if k in names}) for s in data["series"]]
        return cls(meta=dict(data.get("meta", {})), series=series)
