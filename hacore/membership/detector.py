"""The membership state machine: who is alive, over which links, and what to send when.

Sans-I/O: it never touches a socket or a clock. The caller passes ``now`` (monotonic seconds, for
every timer) and ``wall`` (seconds since the epoch, only for the ``ts`` field and its freshness
check), hands it authenticated messages with ``receive`` and calls ``tick`` at ``next_wakeup()``.
Everything it wants done comes back as events, ``Send`` among them, so a test can wire many nodes
together in memory under a fake clock.

Rules kept from Heartbeat 3.0.6: states init → up → active, a node with no packet for deadtime is
dead (initdead until it was first heard), a status later than warntime is a "late heartbeat",
a lower generation is a replay and a higher one a restart, sequence numbers are per sender.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from hacore.config.model import Timers
from hacore.membership import rexmit
from hacore.membership.events import (
    CommUp,
    DatagramRejected,
    Delivered,
    Event,
    LateHeartbeat,
    LinkState,
    LinkStateChanged,
    NodeRestarted,
    NodeReturned,
    NodeState,
    NodeStateChanged,
    Send,
)
from hacore.membership.replay import SenderWindow, SeqVerdict, is_fresh
from hacore.membership.wire import Message, Verdict

STATUS = "status"
SHUTDONE = "shutdone"
REQNODES, REPNODES = "reqnodes", "repnodes"
# Heartbeat's hopfudge default: the ttl field is hopfudge + node count (only serial rings use it).
HOPFUDGE = 1


class _InvalidError(Exception):
    def __init__(self, verdict: Verdict, detail: str) -> None:
        super().__init__(detail)
        self.verdict = verdict
        self.detail = detail


@dataclass
class _Peer:
    name: str
    state: NodeState = NodeState.INIT
    window: SenderWindow | None = None
    uuid: bytes | None = None
    last_heard: float | None = None
    last_status: float | None = None
    dt_ms: int | None = None
    # Until a node is first heard it is timed against initdead from our start.
    heard: bool = False
    # The newest sequence number and the links it came over: a copy on another link shortly
    # after is the redundancy working; a copy on the same link is a replay (or a looping switch).
    newest_seq: int = 0
    newest_links: set[str] = field(default_factory=set)
    # When ``state`` last changed (monotonic); lets status say how long ago a node died.
    since: float | None = None
    link_heard: dict[str, float] = field(default_factory=dict)
    link_state: dict[str, LinkState] = field(default_factory=dict)
    late_heartbeats: int = 0  # LateHeartbeat events so far (the metrics endpoint counts them)
    # The generation that said t=shutdone: Heartbeat keeps sending statuses (st=active) for a
    # moment after it, until it exits or restarts with a new generation; they are not a return.
    goodbye_generation: int | None = None


@dataclass(frozen=True)
class LinkView:
    name: str
    state: LinkState
    last_heard_ms: int | None


@dataclass(frozen=True)
class NodeView:
    name: str
    state: NodeState
    generation: int | None
    last_heard_ms: int | None  # age in milliseconds, None if never heard
    deadtime_ms: int | None  # the node's own deadtime, from its ``dt`` field
    state_age_ms: int | None  # how long the node has been in ``state``; None if never changed
    links: tuple[LinkView, ...]
    late_heartbeats: int = 0  # statuses that came later than warntime, since we started


@dataclass(frozen=True)
class MembershipView:
    local: str
    local_state: NodeState
    generation: int
    seq: int
    nodes: tuple[NodeView, ...]
    rejected: dict[str, int]
    loopback: int


def _hex(msg: Message, name: str, *, required: bool = True) -> int | None:
    raw = msg.get(name)
    if raw is None:
        if required:
            raise _InvalidError(Verdict.MALFORMED, f"no '{name}' field")
        return None
    # Heartbeat writes these as C longs (%lx): a longer number is no packet of a real node, and
    # would overflow the float arithmetic of the freshness check and the log's formatting.
    if len(raw) > 16:
        raise _InvalidError(Verdict.MALFORMED, f"field '{name}' is longer than 64 bits")
    try:
        return int(raw, 16)
    except ValueError:
        raise _InvalidError(Verdict.MALFORMED, f"field '{name}' is not hexadecimal") from None


class Membership:
    """One node's view of the cluster. Not thread-safe; lives on the event loop."""

    def __init__(
        self,
        *,
        local: str,
        nodes: Sequence[str],
        links: Sequence[str],
        timers: Timers,
        generation: int,
        uuid: bytes,
        now: float,
        rng: random.Random | None = None,
    ) -> None:
        self.local = local
        self.timers = timers
        self.generation = generation
        self.uuid = uuid
        self.links = tuple(links)
        self.state = NodeState.UP
        self.seq = 0
        self.started = now
        # Kept as a string because the daemon refreshes it from /proc/loadavg off the hot path.
        self.load_average = "n/a"
        # Fields other layers add to every status (the resource manager's announcement).
        self.status_fields: Callable[[], list[tuple[str, str | bytes]]] = list
        self.rejected: Counter[Verdict] = Counter()
        self.loopback = 0
        self._ttl = str(HOPFUDGE + len(nodes))
        self._peers = {n: _Peer(n) for n in nodes if n != local}
        self._next_status = now
        self._history = rexmit.SentHistory()
        self._gaps = rexmit.GapRequests(rng)
        # Set by ``set_timers``: when the deadtime last changed, and what it was before.
        self._retimed_at: float | None = None
        self._old_deadtime_s = 0.0

    # ------------------------------------------------------------------ outbound

    def message(
        self, type_: str, fields: Iterable[tuple[str, str | bytes]], wall: float
    ) -> Message:
        """A message of ``type_`` with Heartbeat's standard fields appended in its order
        (src, srcuuid, seq, hg, ts, ld, ttl). ``NS_`` types carry no sequence number."""
        out: list[tuple[str, str | bytes]] = [("t", type_), *fields]
        out += [("src", self.local), ("srcuuid", self.uuid)]
        sequenced = not type_.startswith("NS_")
        if sequenced:
            self.seq += 1
            out.append(("seq", f"{self.seq:x}"))
        out += [
            ("hg", f"{self.generation:x}"),
            ("ts", f"{int(wall):x}"),
            ("ld", self.load_average),
            ("ttl", self._ttl),
        ]
        message = Message(tuple(out))
        if sequenced:
            self._history.add(self.seq, message)
        return message

    def status(self, wall: float) -> Message:
        # No 'protocol' field: a Heartbeat peer then expects no ACKs and no reqnodes (ref. 3.7).
        return self.message(
            STATUS,
            [
                ("st", self.state.value),
                ("dt", f"{self.timers.deadtime_ms:x}"),
                *self.status_fields(),
            ],
            wall,
        )

    def shutdown(self, wall: float) -> list[Event]:
        """Our last words when stopping: peers mark us dead at once instead of after deadtime."""
        self.state = NodeState.DEAD
        return [Send(self.message(SHUTDONE, [("st", NodeState.DEAD.value)], wall))]

    # ------------------------------------------------------------------ inbound

    def reject(self, verdict: Verdict, link: str, detail: str) -> DatagramRejected:
        """Count a datagram refused before or by membership (bad auth, malformed, replay ...)."""
        self.rejected[verdict] += 1
        return DatagramRejected(verdict, link, detail)

    def receive(self, msg: Message, link: str, now: float, wall: float) -> list[Event]:
        """Take one authenticated message that arrived on ``link``."""
        try:
            return self._receive(msg, link, now, wall)
        except _InvalidError as bad:
            return [self.reject(bad.verdict, link, bad.detail)]

    def _receive(self, msg: Message, link: str, now: float, wall: float) -> list[Event]:
        src = msg.get("src")
        type_ = msg.type
        if not src or not type_:
            raise _InvalidError(Verdict.MALFORMED, "no 'src' or 't' field")
        if src == self.local:
            # Our own broadcast looping back: not an attack, not news.
            self.loopback += 1
            return []
        peer = self._peers.get(src)
        if peer is None:
            raise _InvalidError(Verdict.NOT_MEMBER, f"from '{src}', which is not a configured node")
        generation = _hex(msg, "hg")
        ts = _hex(msg, "ts")
        assert generation is not None and ts is not None
        if ts == 0:
            raise _InvalidError(Verdict.MALFORMED, "timestamp 0")
        if not is_fresh(ts, wall, self.timers.freshness_ms / 1000):
            raise _InvalidError(
                Verdict.STALE_TIME, f"timestamp {ts - int(wall):+d} s from our clock"
            )
        seq = _hex(msg, "seq", required=not type_.startswith("NS_"))

        events: list[Event] = []
        restarted = False
        if seq is not None:
            if peer.window is None:
                peer.window = SenderWindow(generation)
            old_generation, old_highest = peer.window.generation, peer.window.highest
            verdict = peer.window.check(generation, seq)
            if verdict is SeqVerdict.STALE_GENERATION:
                raise _InvalidError(
                    Verdict.STALE_GENERATION,
                    f"generation {generation} of '{src}' is older than {old_generation}",
                )
            if verdict is SeqVerdict.TOO_OLD:
                raise _InvalidError(
                    Verdict.REPLAY, f"sequence {seq} of '{src}' is below the window"
                )
            if verdict is SeqVerdict.DUPLICATE:
                # The same datagram over a second link proves that link works, but only if it
                # comes close behind the first copy; later, or on the same link, it is a replay,
                # and a replay must not keep a dead node or link alive.
                if (
                    seq == peer.newest_seq
                    and link not in peer.newest_links
                    and peer.last_heard is not None
                    and now - peer.last_heard <= self._keepalive_s
                ):
                    peer.newest_links.add(link)
                    events += self._hear_link(peer, link, now)
                    return events
                raise _InvalidError(Verdict.REPLAY, f"sequence {seq} of '{src}' was already seen")
            if seq > peer.newest_seq or verdict is SeqVerdict.RESTART:
                peer.newest_seq, peer.newest_links = seq, {link}
            if verdict is SeqVerdict.RESTART:
                restarted = True
                events.append(NodeRestarted(src, old_generation, generation))
            # A gap opens only when a number is skipped (cheap to see); while asking, the
            # window itself is walked to find what is still missing.
            if verdict is SeqVerdict.NEW and old_highest and seq > old_highest + 1:
                self._gaps.gap_seen(src, now)
        elif peer.window is not None and generation < peer.window.generation:
            raise _InvalidError(Verdict.STALE_GENERATION, f"old generation {generation} of '{src}'")

        was_dead = peer.state is NodeState.DEAD
        peer.last_heard = now
        uuid = msg.get_bytes("srcuuid")
        if uuid is not None:
            peer.uuid = uuid
        events += self._hear_link(peer, link, now)
        first = not peer.heard
        peer.heard = True

        if type_ == rexmit.REXMIT:
            if msg.get("dest") == self.local:
                events += self._retransmit(src, msg, now, wall)
        elif type_ == REQNODES:
            # A Heartbeat peer whose flow control is on asks who is in the cluster, every
            # second until answered; without an answer it never reaches comm-up.
            if msg.get("dest") == self.local:
                nodelist = "".join(f"{n} " for n in (self.local, *self._peers))
                reply = [("dest", src), ("nodelist", nodelist), ("delnodelist", "")]
                events.append(Send(self.message(REPNODES, reply, wall)))
        elif type_ == STATUS and seq is not None and peer.window and seq < peer.window.highest:
            pass  # a late or retransmitted status is older news than the one we acted on
        elif type_ == STATUS and was_dead and generation == peer.goodbye_generation:
            pass  # its last breaths after t=shutdone: it is leaving, not back
        elif type_ == STATUS:
            events += self._status(peer, msg, now, was_dead=was_dead, restarted=restarted)
            events.append(Delivered(src, msg))
        elif type_ == SHUTDONE:
            peer.goodbye_generation = generation
            events += self._set_state(peer, NodeState.DEAD, "shutdown notice", now)
            events.append(Delivered(src, msg))
        else:
            dest = msg.get("dest")
            if dest is None or dest == self.local:
                events.append(Delivered(src, msg))
        if first:
            events += self._check_comm_up(now)
        return events

    def _retransmit(self, src: str, msg: Message, now: float, wall: float) -> list[Event]:
        try:
            first, last = int(msg.get("firstseq") or ""), int(msg.get("lastseq") or "")
        except ValueError:
            raise _InvalidError(Verdict.MALFORMED, "NS_rexmit without a sequence range") from None
        resend, gone = self._history.answer(first, last, now)
        events: list[Event] = [Send(m) for m in resend]
        events += [Send(self.message(rexmit.NAK, rexmit.nak_fields(src, s), wall)) for s in gone]
        return events

    def _ask_for_gaps(self, now: float, wall: float) -> list[Event]:
        events: list[Event] = []
        for name in self._gaps.peers:
            peer = self._peers[name]
            missing = peer.window.missing(limit=rexmit.MAX_ASKED) if peer.window else []
            if not missing or peer.state is NodeState.DEAD:
                self._gaps.forget(name)
                continue
            if self._gaps.due(name, now):
                events += [
                    Send(self.message(rexmit.REXMIT, rexmit.request_fields(name, seq), wall))
                    for seq in missing
                ]
        return events

    def _status(
        self, peer: _Peer, msg: Message, now: float, *, was_dead: bool, restarted: bool
    ) -> list[Event]:
        events: list[Event] = []
        if peer.last_status is not None and not was_dead:
            interval_ms = round((now - peer.last_status) * 1000)
            if interval_ms > self.timers.warntime_ms:
                peer.late_heartbeats += 1
                events.append(LateHeartbeat(peer.name, interval_ms))
        peer.last_status = now
        dt = _hex(msg, "dt", required=False)
        if dt:
            peer.dt_ms = dt
        try:
            new = NodeState(msg.get("st") or "")
        except ValueError:
            raise _InvalidError(Verdict.MALFORMED, f"unknown status {msg.get('st')!r}") from None
        if was_dead and new is not NodeState.DEAD and not restarted:
            events.append(NodeReturned(peer.name))
        events += self._set_state(peer, new, "status", now)
        return events

    def _hear_link(self, peer: _Peer, link: str, now: float) -> list[Event]:
        peer.link_heard[link] = now
        if peer.link_state.get(link) is LinkState.UP:
            return []
        peer.link_state[link] = LinkState.UP
        return [LinkStateChanged(peer.name, link, LinkState.UP)]

    def _set_state(self, peer: _Peer, new: NodeState, reason: str, now: float) -> list[Event]:
        if peer.state is new:
            return []
        old, peer.state, peer.since = peer.state, new, now
        return [NodeStateChanged(peer.name, old, new, reason)]

    # ------------------------------------------------------------------ timers

    def set_timers(self, timers: Timers, now: float) -> None:
        """Apply new timers to a running node (a configuration reload).

        A shorter deadtime must not kill a node that is merely between two keepalives: whatever
        was heard before the change is timed by whichever rule ends first, the old deadtime from
        when it was heard or the new one from the change, so nobody is declared dead earlier
        than the old timers would have, nor later than the new ones from now. A shorter
        keepalive takes effect at once."""
        self._old_deadtime_s = self.timers.deadtime_ms / 1000
        self._retimed_at = now
        self.timers = timers
        self._next_status = min(self._next_status, now + self._keepalive_s)

    def _dead_after(self, heard: float) -> float:
        """When something last heard at ``heard`` counts as dead."""
        deadtime_s = self.timers.deadtime_ms / 1000
        at = heard + deadtime_s
        if self._retimed_at is not None and heard < self._retimed_at:
            at = max(at, min(heard + self._old_deadtime_s, self._retimed_at + deadtime_s))
        return at

    @property
    def _keepalive_s(self) -> float:
        return self.timers.keepalive_ms / 1000

    def _deadline(self, peer: _Peer) -> float | None:
        if peer.state is NodeState.DEAD:
            return None
        if peer.last_heard is None:
            return self.started + self.timers.initdead_ms / 1000
        return self._dead_after(peer.last_heard)

    def next_wakeup(self) -> float:
        """The monotonic time at which ``tick`` has something to do."""
        times = [self._next_status]
        gaps = self._gaps.next_due()
        if gaps is not None:
            times.append(gaps)
        for peer in self._peers.values():
            deadline = self._deadline(peer)
            if deadline is not None:
                times.append(deadline)
            for link, heard in peer.link_heard.items():
                if peer.link_state.get(link) is LinkState.UP:
                    times.append(self._dead_after(heard))
        return min(times)

    def tick(self, now: float, wall: float) -> list[Event]:
        """Declare the silent dead and send a status if one is due."""
        events: list[Event] = []
        for peer in self._peers.values():
            for link, heard in peer.link_heard.items():
                if peer.link_state.get(link) is LinkState.UP and now >= self._dead_after(heard):
                    peer.link_state[link] = LinkState.DEAD
                    events.append(LinkStateChanged(peer.name, link, LinkState.DEAD))
            deadline = self._deadline(peer)
            if deadline is not None and now >= deadline:
                reason = "no packet for deadtime" if peer.heard else "never heard within initdead"
                events += self._set_state(peer, NodeState.DEAD, reason, now)
        events += self._check_comm_up(now)
        events += self._ask_for_gaps(now, wall)
        if now >= self._next_status:
            events.append(Send(self.status(wall)))
            self._next_status += self._keepalive_s
            if self._next_status <= now:  # we fell behind (suspended?): do not send a burst
                self._next_status = now + self._keepalive_s
        return events

    def _check_comm_up(self, now: float) -> list[Event]:
        if self.state is not NodeState.UP:
            return []
        if any(not p.heard and p.state is not NodeState.DEAD for p in self._peers.values()):
            return []
        self.state = NodeState.ACTIVE
        # Tell the peers at once rather than at the next keepalive.
        self._next_status = now
        return [NodeStateChanged(self.local, NodeState.UP, NodeState.ACTIVE, "comm up"), CommUp()]

    # ------------------------------------------------------------------ queries

    def node_state(self, node: str) -> NodeState:
        return self.state if node == self.local else self._peers[node].state

    def view(self, now: float) -> MembershipView:
        def age(t: float | None) -> int | None:
            return None if t is None else round((now - t) * 1000)

        nodes = tuple(
            NodeView(
                name=p.name,
                state=p.state,
                generation=p.window.generation if p.window else None,
                last_heard_ms=age(p.last_heard),
                deadtime_ms=p.dt_ms,
                state_age_ms=age(p.since),
                links=tuple(
                    LinkView(
                        link, p.link_state.get(link, LinkState.DEAD), age(p.link_heard.get(link))
                    )
                    for link in sorted(set(self.links) | set(p.link_heard))
                ),
                late_heartbeats=p.late_heartbeats,
            )
            for p in self._peers.values()
        )
        return MembershipView(
            local=self.local,
            local_state=self.state,
            generation=self.generation,
            seq=self.seq,
            nodes=nodes,
            rejected={v.value: n for v, n in sorted(self.rejected.items())},
            loopback=self.loopback,
        )
