"""What the membership state machine tells the world: frozen events, and the state enums."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hacore.membership.wire import Message, Verdict


class NodeState(enum.StrEnum):
    """Heartbeat's node states, spelled as on the wire and in ``cl_status nodestatus``."""

    INIT = "init"
    UP = "up"
    ACTIVE = "active"
    DEAD = "dead"


class LinkState(enum.StrEnum):
    UP = "up"
    DEAD = "dead"


@dataclass(frozen=True)
class Send:
    """A message to put on every link now."""

    message: Message


@dataclass(frozen=True)
class NodeStateChanged:
    node: str
    old: NodeState
    new: NodeState
    reason: str


@dataclass(frozen=True)
class NodeRestarted:
    """A higher generation arrived: the node's daemon started again (it holds nothing)."""

    node: str
    old_generation: int
    new_generation: int


@dataclass(frozen=True)
class NodeReturned:
    """A node we had declared dead speaks again with the same generation: a partition healed."""

    node: str


@dataclass(frozen=True)
class LateHeartbeat:
    node: str
    interval_ms: int


@dataclass(frozen=True)
class LinkStateChanged:
    node: str
    link: str
    new: LinkState


@dataclass(frozen=True)
class Delivered:
    """An accepted, non-duplicate message (status messages included): for the resource
    manager, which reads the announcements that statuses carry."""

    node: str
    message: Message


@dataclass(frozen=True)
class DatagramRejected:
    verdict: Verdict
    link: str
    detail: str


@dataclass(frozen=True)
class CommUp:
    """Every configured node has been heard from or declared dead: the local node is active."""


Event = (
    Send
    | NodeStateChanged
    | NodeRestarted
    | NodeReturned
    | LateHeartbeat
    | LinkStateChanged
    | Delivered
    | DatagramRejected
    | CommUp
)
