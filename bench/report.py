"""The run as people read it: a markdown table (the issue's), a JSON file of every sample, and a
PNG of the failover distributions.

Each row names the command that reproduces it. The last column says where hacore stands against
the best peer on that row: a loss is written as one, with both medians.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.profiles import PROFILES, SYSTEMS
from bench.results import Run, Series, Summary, percentile

__all__ = ["Row", "markdown", "plot", "rows", "write_json"]

NAMES = {"hacore": "hacore", "heartbeat": "Heartbeat 3.0.6", "keepalived": "keepalived 2.2.7"}
# Differences smaller than the instrument's resolution are ties: the probe's 5 ms spacing for
# times, a tenth of a percent point of one core for CPU, a megabyte for memory.
RESOLUTION = {"s": 0.005, "%": 0.1, "MB": 1.0, "count": 0.5}


@dataclass(frozen=True)
class Row:
    label: str
    scenario: str
    metric: str
    limit: str
    style: str = "spread"  # spread: p50 / p95 / max; overlap: moves with both; count
    peers: bool = True  # compare hacore's median with the peers' (lower is better)
    target: float | None = None  # hacore's target for the median (lower is better)


def rows() -> list[Row]:
    table: list[Row] = []
    for name, profile in PROFILES.items():
        hb = profile.hacore
        timing = f"{hb.keepalive_ms / 1000:g} s / {hb.deadtime_ms / 1000:g} s"
        scenario = f"failover-{name}"
        table += [
            Row(f"unplanned failover, {name} ({timing})", scenario, "failover_s", "deadtime"),
            Row(f"reaction overhead (failover - deadtime), {name}", scenario, "overhead_s",
                "≤ 20 ms", peers=False, target=0.020),
            Row(f"reaction after the deadtime ran out (answered - last packet heard - "
                f"deadtime), {name}", scenario, "reaction_s", "≤ 20 ms", target=0.020),
        ]  # fmt: skip
    table += [
        Row("planned switchover (standby) gap", "switchover", "standby_gap_s", "0 (≤ 5 ms)",
            target=0.005),
        Row("planned move back (takeover) gap", "switchover", "takeover_gap_s", "0 (≤ 5 ms)",
            target=0.005),
        Row("VIP on both nodes during planned moves", "switchover", "overlap_s", "never",
            "overlap", target=0.0),
    ]  # fmt: skip
    table += [
        Row(f"failback gap, {name}", f"failover-{name}", "failback_gap_s", "0") for name in PROFILES
    ]
    table += [
        Row("VIP on both nodes during failback", "failover-fast", "failback_overlap_s", "never",
            "overlap", target=0.0),
        Row("idle CPU per daemon (1 s keepalive)", "footprint-1s", "cpu_percent", ""),
        Row("RSS per node (1 s keepalive)", "footprint-1s", "rss_mb", ""),
        Row("idle CPU per daemon (100 ms keepalive)", "footprint-100ms", "cpu_percent", ""),
        Row("RSS per node (100 ms keepalive)", "footprint-100ms", "rss_mb", ""),
        Row("false failovers (fast profile, CPUs loaded, 10 % loss per link)", "false-failovers",
            "spurious_takeovers", "0", "count", target=0.0),
        Row("VIP on both nodes in that run (total time)", "false-failovers", "overlap_s", "0",
            "count", target=0.0),
    ]  # fmt: skip
    return table


def _seconds(value: float) -> str:
    if abs(value) < 1.0:
        return f"{value * 1000:.0f} ms" if abs(value) >= 0.0095 else f"{value * 1000:.1f} ms"
    return f"{value:.2f} s"


def _value(value: float, unit: str) -> str:
    if unit == "s":
        return _seconds(value)
    if unit == "%":
        return f"{value:.2f} %"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:g}"


def _spread(summary: Summary, unit: str) -> str:
    parts = (_value(v, unit) for v in (summary.p50, summary.p95, summary.max))
    return " / ".join(parts) + f" (n={summary.n})"


def _cell(run: Run, row: Row, system: str) -> str:
    series = run.get(row.scenario, row.metric, system)
    if series is None:
        return "—"
    summary = series.summary()
    failed = f", {len(series.errors)} failed" if series.errors else ""
    if summary is None:
        return f"no sample{failed}" if series.errors else "—"
    if row.style == "count":
        if series.unit == "s":
            episodes = sum(int(d.get("episodes", 0)) for d in series.details)
            plural = "" if episodes == 1 else "s"
            return f"{_seconds(summary.p50)} ({episodes} episode{plural}){failed}"
        minutes = series.details[0].get("seconds", 0) / 60 if series.details else 0
        return f"{summary.p50:g} in {minutes:.3g} min{failed}"
    if row.style == "overlap":
        episodes = sum(1 for v in series.samples if v > 0)
        longest = f", longest {_seconds(summary.max)}" if episodes else ""
        return f"{episodes} of {summary.n} moves{longest}{failed}"
    lost = [int(d["lost"]) for d in series.details if isinstance(d.get("lost"), int)]
    # Probes that went unanswered at all (a silence can also be a reply that came late).
    probes = (
        f"; probes lost p50 {percentile([float(n) for n in lost], 50):g}, max {max(lost)}"
        if lost
        else ""
    )
    return _spread(summary, series.unit) + probes + failed


def _limit(run: Run, row: Row) -> str:
    if row.limit != "deadtime":
        return row.limit
    parts = []
    for system in SYSTEMS:
        series = run.get(row.scenario, row.metric, system)
        if series is not None and series.limit is not None:
            parts.append(f"{_seconds(series.limit)} ({system})")
    return "; ".join(parts) if parts else "deadtime"


def _key(run: Run, row: Row, system: str) -> float | None:
    """The figure compared across systems (lower is better)."""
    series = run.get(row.scenario, row.metric, system)
    summary = series.summary() if series is not None else None
    if series is None or summary is None:
        return None
    if row.style == "overlap":
        return float(sum(1 for v in series.samples if v > 0))
    return summary.p50


def verdict(run: Run, row: Row) -> str:
    """Where hacore stands on ``row``: against the best peer, and against its own target."""
    ours = _key(run, row, "hacore")
    series = run.get(row.scenario, row.metric, "hacore")
    if ours is None or series is None:
        return "—"
    unit = series.unit
    overlap = row.style == "overlap"
    tolerance = 0.0 if overlap else RESOLUTION.get(unit, 0.0)

    def shown(value: float) -> str:
        return f"{value:g} moves" if overlap else _value(value, unit)

    parts: list[str] = []
    if row.peers:
        losses, ties, wins = [], [], []
        for system in SYSTEMS[1:]:
            theirs = _key(run, row, system)
            if theirs is None:
                continue
            if ours > theirs + tolerance:
                # A failover lost to a peer configured to give up sooner is not the software's
                # cost: say so.
                peer = run.get(row.scenario, row.metric, system)
                ours_limit = series.limit if row.metric == "failover_s" else None
                theirs_limit = peer.limit if peer is not None else None
                why = (
                    f", its deadtime is {_value(theirs_limit, unit)}"
                    if ours_limit is not None
                    and theirs_limit is not None
                    and theirs_limit < ours_limit - tolerance
                    else ""
                )
                losses.append(
                    f"**loses** to {NAMES[system]} ({shown(ours)} vs {shown(theirs)}{why})"
                )
            elif abs(ours - theirs) <= tolerance:
                ties.append(NAMES[system])
            else:
                wins.append(NAMES[system])
        if losses:
            parts += losses
        elif ties:
            parts.append(f"ties with {', '.join(ties)}")
        elif wins:
            parts.append("wins")
    if row.target is not None:
        # No tolerance here: the silences already discount the probe's own spacing.
        met = ours <= row.target
        if overlap:
            target = "never"
        elif row.style == "count":
            target = f"{row.target:g}"
        else:
            target = f"≤ {_value(row.target, unit)}"
        parts.append(f"target {target}: {'met' if met else '**missed**'}")
    return "; ".join(parts) or "(alone)"


def markdown(run: Run) -> str:
    """The main table, the scale table and the failover breakdown."""
    systems = [s for s in SYSTEMS if any(x.system == s for x in run.series)]
    lines = [
        "| scenario | "
        + " | ".join(f"{NAMES[s]} p50 / p95 / max" for s in systems)
        + " | limit | hacore | command |",
        "|---|" + "---|" * (len(systems) + 3),
    ]
    for row in rows():
        if not any(run.get(row.scenario, row.metric, s) for s in systems):
            continue
        cells = [_cell(run, row, s) for s in systems]
        command = _command(run, row)
        lines.append(
            f"| {row.label} | "
            + " | ".join(cells)
            + f" | {_limit(run, row)} | {verdict(run, row)} | `{command}` |"
        )
    out = "\n".join(lines) + "\n"
    breakdown = _breakdown(run, systems)
    if breakdown:
        out += "\n" + breakdown
    scale = _scale_table(run)
    if scale:
        out += "\n" + scale
    return out


def _command(run: Run, row: Row) -> str:
    for system in SYSTEMS:
        series = run.get(row.scenario, row.metric, system)
        if series is not None and series.command:
            return series.command
    return ""


def _median(values: Iterable[object]) -> float | None:
    present: list[float] = []
    for value in values:
        if isinstance(value, list):
            present += [float(v) for v in value]
        elif isinstance(value, int | float):
            present.append(float(value))
    return percentile(present, 50) if present else None


def _breakdown(run: Run, systems: list[str]) -> str:
    """Where the failover time goes (medians): kill → VIP added on the survivor → answered."""
    lines = [
        "| failover, medians | " + " | ".join(NAMES[s] for s in systems) + " |",
        "|---|" + "---|" * len(systems),
    ]
    found = False
    for name in PROFILES:
        for label, key in (
            ("power-off → peer declared dead (log)", "declared_dead_s"),
            ("last packet heard from it → power-off", "last_heard_before_kill_s"),
            ("power-off → VIP added on survivor", "vip_added_s"),
            ("of which the agent's group start (hacore log)", "pc2_start_s"),
            ("VIP added → client answered", "announce_s"),
        ):
            cells = []
            for system in systems:
                series = run.get(f"failover-{name}", "failover_s", system)
                value = _median(d.get(key) for d in series.details) if series else None
                cells.append(_seconds(value) if value is not None else "—")
            if any(c != "—" for c in cells):
                found = True
                lines.append(f"| {name}: {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" if found else ""


def _scale_table(run: Run) -> str:
    sizes = sorted(
        {int(s.scenario.split("-")[1]) for s in run.series if s.scenario.startswith("scale-")}
    )
    if not sizes:
        return ""
    lines = [
        "| hacore nodes | full membership p50 / p95 / max | CPU % per daemon p50 / max "
        "| dead node declared by all p50 / p95 / max | command |",
        "|---|---|---|---|---|",
    ]
    for size in sizes:
        cells = []
        command = ""
        for metric in ("membership_s", "cpu_percent", "detection_s"):
            series = run.get(f"scale-{size}", metric, "hacore")
            summary = series.summary() if series is not None else None
            command = command or (series.command if series else "")
            if summary is None:
                failed = len(series.errors) if series else 0
                cells.append(f"no sample ({failed} failed)" if failed else "—")
            elif metric == "cpu_percent":
                cells.append(f"{summary.p50:.2f} % / {summary.max:.2f} %")
            else:
                cells.append(_spread(summary, "s"))
        lines.append(f"| {size} | " + " | ".join(cells) + f" | `{command}` |")
    return "\n".join(lines) + "\n"


def write_json(run: Run, path: Path) -> None:
    path.write_text(json.dumps(run.to_json(), indent=1) + "\n")


def plot(run: Run, path: Path) -> str | None:
    """Failover distributions per profile (and the planned-move and failback gaps) as a PNG.
    Returns why not, when matplotlib is missing."""
    # A benchmark-only dependency, imported when a plot is asked for: the table and the JSON
    # need nothing beyond the standard library.
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib): no plot"
    short = {"hacore": "hacore", "heartbeat": "Heartbeat", "keepalived": "keepalived"}
    colours = {"hacore": "tab:blue", "heartbeat": "tab:orange", "keepalived": "tab:green"}
    panels: list[tuple[str, list[tuple[str, Series]]]] = []
    for name in PROFILES:
        found = [
            (short[s], x) for s in SYSTEMS if (x := run.get(f"failover-{name}", "failover_s", s))
        ]
        if any(x.samples for _, x in found):
            panels.append((f"unplanned failover, {name} profile", found))
    for title, scenario, metric in (
        ("VIP unanswered: planned switchover (standby)", "switchover", "standby_gap_s"),
        ("VIP unanswered: failback, fast profile", "failover-fast", "failback_gap_s"),
    ):
        found = [(short[s], x) for s in SYSTEMS if (x := run.get(scenario, metric, s))]
        if any(x.samples for _, x in found):
            panels.append((title, found))
    if not panels:
        return "no failover samples to plot"
    columns = min(3, len(panels))
    lines = (len(panels) + columns - 1) // columns
    figure, axes = plt.subplots(lines, columns, figsize=(5 * columns, 4.2 * lines), squeeze=False)
    cells = [ax for line in axes for ax in line]
    for ax in cells[len(panels) :]:
        ax.set_visible(False)
    for ax, (title, entries) in zip(cells, panels, strict=False):
        # Milliseconds, with a floor of 0.1 ms so that "nothing lost" shows on a log scale.
        data = [[max(v * 1000, 0.1) for v in x.samples] or [float("nan")] for _, x in entries]
        ax.boxplot(data, showfliers=False, widths=0.5)
        for i, (values, (_, x)) in enumerate(zip(data, entries, strict=True), start=1):
            spread = [i + 0.05 * ((j % 7) - 3) for j in range(len(values))]
            ax.plot(spread, values, "o", alpha=0.6, markersize=4, color=colours[x.system])
            if x.metric == "failover_s" and x.limit:
                ax.hlines(x.limit * 1000, i - 0.4, i + 0.4, colors="red", linestyles="dashed")
        ax.set_yscale("log")
        ax.set_xticks(range(1, len(entries) + 1), [label for label, _ in entries])
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("ms, log scale" + (" (red: deadtime)" if "failover" in title else ""))
        ax.grid(axis="y", which="both", alpha=0.3)
    figure.suptitle(f"n = {max(len(x.samples) for _, e in panels for _, x in e)} per system; "
                    "boxes: quartiles, whiskers: range", fontsize=9)  # fmt: skip
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return None
