"""What a node announces about its resources, as extra fields of every status message.

Heartbeat ignores fields it does not know, so these ride on the keepalives a mixed cluster
already exchanges. Sending the whole state every keepalive (rather than only changes) is what
makes the exchange robust: a lost datagram is repaired by the next one, and after a partition
heals each side learns what the other holds within one keepalive.

Group keys are haresources tokens, which never contain white space: lists are space-separated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hacore.membership.wire import Message
from hacore.resources.placement import Direction, Move, Scope

VERSION = "1"
F_VERSION = "hc"
F_READY = "hc_ready"
F_HOLD = "hc_hold"
F_FAILED = "hc_failed"
F_BLOCKED = "hc_blocked"
F_MOVES = "hc_moves"
F_LEAVING = "hc_leaving"
F_SCORE = "hc_score"
F_MAINTENANCE = "hc_maint"


@dataclass(frozen=True)
class Announcement:
    ready: bool = False
    leaving: bool = False
    holds: frozenset[str] = frozenset()
    failed: frozenset[str] = frozenset()
    blocked: frozenset[str] = frozenset()
    moves: tuple[Move, ...] = ()
    score: int = 0
    # Maintenance mode: its resources are unmanaged; give it nothing, take nothing from it.
    maintenance: bool = False


def _keys(keys: Iterable[str]) -> str:
    return " ".join(sorted(keys))


def encode(a: Announcement) -> list[tuple[str, str | bytes]]:
    fields: list[tuple[str, str | bytes]] = [
        (F_VERSION, VERSION),
        (F_READY, "1" if a.ready else "0"),
        (F_HOLD, _keys(a.holds)),
    ]
    if a.failed:
        fields.append((F_FAILED, _keys(a.failed)))
    if a.blocked:
        fields.append((F_BLOCKED, _keys(a.blocked)))
    if a.moves:
        fields.append((F_MOVES, " ".join(f"{m.scope}:{m.direction}:{m.at_ms}" for m in a.moves)))
    if a.leaving:
        fields.append((F_LEAVING, "1"))
    if a.score:
        fields.append((F_SCORE, str(a.score)))
    if a.maintenance:
        fields.append((F_MAINTENANCE, "1"))
    return fields


def _set(msg: Message, name: str) -> frozenset[str]:
    return frozenset((msg.get(name) or "").split())


def _moves(text: str) -> tuple[Move, ...]:
    moves: list[Move] = []
    for item in text.split():
        try:
            scope, direction, at = item.split(":")
            moves.append(Move(Scope(scope), Direction(direction), int(at)))
        except ValueError:
            continue  # an authenticated peer sent something newer than we know: skip it
    return tuple(moves)


def decode(msg: Message) -> Announcement | None:
    """The announcement in a status message, or None if the sender is not an hacore node."""
    if msg.get(F_VERSION) is None:
        return None
    try:
        score = int(msg.get(F_SCORE) or "0")
    except ValueError:
        score = 0
    return Announcement(
        ready=msg.get(F_READY) == "1",
        leaving=msg.get(F_LEAVING) == "1",
        holds=_set(msg, F_HOLD),
        failed=_set(msg, F_FAILED),
        blocked=_set(msg, F_BLOCKED),
        moves=_moves(msg.get(F_MOVES) or ""),
        score=score,
        maintenance=msg.get(F_MAINTENANCE) == "1",
    )
