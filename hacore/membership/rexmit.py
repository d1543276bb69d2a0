"""Retransmission as Heartbeat does it (reference 3.7), so that no message is lost for good.

A sender keeps its last 500 sequenced messages; a receiver that sees a gap in a peer's sequence
asks for the missing numbers with ``NS_rexmit`` (after a random delay, so that several receivers
do not all ask at once, then again every ``max_rexmit_delay`` until the gap closes or the peer
dies). The sender resends the stored message unchanged, or answers ``NS_nak_rexmit`` when it is
no longer held. Keepalives make most losses harmless; this is for the messages that are sent
once (a Heartbeat peer's ``t=resource``, ``ask_resources``...).
"""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass

from hacore.membership.wire import Message

REXMIT = "NS_rexmit"
NAK = "NS_nak_rexmit"
HISTORY = 500  # Heartbeat's MAXMSGHIST
MAX_PER_REQUEST = 50  # Heartbeat answers at most this many per request
RESEND_HOLDOFF_S = 0.24  # a message resent this recently is not resent again
MAX_DELAY_S = 0.25  # Heartbeat's max_rexmit_delay default
MAX_ASKED = 10  # missing sequence numbers asked for per peer and round


class SentHistory:
    """Our last sequenced messages, by sequence number."""

    def __init__(self, size: int = HISTORY) -> None:
        self._size = size
        self._sent: OrderedDict[int, Message] = OrderedDict()
        self._resent_at: dict[int, float] = {}

    def add(self, seq: int, msg: Message) -> None:
        self._sent[seq] = msg
        while len(self._sent) > self._size:
            old, _ = self._sent.popitem(last=False)
            self._resent_at.pop(old, None)

    def answer(self, first: int, last: int, now: float) -> tuple[list[Message], list[int]]:
        """The stored messages to resend for [first, last], and the numbers we no longer
        hold (to refuse with a NAK)."""
        resend: list[Message] = []
        gone: list[int] = []
        highest = next(reversed(self._sent), 0)
        for seq in range(first, min(last, first + MAX_PER_REQUEST - 1) + 1):
            msg = self._sent.get(seq)
            if msg is None:
                if seq <= highest:
                    gone.append(seq)
                continue  # above what we sent: nothing to say
            if now - self._resent_at.get(seq, -RESEND_HOLDOFF_S) < RESEND_HOLDOFF_S:
                continue
            self._resent_at[seq] = now
            resend.append(msg)
        return resend, gone


@dataclass
class _Asking:
    due: float


class GapRequests:
    """When to ask each peer for the sequence numbers missing from it."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._asking: dict[str, _Asking] = {}

    def gap_seen(self, peer: str, now: float) -> None:
        if peer not in self._asking:
            # A random delay in [50, 250] ms, as Heartbeat: receivers spread their requests.
            self._asking[peer] = _Asking(now + self._rng.uniform(0.05, MAX_DELAY_S))

    def forget(self, peer: str) -> None:
        self._asking.pop(peer, None)

    def due(self, peer: str, now: float) -> bool:
        asking = self._asking.get(peer)
        if asking is None or now < asking.due:
            return False
        asking.due = now + MAX_DELAY_S
        return True

    def next_due(self) -> float | None:
        return min((a.due for a in self._asking.values()), default=None)

    @property
    def peers(self) -> list[str]:
        return list(self._asking)


def request_fields(peer: str, seq: int) -> list[tuple[str, str | bytes]]:
    # Heartbeat writes these two with ha_msg_add_int: decimal, unlike every other number.
    return [("dest", peer), ("firstseq", str(seq)), ("lastseq", str(seq))]


def nak_fields(peer: str, seq: int) -> list[tuple[str, str | bytes]]:
    return [("firstseq", f"{seq:x}"), ("dest", peer), ("info", "not in history")]
