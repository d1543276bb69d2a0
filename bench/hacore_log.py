"""What hacore's own log says, and when. Its lines carry millisecond timestamps (logging's
default ``asctime``, local time), which time events inside the daemons without polling them.
"""

from __future__ import annotations

import datetime
import re

__all__ = ["active_times", "dead_times", "group_operations", "log_time"]

_DEAD_LINE = re.compile(r"^(\S+ \S+) hacore\[\d+\]: WARNING: node (\S+): is dead", re.MULTILINE)
_ACTIVE_LINE = re.compile(
    r"^(\S+ \S+) hacore\[\d+\]: INFO: Status update for node (\S+): status active", re.MULTILINE
)
_GROUP_LINE = re.compile(
    r"^(\S+ \S+) hacore\[\d+\]: INFO: (starting|stopping) group|"
    r"^(\S+ \S+) hacore\[\d+\]: INFO: group \S+ (started|stopped)$",
    re.MULTILINE,
)


def log_time(stamp: str) -> float:
    """A hacore log timestamp as wall-clock seconds."""
    return datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def dead_times(log: str, node: str) -> list[float]:
    """When the log declared ``node`` dead."""
    return [log_time(m[1]) for m in _DEAD_LINE.finditer(log) if m[2] == node]


def active_times(log: str, node: str) -> list[float]:
    """When the log saw ``node`` become active."""
    return [log_time(m[1]) for m in _ACTIVE_LINE.finditer(log) if m[2] == node]


def group_operations(log: str, since: float) -> list[tuple[str, float]]:
    """Each group start and stop after ``since``: (``start`` or ``stop``, seconds from "starting
    group" to "group ... started"). That is the agents' time (netlink calls, the first ARP
    announcement) without the cluster's messaging."""
    found: list[tuple[str, float]] = []
    began: dict[str, float] = {}
    for match in _GROUP_LINE.finditer(log):
        if match[1] is not None:
            at = log_time(match[1])
            if at >= since:
                began["start" if match[2] == "starting" else "stop"] = at
        else:
            op = "start" if match[4] == "started" else "stop"
            if op in began:
                found.append((op, log_time(match[3]) - began.pop(op)))
    return found
