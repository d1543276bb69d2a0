"""What the core tells notifier plugins: frozen events, one per thing a person may want to hear of.

These are the arguments of the ``hacore_node_event`` and ``hacore_resource_event`` hooks
(``hacore.hookspecs``). They are values: immutable, comparable, and safe to hand to a worker
thread or to serialise (``dataclasses.asdict``) for a webhook.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from hacore.agent import OCFResult


class ResourceAction(enum.StrEnum):
    """What happened to a resource or a group."""

    START = "start"
    STOP = "stop"
    MONITOR = "monitor"  # reported only when the verdict changes, not at every interval
    FAILOVER = "failover"  # a group moved because its node died or its resource kept failing
    TAKEOVER = "takeover"  # a group moved on request (hactl takeover) or by auto_failback
    RELEASE = "release"  # this node gave a group up (hactl standby, shutdown, failback)


@dataclass(frozen=True, kw_only=True)
class NodeEvent:
    """A node changed state, as seen from ``local_node``.

    ``old_state`` and ``new_state`` are Heartbeat's status words (``init``, ``up``, ``active``,
    ``dead``), spelled as ``cl_status nodestatus`` prints them; ``reason`` says why in words
    (``"no keepalive for 10000 ms"``, ``"said goodbye"``). ``timestamp`` is wall-clock time,
    timezone-aware, when the core saw the change.
    """

    node: str
    old_state: str
    new_state: str
    reason: str
    cluster: str
    local_node: str
    timestamp: datetime


@dataclass(frozen=True, kw_only=True)
class ResourceEvent:
    """A resource action finished on ``node``, or a whole group moved.

    ``resource`` is the resource's haresources spelling (``IPaddr::192.168.10.55/24/eth0``), or
    None for group-level actions (failover, takeover, release). ``group`` is the group key (the
    spelling of its first resource). ``result`` is the OCF outcome (``result.name`` gives
    ``"SUCCESS"``, ``"ERR_CONFIGURED"``...); ``detail`` is the agent's message or the core's
    explanation, empty when there is nothing to add.
    """

    group: str
    resource: str | None
    action: ResourceAction
    result: OCFResult
    node: str
    cluster: str
    timestamp: datetime
    detail: str = ""
