"""The resource manager: what this node holds, what it should hold, and getting from one to the
other without ever running a group on two nodes during a planned move.

It lives on the daemon's event loop but never blocks it: agent actions run in the Runner's
threads and are awaited as tasks. Its inputs are membership events and the announcements that
every peer's keepalives carry (``fields``); its output is group operations and, whenever our
announcement changes, a Heartbeat ``t=resource`` message carrying it (``r1``), sent at once so
a release reaches the taker in one datagram's time instead of at the next keepalive.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hacore.agent import OCFResult
from hacore.config.model import ClusterConfig
from hacore.events import ResourceAction, ResourceEvent
from hacore.membership.events import NodeState
from hacore.membership.wire import Message
from hacore.resources import fields, r1
from hacore.resources.binding import BoundGroup
from hacore.resources.group import GroupRuntime, GroupState, Outcome
from hacore.resources.heartbeat_peer import (
    ASK,
    ASK_RETRY_S,
    STARTING_RETRY_S,
    TAKEOVER,
    Handshake,
    HeartbeatPeer,
    mirror,
)
from hacore.resources.placement import Direction, GroupSpec, Move, NodeView, Plan, Scope, plan
from hacore.resources.runner import Runner
from hacore.resources.stats import ActionStats

log = logging.getLogger(__name__)

# Restarts in place before a failing group moves away (Pacemaker's migration-threshold).
RESTART_THRESHOLD = 3


@dataclass
class _Peer:
    state: NodeState = NodeState.INIT
    announcement: fields.Announcement | None = None
    order: tuple[int, int] = (0, 0)  # (generation, seq) of the announcement we hold
    unready_since: float | None = None
    heartbeat: HeartbeatPeer | None = None  # set once it shows it is a Heartbeat node
    # What it held when it left in maintenance mode: still its own (unmanaged) until it is back.
    kept: frozenset[str] = frozenset()


def _order(msg: Message) -> tuple[int, int]:
    try:
        return int(msg.get("hg") or "0", 16), int(msg.get("seq") or "0", 16)
    except ValueError:
        return (0, 0)


class ResourceManager:
    def __init__(
        self,
        config: ClusterConfig,
        groups: Iterable[BoundGroup],
        *,
        moves_file: Path,
        send: Callable[[str, list[tuple[str, str | bytes]]], None],
        runner: Runner | None = None,
        on_event: Callable[[ResourceEvent], None] | None = None,
        maintenance_file: Path | None = None,
    ) -> None:
        groups = tuple(groups)
        self.config = config
        self.local = config.local_node
        self.runner = runner or Runner()
        self._on_event = on_event
        self.actions = ActionStats()
        # Groups this node took: (group, FAILOVER or TAKEOVER) -> how often, since start.
        self.taken: Counter[tuple[str, ResourceAction]] = Counter()
        self.groups = {
            g.key: GroupRuntime(g, self.runner, self._resource_done, self.actions) for g in groups
        }
        self.specs = [GroupSpec(g.key, g.group.preferred_node) for g in groups]
        self.peers = {n: _Peer() for n in config.peers}
        self.moves_file = moves_file
        self.moves: dict[Scope, Move] = self._load_moves()
        self.maintenance_file = maintenance_file
        # Maintenance mode: no start, stop nor monitor here; what was held when it began stays
        # held (announced) across a daemon restart, whatever runs meanwhile.
        self.maintenance, self._maintenance_holds = self._load_maintenance()
        self.failed: set[str] = set()
        self.probed = False
        # False while a connectivity score is expected but not measured yet: a node that has
        # not pinged yet must not look like one that reaches nothing (nor like one that does).
        self.score_known = True
        self.active = False
        self.leaving = False
        self._send = send
        self._preferred = {s.key: s.preferred for s in self.specs}
        self._ops: dict[str, asyncio.Task[None]] = {}
        self._monitors: dict[str, asyncio.Task[None]] = {}
        self._announced: fields.Announcement | None = None
        # Whether what we last sent said isstable=1: Heartbeat refuses standby requests (and
        # cl_status says "transition") until it hears we are stable again.
        self._announced_stable: bool | None = None
        self._starting_sent = 0.0  # when we last sent t=starting (monotonic)
        self._desired: dict[str, str | None] = {}
        # The last other node seen holding each group: says whether a start is a failover.
        self._last_holder: dict[str, str] = {}
        # Groups the start-up probe found partly running: held (something of them runs here)
        # but not serving; the plan completes them here, once no other node announces them,
        # or stops them. Not monitored meanwhile: a monitor's restart in place of the missing
        # part would not wait for the node that may serve it to release it.
        self._incomplete: set[str] = set()
        # Groups we hold that another node announced holding too (a conflict: after a
        # partition, a frozen daemon, a start-up that found the group running). Whichever keeps
        # it announces it again once the other lets go: clients may have the other's MAC.
        self._contested: set[str] = set()
        self.score = 0
        # Connectivity scores as placement uses them: a change counts once no node's score has
        # changed for the settle time. Nodes measure on their own schedules; when a ping node
        # vanishes for all of them one drops first, and acting on each change as it comes
        # would move groups to a peer for the moment it takes that peer to notice too.
        self._scores: dict[str, int] = {}
        self._raw_scores: dict[str, int] = {}
        self._scores_changed = 0.0
        self._score_timer: asyncio.TimerHandle | None = None
        # Long enough for every node to have measured once more (the ping plugin measures
        # every deadping/2 at most), short enough that a real loss of connectivity moves soon.
        self._score_settle_s = max(1.0, min(config.timers.deadping_ms / 1000, 5.0))

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Probe every group (what survived a daemon restart is ours), then take part."""
        if self.maintenance:
            # Not even probes: what we held when maintenance began is ours, unmanaged.
            for key in self._maintenance_holds & self.groups.keys():
                self.groups[key].state = GroupState.STARTED
            log.warning("maintenance mode: holding %s unmanaged", self._held_words())
            self.probed = True
            self._changed()
            return
        await asyncio.gather(*(g.probe() for g in self.groups.values()))
        for group in self.groups.values():
            self._probed(group)
        self.probed = True
        self._changed()

    def _probed(self, group: GroupRuntime) -> None:
        """After a start-up probe: monitor what runs, note what runs only in part."""
        if group.incomplete:
            missing = ", ".join(r.bound.name for r in group.resources if r.state == "stopped")
            log.warning("group %s runs only in part here (%s stopped)", group.key, missing)
            self._incomplete.add(group.key)
        elif group.state is GroupState.STARTED:
            self._start_monitor(group)

    async def shutdown(self, timeout_s: float) -> None:
        """Hand every group over: announce that we leave, stop everything, announce the
        release; returns when nothing runs here any more (or after ``timeout_s``)."""
        if self.maintenance:
            log.warning("maintenance mode: leaving %s running", self._held_words())
            try:
                self._write_maintenance()  # what we hold now is what we hold after a restart
            except OSError as err:
                log.error("%s: cannot save (%s)", self.maintenance_file, err)
            for task in self._monitors.values():
                task.cancel()
            self.runner.close()
            return
        self.leaving = True
        self._changed()
        deadline = time.monotonic() + timeout_s
        while any(g.holds and g.state is not GroupState.FAILED for g in self.groups.values()):
            if time.monotonic() > deadline:
                log.error("shutdown: groups still held after %g s", timeout_s)
                break
            self.replan()
            pending = [t for t in self._ops.values() if not t.done()]
            if pending:
                await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()))
            else:
                await asyncio.sleep(0.01)  # an operation is about to be launched
        for task in self._monitors.values():
            task.cancel()
        self.runner.close()

    # ------------------------------------------------------------------ inputs

    def on_comm_up(self) -> None:
        self.active = True
        # Heartbeat's "I am starting, tell me what you hold"; peers answer with t=resource.
        self._send(r1.STARTING, self.status_fields())
        self._starting_sent = time.monotonic()
        self.replan()

    def _nudge(self, hb: HeartbeatPeer) -> None:
        """Ask an unsettled Heartbeat peer again (``STARTING_RETRY_S``); its keepalives tick."""
        now = time.monotonic()
        if self.active and not hb.started_up and now - self._starting_sent >= STARTING_RETRY_S:
            self._starting_sent = now
            self._send(r1.STARTING, self.status_fields())

    def on_message(self, node: str, msg: Message) -> None:
        """A message of the exchange (status, resource, starting, ask_resources, hb_takeover)."""
        if msg.type == r1.STARTING:
            self._send_resource(full=True)
        self.on_status(node, msg)

    def on_node_state(self, node: str, state: NodeState, reason: str = "") -> None:
        peer = self.peers.get(node)
        if peer is None:
            return
        peer.state = state
        if state is NodeState.DEAD:
            # A node that said goodbye in maintenance mode left its resources running on
            # purpose (a daemon restart or upgrade): they stay its own until it is back. A node
            # that fell silent is dead as usual and its groups fail over.
            a = peer.announcement
            planned = reason == "shutdown notice" and a is not None and a.maintenance
            peer.kept = a.holds if planned and a is not None else frozenset()
            # A dead node holds nothing any more (as in Heartbeat without STONITH).
            peer.announcement, peer.order, peer.unready_since = None, (0, 0), None
            peer.heartbeat = None
            self._scores.pop(node, None)
            self._raw_scores.pop(node, None)
        self.replan()

    def on_status(self, node: str, msg: Message) -> None:
        """Take the announcement a peer's message carries, unless a newer one came first."""
        peer = self.peers.get(node)
        if peer is None:
            return
        order = _order(msg)
        announcement = fields.decode(msg)
        if announcement is None:
            # A Heartbeat peer. Its handshake steps are events, each taken even when it comes
            # late (retransmitted after a loss, behind newer statuses); only its t=resource
            # messages are state, where an older one must not undo a newer one.
            hb = peer.heartbeat = peer.heartbeat or HeartbeatPeer(node)
            self._nudge(hb)
            if msg.type == r1.RESOURCE:
                if order <= hb.order:
                    return
                hb.order = order
            announcement = self._from_heartbeat(node, peer, msg)
            if msg.type in (ASK, TAKEOVER):
                peer.announcement = announcement
                self.replan()  # a handshake step: what we may stop or start has changed
                return
            if msg.type == r1.RESOURCE and msg.get("rtype") == "full":
                # Its answer to our t=starting: Heartbeat waits for our own stable
                # t=resource before it counts us in (and before any standby).
                self._send_resource()
        elif order <= peer.order:
            return  # an older status overtaken by a newer one: keep the newer view
        elif msg.type in (ASK, TAKEOVER):
            peer.order = order
            return  # hacore peers move groups by their announcements alone
        else:
            peer.order = order
        if announcement != peer.announcement:
            peer.announcement = announcement
            peer.kept = frozenset()
            for key in announcement.holds if announcement else ():
                self._last_holder[key] = node
            self.replan()
        elif peer.unready_since is not None:
            self.replan()  # we wait for this peer: its keepalives tick the wait's bound

    @property
    def ready(self) -> bool:
        """Probed, and scored where scores count: only then may peers plan with us."""
        return self.probed and self.score_known

    def _from_heartbeat(self, node: str, peer: _Peer, msg: Message) -> fields.Announcement | None:
        """A Heartbeat peer's message: its R1 state, and our replies to its handshake."""
        hb = peer.heartbeat = peer.heartbeat or HeartbeatPeer(node)
        for type_, body in hb.on_message(
            msg, time.monotonic(), int(time.time() * 1000), _order(msg)
        ):
            self._send(type_, body + self.status_fields())
        if msg.type == TAKEOVER:
            # hb_takeover there = hb_standby here, the set seen from our side.
            word = mirror(msg.get("rsc_hold") or r1.ALL)
            log.info("%s takes over its %s: going standby for those groups", node, word)
            asyncio.get_running_loop().create_task(self.move(Direction.GIVE, scopes(word)))
        return hb.announcement(self._preferred)

    def set_score(self, score: int) -> None:
        """This node's connectivity score (the ping plugin's): announced, used in placement."""
        first = not self.score_known
        self.score_known = True
        if score != self.score or first:
            log.info("connectivity score now %d (was %d)", score, self.score)
            self.score = score
            self._changed()

    # ------------------------------------------------------------------ views

    def announcement(self) -> fields.Announcement:
        return fields.Announcement(
            ready=self.ready,
            leaving=self.leaving,
            holds=frozenset(k for k, g in self.groups.items() if g.holds),
            failed=frozenset(self.failed),
            blocked=frozenset(k for k, g in self.groups.items() if g.state is GroupState.BLOCKED),
            moves=tuple(self.moves.values()),
            score=self.score,
            maintenance=self.maintenance,
        )

    def status_fields(self) -> list[tuple[str, str | bytes]]:
        return fields.encode(self.announcement())

    def _settled_scores(self, raw: dict[str, int], now: float) -> dict[str, int]:
        for node, score in raw.items():
            self._scores.setdefault(node, score)  # a node's first figure counts at once
            if self._raw_scores.get(node, score) != score:
                self._scores_changed = now
        self._raw_scores = dict(raw)
        if raw != {n: self._scores[n] for n in raw}:
            quiet_for = now - self._scores_changed
            if quiet_for >= self._score_settle_s:
                self._scores.update(raw)
            elif self._score_timer is None or self._score_timer.when() <= now:
                wake = self._score_settle_s - quiet_for + 0.001
                self._score_timer = asyncio.get_running_loop().call_later(wake, self.replan)
        return {n: self._scores[n] for n in raw}

    def _views(self, now: float) -> list[NodeView] | None:
        """Every node's view in ``node`` order, or None while a present peer is still
        probing (acting before it tells us what it holds could start a second copy)."""
        views: list[NodeView] = []
        for name in self.config.nodes:
            if name == self.local:
                own = self.announcement()
                live = self.active and self.ready and not self.leaving and not self.maintenance
                views.append(
                    NodeView(
                        name, live, True, own.holds, own.failed, own.blocked, own.moves, own.score
                    )
                )
                continue
            peer = self.peers[name]
            a = peer.announcement
            if peer.kept and (peer.state is NodeState.DEAD or a is None):
                views.append(NodeView(name, live=False, present=True, holds=peer.kept))
                continue
            if peer.state is NodeState.DEAD:
                # Dead: it holds nothing (as in Heartbeat without STONITH).
                views.append(NodeView(name, live=False, present=False))
                continue
            if a is None:
                # Heard (comm-up waits for every node not dead) but it has not said what it
                # holds yet: a Heartbeat peer answers our t=starting, and any peer's first
                # datagram may be another message than its status (Heartbeat's t=starting
                # overtakes it). Wait for it, bounded, rather than start a second copy; then
                # count it in, holding nothing, as Heartbeat's own deadlock guard (RQSTDELAY)
                # does: we take what is ours, never what may be its.
                peer.unready_since = peer.unready_since or now
                if now - peer.unready_since < self.config.timers.initdead_ms / 1000:
                    return None
                views.append(NodeView(name, live=peer.state is NodeState.ACTIVE, present=True))
                continue
            if not a.ready or peer.state is not NodeState.ACTIVE:
                # Still probing or not yet through its own comm-up: what it will claim is not
                # known yet, so wait for it (bounded by initdead) rather than take its groups.
                peer.unready_since = peer.unready_since or now
                if now - peer.unready_since < self.config.timers.initdead_ms / 1000:
                    return None
            else:
                peer.unready_since = None
            live = peer.state is NodeState.ACTIVE and a.ready and not a.leaving
            live = live and not a.maintenance
            views.append(NodeView(name, live, True, a.holds, a.failed, a.blocked, a.moves, a.score))
        scores = self._settled_scores({v.name: v.score for v in views if v.present}, now)
        return [dataclasses.replace(v, score=scores.get(v.name, v.score)) for v in views]

    # ------------------------------------------------------------------ decisions

    def replan(self) -> None:
        if self.maintenance:
            return  # unmanaged: what runs here stays as it is
        if self.leaving:
            for key, group in self.groups.items():
                if group.holds and group.state is not GroupState.FAILED:
                    self._launch(key, "stop")
            return
        if not self.ready or not self.active:
            return
        views = self._views(time.monotonic())
        if views is None:
            return
        incomplete = {k for k in self._incomplete if self.groups[k].incomplete}
        todo = plan(self.specs, views, self.local, self.config.auto_failback, incomplete)
        self._desired = dict(todo.desired)
        for key in self._handed_over(todo.stop):
            # A stop that failed is not retried by itself (every plan would retry it at once,
            # in a tight loop): the group stays here, held, until `hactl resource cleanup`.
            if self.groups[key].state is not GroupState.FAILED:
                self._launch(key, "stop")
        for key in todo.start:
            self._launch(key, "start")
        self._reannounce_uncontested(todo)
        self._close_handshakes()

    def _reannounce_uncontested(self, todo: Plan) -> None:
        """Announce again a group we keep once no other node announces it any more. While two
        nodes held it both announced the address, and the other's gratuitous ARP may be the
        one clients heard last: without a new one they keep sending to the node that let go
        until their ARP entry expires. A group we stop or start now needs nothing more."""
        others: set[str] = set()
        for peer in self.peers.values():
            if peer.state is not NodeState.DEAD and peer.announcement is not None:
                others |= peer.announcement.holds
        for key, group in self.groups.items():
            if not group.holds or key in todo.stop or key in todo.start:
                self._contested.discard(key)
            elif key in others:
                self._contested.add(key)
            elif key in self._contested and group.state is GroupState.STARTED:
                running = self._ops.get(key)
                if running is None or running.done():
                    self._contested.discard(key)
                    log.info("group %s: no other node holds it now; announcing it again", key)
                    self._launch(key, "reannounce")

    def _handed_over(self, stops: Iterable[str]) -> list[str]:
        """The stops we may do now. Heartbeat takes only what it is handed: a group going to a
        Heartbeat peer is stopped once that peer agreed (``ask_resources info=other``)."""
        now = time.monotonic()
        allowed: list[str] = []
        asking: dict[str, list[str]] = {}
        for key in stops:
            target = self._desired.get(key)
            hb = self.peers[target].heartbeat if target in self.peers else None
            if hb is None or hb.may_stop():
                allowed.append(key)
            else:
                hb.expire(now)
                asking.setdefault(target or "", []).append(key)
        for target, keys in asking.items():
            hb = self.peers[target].heartbeat
            assert hb is not None
            word = r1.rsc_hold(self.local, keys, self._preferred)
            for type_, body in hb.ask(word, now):
                self._send(type_, body + self.status_fields())
                # Heartbeat ignores a request while either side is in flux, and says nothing:
                # ask again until it agrees (as its own auto_failback retries).
                asyncio.get_running_loop().call_later(ASK_RETRY_S, self.replan)
        return allowed

    def _close_handshakes(self) -> None:
        """Say ``info=done`` to a Heartbeat peer once our side of its handshake is over."""
        if any(g.state in (GroupState.STARTING, GroupState.STOPPING) for g in self.groups.values()):
            return
        for name, peer in self.peers.items():
            hb = peer.heartbeat
            if hb is None or hb.handshake not in (Handshake.GIVING, Handshake.TAKING):
                continue
            mine = {k for k, d in self._desired.items() if d == self.local}
            held = {k for k, g in self.groups.items() if g.holds}
            giving_done = hb.handshake is Handshake.GIVING and not {
                k for k in held if self._desired.get(k) == name
            }
            taking_done = hb.handshake is Handshake.TAKING and mine <= held
            if giving_done or taking_done:
                for type_, body in hb.settled():
                    self._send(type_, body + self.status_fields())

    def _launch(self, key: str, op: str) -> None:
        running = self._ops.get(key)
        if running is not None and not running.done():
            return  # one operation per group at a time; its end triggers a new plan
        self._ops[key] = asyncio.get_running_loop().create_task(self._operate(key, op))

    async def _operate(self, key: str, op: str) -> None:
        try:
            await self._perform(key, op)
        finally:
            # Done before planning again, or the plan could not launch this group's next step.
            self._ops.pop(key, None)
        self._changed()

    async def _perform(self, key: str, op: str) -> None:
        group = self.groups[key]
        if op == "reannounce":
            await group.reannounce()
            return
        if op == "start":
            self._changed()  # "starting" counts as holding: tell the peers before acting
            outcome = await group.start()
            self._incomplete.discard(key)
            if outcome is Outcome.OK:
                self._start_monitor(group)
                self._group_moved(key)
            elif outcome is Outcome.FAILED:
                self.failed.add(key)
        else:
            self._stop_monitor(key)
            outcome = await group.stop()
            self._incomplete.discard(key)
            if outcome is Outcome.OK:
                target = "shutdown" if self.leaving else f"to {self._desired.get(key) or 'nowhere'}"
                self._event(key, None, ResourceAction.RELEASE, OCFResult.SUCCESS, target)

    def _group_moved(self, key: str) -> None:
        previous = self._last_holder.pop(key, None)
        if previous is None:
            return
        dead = self.peers[previous].state is NodeState.DEAD
        action = ResourceAction.FAILOVER if dead else ResourceAction.TAKEOVER
        why = f"from {previous}" + (" (dead)" if dead else "")
        self._event(key, None, action, OCFResult.SUCCESS, why)

    def _resource_done(
        self, key: str, resource: str, action: str, result: OCFResult, detail: str
    ) -> None:
        try:
            kind = ResourceAction(action)
        except ValueError:
            return  # probes and validation are not news
        self._event(key, resource, kind, result, detail)

    def _event(
        self,
        key: str,
        resource: str | None,
        action: ResourceAction,
        result: OCFResult,
        detail: str,
    ) -> None:
        if action in (ResourceAction.FAILOVER, ResourceAction.TAKEOVER):
            self.taken[key, action] += 1
        if self._on_event is None:
            return
        self._on_event(
            ResourceEvent(
                group=key,
                resource=resource,
                action=action,
                result=result,
                node=self.local,
                cluster=self.config.cluster,
                timestamp=datetime.now(UTC),
                detail=detail,
            )
        )

    def _changed(self) -> None:
        """Our announcement may have changed: send it now if it did, and plan again."""
        current = self.announcement()
        stable = not any(
            g.state in (GroupState.STARTING, GroupState.STOPPING) for g in self.groups.values()
        )
        if current != self._announced or stable != self._announced_stable:
            self._announced, self._announced_stable = current, stable
            self._send_resource(info="shutdown" if self.leaving else None)
        self.replan()

    @property
    def has_heartbeat_peer(self) -> bool:
        return any(p.heartbeat is not None for p in self.peers.values())

    def restate_for_heartbeat(self) -> None:
        """Say our current t=resource again, if a Heartbeat peer listens (see the daemon).
        Not once we are leaving: what we said then (info=shutdown) stands."""
        if (
            self.active
            and not self.leaving
            and any(p.heartbeat is not None for p in self.peers.values())
        ):
            self._send_resource()

    def _send_resource(self, *, info: str | None = None, full: bool = False) -> None:
        a = self.announcement()
        transition = any(
            g.state in (GroupState.STARTING, GroupState.STOPPING) for g in self.groups.values()
        )
        hold = r1.rsc_hold(self.local, a.holds, self._preferred)
        body = r1.resource_fields(hold, stable=not transition, info=info, full=full)
        self._send(r1.RESOURCE, body + fields.encode(a))

    # ------------------------------------------------------------------ monitors

    @staticmethod
    def _interval(group: GroupRuntime) -> float | None:
        intervals = [r.bound.monitor_interval_s for r in group.resources]
        return min((i for i in intervals if i), default=None)

    def _start_monitor(self, group: GroupRuntime, *, now: bool = False) -> None:
        interval = self._interval(group)
        if interval is None or group.key in self._monitors or self.maintenance:
            return
        monitor = self._monitor(group, interval, first=0.0 if now else None)
        task = asyncio.get_running_loop().create_task(monitor)
        self._monitors[group.key] = task

    def _stop_monitor(self, key: str) -> None:
        task = self._monitors.pop(key, None)
        if task is not None:
            task.cancel()

    async def _monitor(
        self, group: GroupRuntime, interval: float, first: float | None = None
    ) -> None:
        while True:
            # Read each round: a reload may have changed it.
            await asyncio.sleep((self._interval(group) or interval) if first is None else first)
            first = None
            failed_at = await group.check()
            if failed_at is None:
                continue
            group.failcount += 1
            if group.failcount > RESTART_THRESHOLD:
                log.error(
                    "group %s failed %d times here: moving it away", group.key, group.failcount
                )
                self.failed.add(group.key)
                self._monitors.pop(group.key, None)
                self._changed()
                return
            log.warning(
                "group %s: restarting in place (failure %d of %d)",
                group.key, group.failcount, RESTART_THRESHOLD,
            )  # fmt: skip
            outcome = await group.restart_from(failed_at)
            if outcome is not Outcome.OK:
                self.failed.add(group.key)
                self._monitors.pop(group.key, None)
                self._changed()
                return

    # ------------------------------------------------------------------ commands

    def _load_moves(self) -> dict[Scope, Move]:
        try:
            data = json.loads(self.moves_file.read_text())
            moves = [
                Move(Scope(m["scope"]), Direction(m["direction"]), int(m["at_ms"])) for m in data
            ]
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("%s: unreadable (%s); no standby/takeover in force", self.moves_file, err)
            return {}
        return {m.scope: m for m in moves}

    async def _save_moves(self) -> str | None:
        """Persist the moves; what went wrong (for the command's reply), or None."""
        data = json.dumps([
            {"scope": m.scope.value, "direction": m.direction.value, "at_ms": m.at_ms}
            for m in self.moves.values()
        ])  # fmt: skip

        def write() -> None:
            self.moves_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self.moves_file.with_suffix(".tmp")
            tmp.write_text(data)
            tmp.chmod(0o644)  # whatever the umask: what moves.json says decides placement
            os.replace(tmp, self.moves_file)

        try:
            await asyncio.to_thread(write)
        except OSError as err:
            problem = (
                f"{self.moves_file}: cannot save ({err.strerror or err}); the move is in force "
                "but will not survive a restart"
            )
            log.error("%s", problem)
            return problem
        return None

    async def move(self, direction: Direction | None, scopes: Iterable[Scope]) -> str | None:
        """``standby`` (GIVE), ``takeover`` (TAKE) or clear (None) for the given scopes.
        Returns why the move could not be saved (it holds until restart), or None."""
        at_ms = int(time.time() * 1000)
        scopes = tuple(scopes)
        if direction is Direction.TAKE:
            # A Heartbeat peer gives groups only through its own hb_standby: ask for it.
            word = r1.ALL if len(scopes) == 2 else scopes[0].value
            for peer in self.peers.values():
                if peer.heartbeat is not None and peer.state is NodeState.ACTIVE:
                    self._send(TAKEOVER, [("rsc_hold", word)])
        for scope in scopes:
            if direction is None:
                self.moves.pop(scope, None)
            else:
                self.moves[scope] = Move(scope, direction, at_ms)
        problem = await self._save_moves()
        self._changed()
        return problem

    def cleanup(self, key: str) -> None:
        group = self.groups[key]
        group.cleanup()
        self.failed.discard(key)
        if group.state is GroupState.FAILED:
            # A stop that failed: try again now; the plan decides where it goes next.
            group.state = GroupState.STARTED
        self._changed()

    # ------------------------------------------------------------------ reload

    def set_config(self, config: ClusterConfig) -> None:
        """Reloaded timers or auto_failback: they count from the next plan on."""
        self.config = config
        self._score_settle_s = max(1.0, min(config.timers.deadping_ms / 1000, 5.0))
        self.replan()

    async def add_group(self, bound: BoundGroup) -> None:
        """A group new in the configuration: probed (it may run here already), then placed."""
        group = GroupRuntime(bound, self.runner, self._resource_done, self.actions)
        self.groups[bound.key] = group
        if not self.maintenance:
            await group.probe()
            self._probed(group)
        self._set_spec(bound)
        self._changed()

    async def remove_group(self, key: str) -> bool:
        """A group gone from the configuration: stopped here if held, then forgotten. False when
        its stop failed: it then stays here, failed and unmanaged, until cleanup."""
        self.specs = [s for s in self.specs if s.key != key]  # placement no longer sees it
        if not await self._stop_for_reload(key):
            return False
        del self.groups[key]
        self._preferred.pop(key, None)
        self._desired.pop(key, None)
        self._last_holder.pop(key, None)
        self._incomplete.discard(key)
        self._contested.discard(key)
        self.failed.discard(key)
        self._changed()
        return True

    async def replace_group(self, bound: BoundGroup) -> bool:
        """A group whose resources changed: only it is stopped here (if held), then placed
        again as new. False when its stop failed (as ``remove_group``)."""
        key = bound.key
        index = next((i for i, s in enumerate(self.specs) if s.key == key), len(self.specs))
        self.specs = [s for s in self.specs if s.key != key]
        old = self.groups[key]
        if not await self._stop_for_reload(key):
            self.specs.insert(index, GroupSpec(key, bound.group.preferred_node))
            return False
        group = GroupRuntime(bound, self.runner, self._resource_done, self.actions)
        if self.maintenance:
            group.state = old.state  # unmanaged: it was not stopped, so it is still ours
        self.groups[key] = group
        self.failed.discard(key)
        self._set_spec(bound, index)
        self._changed()
        return True

    def update_group(self, bound: BoundGroup) -> None:
        """Same resources, another preferred node or monitor interval: nothing restarts."""
        group = self.groups[bound.key]
        group.bound = bound
        for res, new in zip(group.resources, bound.resources, strict=True):
            res.bound = new
        index = next(i for i, s in enumerate(self.specs) if s.key == bound.key)
        self._set_spec(bound, index, replace=True)
        if bound.key in self._monitors and not group.lock.locked():
            self._stop_monitor(bound.key)  # between two checks: the new interval counts now
            self._start_monitor(group)
        self._changed()

    def _set_spec(self, bound: BoundGroup, index: int | None = None, replace: bool = False) -> None:
        spec = GroupSpec(bound.key, bound.group.preferred_node)
        if replace and index is not None:
            self.specs[index] = spec
        else:
            self.specs.insert(len(self.specs) if index is None else index, spec)
        self._preferred[spec.key] = spec.preferred

    async def _stop_for_reload(self, key: str) -> bool:
        group = self.groups[key]
        running = self._ops.get(key)
        if running is not None and not running.done():
            await asyncio.wait([running])
        self._stop_monitor(key)
        if self.maintenance or not group.holds:
            if group.holds:
                log.warning("maintenance mode: group %s left as it runs", key)
            return True
        outcome = await group.stop()
        if outcome is not Outcome.OK:
            return False
        self._event(key, None, ResourceAction.RELEASE, OCFResult.SUCCESS, "configuration reload")
        return True

    # ------------------------------------------------------------------ maintenance

    async def set_maintenance(self, on: bool) -> None:
        """Maintenance mode on: nothing is started, stopped or monitored here and what runs
        stays (peers neither give us groups nor take ours). Off: every group is probed again,
        then monitors and placement carry on from what is found."""
        if on == self.maintenance:
            return
        if on:
            self.maintenance = True
            for key in list(self._monitors):
                self._stop_monitor(key)
            await self._save_maintenance()
            log.warning("maintenance mode on: %s left unmanaged", self._held_words())
            self._changed()
            return
        # Still in maintenance while probing: the plan must not act on a half-probed picture.
        await asyncio.gather(*(g.probe() for g in self.groups.values()))
        self._incomplete.clear()  # what the probes found missing, the monitors restart below
        self.maintenance = False
        await self._save_maintenance()
        log.warning("maintenance mode off: managing %s again", self._held_words())
        for group in self.groups.values():
            if group.state is GroupState.STARTED:
                # Something found stopped behind our back is recovered now, not an interval on.
                stopped = any(r.state != "started" for r in group.resources)
                self._start_monitor(group, now=stopped)
        self._changed()

    def _held_words(self) -> str:
        held = sorted(k for k, g in self.groups.items() if g.holds)
        return ", ".join(held) if held else "no group"

    def _load_maintenance(self) -> tuple[bool, frozenset[str]]:
        if self.maintenance_file is None:
            return False, frozenset()
        try:
            data = json.loads(self.maintenance_file.read_text())
            holds = frozenset(str(k) for k in data["holds"])
        except FileNotFoundError:
            return False, frozenset()
        except (OSError, ValueError, KeyError, TypeError) as err:
            # Unreadable: stay in maintenance, holding nothing named (safer than managing).
            log.error(
                "%s: unreadable (%s); staying in maintenance mode", self.maintenance_file, err
            )
            return True, frozenset()
        return True, holds

    def _write_maintenance(self) -> None:
        """The file exists exactly while maintenance is on; it names what we hold."""
        path = self.maintenance_file
        if path is None:
            return
        if not self.maintenance:
            path.unlink(missing_ok=True)
            return
        held = sorted(k for k, g in self.groups.items() if g.holds)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"holds": held}))
        os.replace(tmp, path)

    async def _save_maintenance(self) -> None:
        try:
            await asyncio.to_thread(self._write_maintenance)
        except OSError as err:
            log.error("%s: cannot save (%s); maintenance mode holds until restart",
                      self.maintenance_file, err)  # fmt: skip

    # ------------------------------------------------------------------ status

    def standby_scope(self) -> str:
        gave = {s for s, m in self.moves.items() if m.direction is Direction.GIVE}
        if gave == {Scope.LOCAL, Scope.FOREIGN}:
            return "all"
        return next(iter(gave)).value if gave else "none"

    def rscstatus(self) -> str:
        """cl_status rscstatus: none, local, foreign, all, or transition."""
        if any(g.state in (GroupState.STARTING, GroupState.STOPPING) for g in self.groups.values()):
            return "transition"
        held = {
            Scope.LOCAL
            if self.groups[s.key].bound.group.preferred_node == self.local
            else Scope.FOREIGN
            for s in self.specs
            if self.groups[s.key].holds
        }
        if held == {Scope.LOCAL, Scope.FOREIGN}:
            return "all"
        return next(iter(held)).value if held else "none"

    def status(self) -> list[dict[str, Any]]:
        holders: dict[str, list[str]] = {key: [] for key in self.groups}
        for name in self.config.nodes:
            if name == self.local:
                holds: Iterable[str] = (k for k, g in self.groups.items() if g.holds)
            else:
                peer = self.peers[name]
                a = peer.announcement
                holds = a.holds if a and peer.state is not NodeState.DEAD else ()
            for key in holds:
                if key in holders:
                    holders[key].append(name)
        return [
            {
                "key": key,
                "preferred": g.bound.group.preferred_node,
                "holders": holders[key],
                "desired": self._desired.get(key),
                "local_state": g.state.value,
                "failcount": g.failcount,
                "failed_here": key in self.failed,
                "failovers": self.taken[key, ResourceAction.FAILOVER],
                "takeovers": self.taken[key, ResourceAction.TAKEOVER],
                "resources": [
                    {"name": r.bound.name, "agent": r.bound.resource.agent, "state": r.state}
                    for r in g.resources
                ],
            }
            for key, g in self.groups.items()
        ]


def scopes(word: str) -> tuple[Scope, ...]:
    """hb_standby's argument: all, local, foreign, or failback (= foreign)."""
    if word in ("all", "none"):
        return (Scope.LOCAL, Scope.FOREIGN)
    if word == "failback":
        return (Scope.FOREIGN,)
    return (Scope(word),)
