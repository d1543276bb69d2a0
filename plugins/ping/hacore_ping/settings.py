"""How hacore-ping measures: Pacemaker's ``ocf:pacemaker:ping`` parameters, from ping.toml.

The ping nodes themselves come from the cluster configuration (ha.cf's ``ping`` and
``ping_group``, or cluster.toml's ``[ping]``). How to ping them is optional, in ``ping.toml`` next
to that configuration (``/etc/ha.d/ping.toml``, or beside cluster.toml)::

    attempts = 3        # echo requests per host and round before it counts as unreachable
    timeout = "2s"      # per host and round, split across the attempts (fping -t timeout/attempts)
    multiplier = 1      # score = reachable ping nodes (a ping_group counts once) x multiplier
    dampen = "5s"       # a changed score counts only once it has held this long
    interval = "2s"     # from the start of a round to the next; default min(2 s, deadping / 2)

Times are strings with a unit, or integers of milliseconds, as in cluster.toml.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from hacore.config.model import ClusterConfig
from hacore.config.suggest import did_you_mean
from hacore.config.values import MAX_MS, InvalidValueError, parse_duration

__all__ = ["CONFIG_NAME", "PingSettings", "load_settings", "settings_path"]

CONFIG_NAME = "ping.toml"
# Rounds at most this far apart by default: ping nodes are cheap to ask, and a dead one should
# be noticed well inside Heartbeat's deadping.
MAX_DEFAULT_INTERVAL_MS = 2000

_KEYS = ("attempts", "timeout", "multiplier", "dampen", "interval")


@dataclass(frozen=True)
class PingSettings:
    attempts: int = 3
    timeout_ms: int = 2000
    multiplier: int = 1
    dampen_ms: int = 5000
    interval_ms: int = MAX_DEFAULT_INTERVAL_MS


def settings_path(config: ClusterConfig) -> Path:
    source = config.source
    return (source if source.is_dir() else source.parent) / CONFIG_NAME


def load_settings(config: ClusterConfig) -> tuple[PingSettings, list[str]]:
    """The settings for ``config``'s node, and one message per problem in ping.toml."""
    default_interval = max(1, min(MAX_DEFAULT_INTERVAL_MS, config.timers.deadping_ms // 2))
    defaults = PingSettings(interval_ms=default_interval)
    path = settings_path(config)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return defaults, []
    except (OSError, UnicodeDecodeError) as err:
        return defaults, [f"{path}: cannot be read: {err}"]
    except tomllib.TOMLDecodeError as err:
        return defaults, [f"{path}: {err}"]
    problems: list[str] = []
    for key in document:
        if key not in _KEYS:
            problems.append(f"{path}: unknown setting '{key}'{did_you_mean(key, _KEYS)}")

    def number(key: str, default: int, low: int, high: int) -> int:
        value = document.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append(f"{path}: '{key}' must be a whole number from {low} to {high}")
            return default
        return value

    def time(key: str, default: int, *, zero: bool) -> int:
        value = document.get(key, default)
        hint = f'{path}: \'{key}\' must be a time like "2s" or "500ms", or milliseconds'
        if isinstance(value, str):
            try:
                ms = parse_duration(value)
            except InvalidValueError as err:
                problems.append(f"{path}: '{key}': {err}")
                return default
        elif isinstance(value, int) and not isinstance(value, bool):
            ms = value
        else:
            problems.append(hint)
            return default
        if not (0 if zero else 1) <= ms <= MAX_MS:
            problems.append(f"{hint}{'' if zero else ', more than 0'}")
            return default
        return ms

    settings = PingSettings(
        attempts=number("attempts", defaults.attempts, 1, 100),
        timeout_ms=time("timeout", defaults.timeout_ms, zero=False),
        multiplier=number("multiplier", defaults.multiplier, 1, 1_000_000),
        dampen_ms=time("dampen", defaults.dampen_ms, zero=True),
        interval_ms=time("interval", defaults.interval_ms, zero=False),
    )
    return settings, problems
