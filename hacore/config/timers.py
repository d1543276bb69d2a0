"""Heartbeat's timers: the defaults derived from deadtime and the checks on all six
(``init_config()`` in heartbeat/config.c). ha.cf and cluster.toml share these rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hacore.config.errors import Problem, Severity
from hacore.config.model import (
    DEFAULT_DEADTIME_MS,
    DEFAULT_FRESHNESS_MS,
    DEFAULT_KEEPALIVE_MS,
    Location,
    Timers,
)
from hacore.config.values import describe_ms

# The timer names, the same in ha.cf and in cluster.toml's [timers].
TIMER_NAMES = ("keepalive", "deadtime", "warntime", "initdead", "deadping", "freshness")


@dataclass(frozen=True)
class Setting:
    """A timer as written: milliseconds and where."""

    ms: int
    location: Location


def default_initdead(deadtime_ms: int) -> int:
    if deadtime_ms > 10_000:
        return deadtime_ms
    if deadtime_ms < 6_000:
        return 12_000
    return 2 * deadtime_ms


def derive_timers(given: Mapping[str, Setting], where: Location) -> tuple[Timers, list[Problem]]:
    """Fill in the timers not given the way Heartbeat does, then check them all.

    ``given`` maps ``keepalive``, ``deadtime``, ``warntime``, ``initdead``, ``deadping`` and
    ``freshness`` to what was written; ``where`` locates problems about timers left unset.
    """

    def value(name: str, default: int) -> int:
        s = given.get(name)
        return s.ms if s is not None else default

    def at(*names: str) -> Location:
        for name in names:
            if name in given:
                return given[name].location
        return where

    keepalive = value("keepalive", DEFAULT_KEEPALIVE_MS)
    deadtime = value("deadtime", DEFAULT_DEADTIME_MS)
    warntime = value("warntime", deadtime // 2)
    initdead = value("initdead", default_initdead(deadtime))
    deadping = value("deadping", deadtime)
    freshness = value("freshness", DEFAULT_FRESHNESS_MS)
    problems: list[Problem] = []

    def error(location: Location, message: str) -> None:
        problems.append(Problem(location, message))

    if keepalive <= 0:
        error(at("keepalive"), "keepalive must be more than 0")
    elif deadtime <= 2 * keepalive:
        error(
            at("deadtime", "keepalive"),
            f"deadtime ({describe_ms(deadtime)}) must be more than twice keepalive "
            f"({describe_ms(keepalive)}): raise deadtime or lower keepalive",
        )
    elif "deadping" in given and deadping <= 2 * keepalive:
        error(
            at("deadping"),
            f"deadping ({describe_ms(deadping)}) must be more than twice keepalive "
            f"({describe_ms(keepalive)})",
        )
    if "warntime" in given and warntime <= 0:
        error(at("warntime"), "warntime must be more than 0")
    elif "warntime" in given and warntime >= deadtime:
        problems.append(
            Problem(
                at("warntime"),
                f"warntime ({describe_ms(warntime)}) is not below deadtime "
                f"({describe_ms(deadtime)}), so no late heartbeat will ever be reported",
                Severity.WARNING,
            )
        )
    # The derived initdead is never below deadtime nor below 10 s, so both checks can only
    # fire on a value somebody wrote.
    if initdead < deadtime:
        error(
            at("initdead"),
            f"initdead ({describe_ms(initdead)}) must not be less than deadtime "
            f"({describe_ms(deadtime)})",
        )
    elif initdead < 10_000:
        problems.append(
            Problem(
                at("initdead"),
                f"initdead ({describe_ms(initdead)}) is under 10 s: a peer whose network "
                "comes up slowly at boot may be declared dead",
                Severity.WARNING,
            )
        )
    if freshness <= 0:
        error(at("freshness"), "freshness must be more than 0")
    timers = Timers(
        keepalive_ms=keepalive,
        deadtime_ms=deadtime,
        warntime_ms=warntime,
        initdead_ms=initdead,
        deadping_ms=deadping,
        freshness_ms=freshness,
    )
    return timers, problems
