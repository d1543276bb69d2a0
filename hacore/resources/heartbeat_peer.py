"""A Heartbeat 3.0.6 peer, seen through its R1 messages, and the standby handshake with it.

An hacore peer announces exactly what it holds; a Heartbeat peer only says ``rsc_hold`` in its
``t=resource`` messages and moves groups through the three-phase ``ask_resources`` handshake
(reference 3.10). This module turns the first into the same ``Announcement`` an hacore peer
would send, so placement treats both alike, and keeps the state of the handshake:

* the peer gives (``hb_standby`` there, or its auto_failback): it asks ``info=me``; we answer
  ``info=other``, take the groups once its ``t=resource`` says it released them, and say
  ``info=done``;
* we give (``hactl standby`` here, or our auto_failback): Heartbeat takes nothing it is not
  handed, so we ask ``info=me`` and stop the groups only after its ``info=other``; then we say
  ``info=done`` and it takes them.

Sets travel as Heartbeat's words, relative to the sender: its ``local`` is our ``foreign``.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from hacore.membership.wire import Message
from hacore.resources import fields, r1
from hacore.resources.placement import Direction, Move, Scope

log = logging.getLogger(__name__)

ASK = "ask_resources"
TAKEOVER = "hb_takeover"
# Heartbeat cancels a standby request left unanswered this long (STANDBY_INIT_TO_MS).
ASK_TIMEOUT_S = 10.0
# Heartbeat ignores a standby request, silently to the asker, while either side is in flux;
# a request still unanswered after this is sent again. Long enough for a lost answer to be
# retransmitted first (its NS_rexmit comes 50-250 ms after the gap shows).
ASK_RETRY_S = 2.0
# Until a Heartbeat peer says it is stable, our t=starting is sent again this often. Heartbeat
# waits in its start-up exchange for our t=resource, and answers every t=starting with its own
# (which we answer with ours); a message lost before either side began to track the other's
# sequence numbers is never asked for again (NS_rexmit needs a gap after a first packet).
STARTING_RETRY_S = 2.0

Fields = list[tuple[str, str | bytes]]


def scopes_of(word: str) -> tuple[Scope, ...]:
    if word == r1.ALL:
        return (Scope.LOCAL, Scope.FOREIGN)
    if word in (r1.LOCAL, r1.FOREIGN):
        return (Scope(word),)
    return ()


def mirror(word: str) -> str:
    """The same set of groups, named from the other node."""
    return {r1.LOCAL: r1.FOREIGN, r1.FOREIGN: r1.LOCAL}.get(word, word)


class Handshake(enum.Enum):
    NONE = "none"
    ASKED = "asked"  # we asked info=me, waiting for the peer's info=other
    GIVING = "giving"  # the peer agreed: we stop the groups, then say done
    TAKING = "taking"  # the peer gives: we take once it released, then say done


@dataclass
class HeartbeatPeer:
    name: str
    hold: str | None = None  # its last rsc_hold; None until it told us
    order: tuple[int, int] = (0, 0)  # (generation, seq) of the t=resource that said it
    # It said isstable=1 once since its start: its start-up exchange with us is over.
    started_up: bool = False
    leaving: bool = False
    moves: dict[Scope, Move] = field(default_factory=dict)
    handshake: Handshake = Handshake.NONE
    word: str = r1.NONE  # the set in the handshake, relative to us
    since: float = 0.0
    # While it gives, the rsc_hold it announces runs ahead of its release script: kept here
    # until its ask_resources info=done says the groups are really free.
    pending_hold: str | None = None
    ready_to_take: bool = False
    # (generation, seq) of its info=me that opened the handshake where it gives. Its info=done
    # of an earlier handshake, lost and retransmitted late, can arrive after that request; it
    # says nothing about this release, and taking on it would start our copy before Heartbeat
    # stopped its own (and say our done before it reached its DONE state, which it ignores).
    opened: tuple[int, int] = (0, 0)
    # The newest (generation, seq) it sent that we took. Handshake steps are events taken even
    # when they come late, but one older than a message already taken (a retransmission after
    # a loss) belongs to an exchange that is over: its t=starting of long ago must not reset
    # a handshake under way, nor its done of an earlier standby end this one.
    newest: tuple[int, int] = (0, 0)

    def announcement(self, preferred: Mapping[str, str]) -> fields.Announcement | None:
        if self.hold is None:
            return None
        return fields.Announcement(
            ready=True,
            leaving=self.leaving,
            holds=r1.held_by(self.name, self.hold, preferred),
            moves=tuple(self.moves.values()),
        )

    def gives(self, word: str, at_ms: int) -> None:
        """It gives away ``word`` (its own words): placement must prefer us for those."""
        for scope in scopes_of(word):
            self.moves[scope] = Move(scope, Direction.GIVE, at_ms)

    # -------------------------------------------------------------- its messages

    def on_message(
        self, msg: Message, now: float, at_ms: int, order: tuple[int, int] = (0, 0)
    ) -> list[tuple[str, Fields]]:
        """Take one of its messages (``order``: its generation and sequence number); returns
        the messages to send in reply."""
        stale = (0, 0) < order < self.newest
        self.newest = max(self.newest, order)
        if msg.type == r1.STARTING and stale:
            log.info("%s: its t=starting (seq %d) came late, after newer news", self.name, order[1])
        elif msg.type == r1.STARTING:
            self.hold, self.leaving, self.moves = None, False, {}
            self.handshake, self.started_up = Handshake.NONE, False
        elif msg.type == r1.RESOURCE:
            self.started_up = self.started_up or msg.get("isstable") == "1"
            if msg.get("info") == "shutdown":
                # Heartbeat says "none" before it releases anything (then shutdone): keep
                # what it held until its shutdone ends it, or we would start a second copy.
                self.leaving = True
            elif self.handshake is Handshake.TAKING and not self.ready_to_take:
                self.pending_hold = msg.get("rsc_hold") or r1.NONE
            else:
                # After its done, what it says is true at once: its t=resource sent before
                # that done (info=standby, rsc_hold=none) may come after it, retransmitted.
                self.hold = msg.get("rsc_hold") or r1.NONE
        elif msg.type == TAKEOVER:
            # Its hb_takeover: Heartbeat's rc.d script makes the other node run hb_standby
            # with the set mirrored; ``standby_requested`` tells the manager (see there).
            pass
        elif msg.type == ASK:
            return self._on_ask(msg, now, at_ms, order)
        return []

    def _on_ask(
        self, msg: Message, now: float, at_ms: int, order: tuple[int, int]
    ) -> list[tuple[str, Fields]]:
        word, info = msg.get("rsc_hold") or r1.NONE, msg.get("info")
        if info == "me":
            # It goes standby for ``word`` (its words): agree, and take once it released.
            self.gives(word, at_ms)
            self.handshake, self.word, self.since = Handshake.TAKING, mirror(word), now
            self.ready_to_take, self.pending_hold, self.opened = False, None, order
            log.info("%s goes standby for its %s groups: taking them", self.name, word)
            return [(ASK, [("rsc_hold", word), ("info", "other")])]
        if info == "other" and self.handshake is Handshake.ASKED:
            log.info("%s agreed to take our %s groups", self.name, self.word)
            self.handshake = Handshake.GIVING
        elif (
            info == "done" and self.handshake is Handshake.TAKING and (0, 0) < order <= self.opened
        ):
            log.info(
                "%s: ignoring its ask_resources done (seq %d) of a standby before this one",
                self.name,
                order[1],
            )
        elif info == "done" and self.handshake is Handshake.TAKING:
            # Its release is complete: what it said it holds is now true; we may start.
            self.ready_to_take = True
            if self.pending_hold is not None:
                self.hold, self.pending_hold = self.pending_hold, None
        return []

    # -------------------------------------------------------------- our side

    def ask(self, word: str, now: float) -> list[tuple[str, Fields]]:
        """We want to hand ``word`` (our words) to it: once per handshake, and again every
        ``ASK_RETRY_S`` while it has not agreed. Still ASKED meanwhile, so that its answer to
        an earlier request, retransmitted late, still counts."""
        if self.handshake is Handshake.ASKED and now - self.since >= ASK_RETRY_S:
            log.info("%s has not agreed to take our %s groups yet: asking again", self.name, word)
        elif self.handshake is not Handshake.NONE:
            return []
        else:
            log.info("asking %s to take our %s groups", self.name, word)
        self.handshake, self.word, self.since = Handshake.ASKED, word, now
        return [(ASK, [("rsc_hold", word), ("info", "me")])]

    def may_stop(self) -> bool:
        return self.handshake is Handshake.GIVING

    def settled(self) -> list[tuple[str, Fields]]:
        """Our side of the handshake is finished: say done (once) and close it."""
        if self.handshake is Handshake.TAKING and not self.ready_to_take:
            return []  # it has not said done yet: whatever we hold now was ours before
        if self.handshake in (Handshake.GIVING, Handshake.TAKING):
            self.handshake = Handshake.NONE
            return [(ASK, [("rsc_hold", self.word), ("info", "done")])]
        return []

    def expire(self, now: float) -> None:
        if self.handshake is Handshake.ASKED and now - self.since > ASK_TIMEOUT_S:
            log.warning("%s did not answer our standby request: cancelled", self.name)
            self.handshake = Handshake.NONE
