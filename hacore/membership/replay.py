"""Replay protection for one sender: generation, sequence window and timestamp freshness.

Threat model: an attacker on the heartbeat segment can capture authenticated datagrams and send
them again later, but cannot forge new ones (that needs the key). A replay must never count as a
sign of life nor deliver a message twice. Heartbeat's own rules are kept (a lower generation is a
replay; a higher one is a restart) and hacore adds two: a sliding window remembers which recent
sequence numbers were seen, so a duplicate is told apart from a new message exactly, and a
timestamp far from our clock is refused, which bounds what a capture is worth once the receiver
has forgotten the sender's sequence (after our own restart, say).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# How many sequence numbers below the highest one seen we still remember. Heartbeat keeps 500
# messages of history for retransmission; a retransmitted message is inside this window.
WINDOW = 512


class SeqVerdict(enum.Enum):
    NEW = "new"
    RESTART = "restart"  # higher generation: the sender restarted, its sequence starts over
    DUPLICATE = (
        "duplicate"  # seen before in this generation: same datagram on another link, or a replay
    )
    TOO_OLD = "too_old"  # below the window: cannot be told from a replay
    STALE_GENERATION = "stale_generation"


@dataclass
class SenderWindow:
    """Sequence state of one sender. ``seen`` bit i set means sequence ``highest - i`` arrived."""

    generation: int
    highest: int = 0
    seen: int = 0
    # The first sequence number heard in this generation: nothing before it counts as missing.
    first: int = 0

    def check(self, generation: int, seq: int) -> SeqVerdict:
        """Classify (generation, seq) and record it when it is accepted."""
        if generation < self.generation:
            return SeqVerdict.STALE_GENERATION
        verdict = SeqVerdict.NEW
        if generation > self.generation:
            self.generation, self.highest, self.seen, self.first = generation, 0, 0, 0
            verdict = SeqVerdict.RESTART
        if not self.first:
            self.first = seq
        if seq > self.highest:
            shift = seq - self.highest
            self.seen = ((self.seen << shift) | 1) & ((1 << WINDOW) - 1) if shift < WINDOW else 1
            self.highest = seq
            return verdict
        offset = self.highest - seq
        if offset >= WINDOW:
            return SeqVerdict.TOO_OLD
        bit = 1 << offset
        if self.seen & bit:
            return SeqVerdict.DUPLICATE
        self.seen |= bit
        return verdict

    def missing(self, limit: int = 50) -> list[int]:
        """Sequence numbers inside the window that never arrived, oldest first (for rexmit)."""
        out: list[int] = []
        lowest = max(self.first, self.highest - WINDOW + 1)
        for seq in range(lowest, self.highest):
            if not self.seen & (1 << (self.highest - seq)):
                out.append(seq)
                if len(out) >= limit:
                    break
        return out


def is_fresh(sent_wall: float, now_wall: float, window_s: float) -> bool:
    """A timestamp within ``window_s`` of our clock, either way (clocks are not in lock-step)."""
    try:
        return abs(now_wall - sent_wall) <= window_s
    except OverflowError:  # a hex 'ts' of any length can exceed a float: far from any clock
        return False
