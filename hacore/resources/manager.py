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
from hacore.resources.heartbeat_peer import ASK, TAKEOVER, Handshake, HeartbeatPeer, mirror
from hacore.resources.placement import Direction, GroupSpec, Move, NodeView, Scope, plan
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
        self._desired: dict[str, str | None] = {}
        # The last other node seen holding each group: says whether a start is a failover.
        self._last_holder: dict[str, str] = {}
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
        await asyncio.gather(*(g.probe() for g in self.groups.values()))
        for group in self.groups.values():
            if group.state is GroupState.STARTED:
                self._start_monitor(group)
        self.probed = True
        self._changed()

    async def shutdown(self, timeout_s: float) -> None:
        """Hand every group over: announce that we leave, stop everything, announce the
        release; returns when nothing runs here any more (or after ``timeout_s``)."""
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
        self.replan()

    def on_message(self, node: str, msg: Message) -> None:
        """A message of the exchange (status, resource, starting, ask_resources, hb_takeover)."""
        if msg.type == r1.STARTING:
            self._send_resource(full=True)
        self.on_status(node, msg)

    def on_node_state(self, node: str, state: NodeState) -> None:
        peer = self.peers.get(node)
        if peer is None:
            return
        peer.state = state
        if state is NodeState.DEAD:
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
        if order <= peer.order:
            return  # an older status overtaken by a newer one: keep the newer view
        peer.order = order
        announcement = fields.decode(msg)
        if announcement is None:
            announcement = self._from_heartbeat(node, peer, msg)
            if msg.type in (ASK, TAKEOVER):
                peer.announcement = announcement
                self.replan()  # a handshake step: what we may stop or start has changed
                return
            if msg.type == r1.RESOURCE and msg.get("rtype") == "full":
                # Its answer to our t=starting: Heartbeat waits for our own stable
                # t=resource before it counts us in (and before any standby).
                self._send_resource()
        elif msg.type in (ASK, TAKEOVER):
            return  # hacore peers move groups by their announcements alone
        if announcement != peer.announcement:
            peer.announcement = announcement
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
        for type_, body in hb.on_message(msg, time.monotonic(), int(time.time() * 1000)):
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
                live = self.active and self.ready and not self.leaving
                views.append(
                    NodeView(
                        name, live, True, own.holds, own.failed, own.blocked, own.moves, own.score
                    )
                )
                continue
            peer = self.peers[name]
            a = peer.announcement
            if peer.state is NodeState.DEAD or (a is None and peer.heartbeat is None):
                # Dead, or never heard: it holds nothing (as in Heartbeat without STONITH).
                views.append(NodeView(name, live=False, present=False))
                continue
            if a is None:
                # A Heartbeat peer that has not said what it holds yet (it answers our
                # t=starting): wait for it, bounded, rather than start a second copy.
                peer.unready_since = peer.unready_since or now
                if now - peer.unready_since < self.config.timers.initdead_ms / 1000:
                    return None
                views.append(NodeView(name, live=False, present=False))
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
            views.append(NodeView(name, live, True, a.holds, a.failed, a.blocked, a.moves, a.score))
        scores = self._settled_scores({v.name: v.score for v in views if v.present}, now)
        return [dataclasses.replace(v, score=scores.get(v.name, v.score)) for v in views]

    # ------------------------------------------------------------------ decisions

    def replan(self) -> None:
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
        todo = plan(self.specs, views, self.local, self.config.auto_failback)
        self._desired = dict(todo.desired)
        for key in self._handed_over(todo.stop):
            self._launch(key, "stop")
        for key in todo.start:
            self._launch(key, "start")
        self._close_handshakes()

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
        if op == "start":
            self._changed()  # "starting" counts as holding: tell the peers before acting
            outcome = await group.start()
            if outcome is Outcome.OK:
                self._start_monitor(group)
                self._group_moved(key)
            elif outcome is Outcome.FAILED:
                self.failed.add(key)
        else:
            self._stop_monitor(key)
            outcome = await group.stop()
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
        if current != self._announced:
            self._announced = current
            self._send_resource(info="shutdown" if self.leaving else None)
        self.replan()

    def _send_resource(self, *, info: str | None = None, full: bool = False) -> None:
        a = self.announcement()
        transition = any(
            g.state in (GroupState.STARTING, GroupState.STOPPING) for g in self.groups.values()
        )
        hold = r1.rsc_hold(self.local, a.holds, self._preferred)
        body = r1.resource_fields(hold, stable=not transition, info=info, full=full)
        self._send(r1.RESOURCE, body + fields.encode(a))

    # ------------------------------------------------------------------ monitors

    def _start_monitor(self, group: GroupRuntime) -> None:
        intervals = [r.bound.monitor_interval_s for r in group.resources]
        interval = min((i for i in intervals if i), default=None)
        if interval is None or group.key in self._monitors:
            return
        task = asyncio.get_running_loop().create_task(self._monitor(group, interval))
        self._monitors[group.key] = task

    def _stop_monitor(self, key: str) -> None:
        task = self._monitors.pop(key, None)
        if task is not None:
            task.cancel()

    async def _monitor(self, group: GroupRuntime, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
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

    async def _save_moves(self) -> None:
        data = json.dumps([
            {"scope": m.scope.value, "direction": m.direction.value, "at_ms": m.at_ms}
            for m in self.moves.values()
        ])  # fmt: skip

        def write() -> None:
            self.moves_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self.moves_file.with_suffix(".tmp")
            tmp.write_text(data)
            os.replace(tmp, self.moves_file)

        try:
            await asyncio.to_thread(write)
        except OSError as err:
            log.error("%s: cannot save (%s); the move holds until restart", self.moves_file, err)

    async def move(self, direction: Direction | None, scopes: Iterable[Scope]) -> None:
        """``standby`` (GIVE), ``takeover`` (TAKE) or clear (None) for the given scopes."""
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
        await self._save_moves()
        self._changed()

    def cleanup(self, key: str) -> None:
        group = self.groups[key]
        group.cleanup()
        self.failed.discard(key)
        if group.state is GroupState.FAILED:
            # A stop that failed: try again now; the plan decides where it goes next.
            group.state = GroupState.STARTED
        self._changed()

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
        holders: dict[str, list[str]] = {s.key: [] for s in self.specs}
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
