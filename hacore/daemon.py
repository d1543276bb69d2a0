"""Wiring: the asyncio loop that connects membership to the links, the control socket, the
signals and the logs. The state machines decide; this module only moves bytes and time.

The keepalive path is the timer callback ``_wake`` and the datagram callback ``_datagram``: both
run to completion in microseconds and nothing else on the loop may await anything slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import hashlib
import logging
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hacore import __version__
from hacore.config import load
from hacore.config.errors import ConfigError, Problem, Severity
from hacore.config.model import AuthMethod, ClusterConfig, Location
from hacore.control import ControlServer
from hacore.dispatch import EventDispatcher
from hacore.events import NodeEvent
from hacore.membership import rexmit
from hacore.membership.detector import Membership
from hacore.membership.envelope import Rejected, open_envelope, seal
from hacore.membership.events import (
    CommUp,
    DatagramRejected,
    Delivered,
    Event,
    LateHeartbeat,
    LinkStateChanged,
    NodeRestarted,
    NodeReturned,
    NodeState,
    NodeStateChanged,
    Send,
)
from hacore.metrics import REFRESH_S, MetricsError
from hacore.paths import RuntimePaths
from hacore.persist import next_generation, node_uuid
from hacore.plugins import PluginError, plugin_manager
from hacore.reload import ChangeKind, ReloadPlan, diff
from hacore.resources import r1
from hacore.resources.binding import BoundGroup, bind
from hacore.resources.manager import ResourceManager, scopes
from hacore.resources.placement import Direction
from hacore.systemd import Notifier
from hacore.transport import Links

if TYPE_CHECKING:
    from hacore.exporter import MetricsEndpoint

log = logging.getLogger("hacore.daemon")

# A flood of bad datagrams must not become a flood of log lines: one line per reason per window.
_REJECT_LOG_INTERVAL_S = 10.0
_LOADAVG_REFRESH_S = 5.0
# Bound on stopping every group at shutdown (systemd's stop timeout should exceed it).
_SHUTDOWN_TIMEOUT_S = 300.0
# How often the connectivity score (the ping plugin's) is read; the plugin dampens it itself.
_SCORE_REFRESH_S = 0.2
# The message types that carry resource announcements (status, and Heartbeat's R1 exchange).
_EXCHANGE = frozenset({"status", "resource", "starting", "ask_resources", "hb_takeover"})
_NOTIFY_DRAIN_S = 5.0
# After t=shutdone: how long we still send statuses and answer retransmission requests, and
# how often (Heartbeat's own final shutdown follows its shutdone by a second).
_GOODBYE_LINGER_S = 1.0
_GOODBYE_SPACING_S = 0.1
_GOODBYE_COPIES = 3  # the t=shutdone sent again, unchanged, to a Heartbeat peer (see _linger)
_MCL_CURRENT, _MCL_FUTURE, _MCL_ONFAULT = 1, 2, 4
# Agent workers and notifier lanes run shallow Python code; 8 MiB each, locked, is waste.
_THREAD_STACK = 1024 * 1024


def small_thread_stacks() -> None:
    """Agent workers, notifier lanes and the log writer run shallow Python code: 1 MiB of stack
    each instead of 8 MiB, which ``mlockall`` would otherwise make resident. Call before the
    first thread starts."""
    threading.stack_size(_THREAD_STACK)


def _go_realtime() -> None:
    """Heartbeat's ``realtime on``: SCHED_FIFO and memory locked, so a loaded machine does not
    make us late. RESET_ON_FORK keeps agents and their children off the realtime class.
    With memory locked every thread's stack is resident: see ``small_thread_stacks``."""
    try:
        policy = os.SCHED_FIFO | os.SCHED_RESET_ON_FORK
        os.sched_setscheduler(0, policy, os.sched_param(os.sched_get_priority_min(os.SCHED_FIFO)))
    except OSError as err:
        log.warning("cannot use realtime scheduling (%s); running at normal priority", err.strerror)
    libc = ctypes.CDLL(None, use_errno=True)
    # Everything mapped now (the code and data the keepalive and failover paths run) is made
    # resident and locked at once; what is mapped later (thread stacks, allocator arenas) is
    # locked page by page as it is touched (MCL_ONFAULT, Linux 4.4): a later first touch costs
    # a zero-fill minor fault, never disk I/O, and untouched reservations cost no memory
    # (about 5 MB of RSS measured). A kernel without MCL_ONFAULT keeps the first call's lock.
    if libc.mlockall(_MCL_CURRENT) != 0:
        log.warning("cannot lock ourselves into memory (%s)", os.strerror(ctypes.get_errno()))
    elif libc.mlockall(_MCL_CURRENT | _MCL_FUTURE | _MCL_ONFAULT) != 0:
        libc.mlockall(_MCL_CURRENT | _MCL_FUTURE)


def _validate(config: ClusterConfig, pm: Any) -> tuple[tuple[BoundGroup, ...], tuple[Problem, ...]]:
    """What ``hactl config check`` checks beyond reading: agents bound, plugins agree."""
    groups, problems = bind(config)
    for found in pm.hook.hacore_config_validate(config=config):
        problems += tuple(Problem(Location(str(config.source)), p) for p in found)
    return groups, problems


def _allows_crc(config: ClusterConfig) -> bool:
    """crc is a checksum, not authentication: accepted only from a cluster that lists it, so
    that moving away from it is a rollout too (list the new key, sign with it everywhere, then
    drop the crc line), not a flag day."""
    return any(key.method is AuthMethod.CRC for key in config.auth.keys)


def _warn_listed_crc(config: ClusterConfig) -> None:
    signing = config.auth.signing_key
    if _allows_crc(config) and signing.method is not AuthMethod.CRC:
        log.warning(
            "authkeys still lists a crc key: messages anyone can forge are accepted; remove "
            "that line once every node signs with key %d",
            signing.index,
        )


def plugin_files(config: ClusterConfig) -> dict[str, str]:
    """Fingerprints of the plugins' own settings (notify.toml, ping.toml: every .toml beside
    the configuration but cluster.toml, and a notify.toml named by the environment)."""
    directory = config.source if config.source.is_dir() else config.source.parent
    paths = [p for p in directory.glob("*.toml") if p.name != "cluster.toml"]
    named = os.environ.get("HACORE_NOTIFY_CONFIG")
    if named:
        paths.append(Path(named))
    found: dict[str, str] = {}
    for path in paths:
        with contextlib.suppress(OSError):
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


class Daemon:
    def __init__(
        self, config: ClusterConfig, paths: RuntimePaths, *, node_name: str | None = None
    ) -> None:
        self.config = config
        self.paths = paths
        # The --node given at start: a reload resolves the local node as the start did.
        self._node_name = node_name
        self._reloading = asyncio.Lock()
        self._reload_task: asyncio.Task[None] | None = None
        self._plugin_files = plugin_files(config)
        self.links = Links()
        self.control = ControlServer(paths.socket, self._control, group=config.control_group)
        self._allow_crc = _allows_crc(config)
        self._stopping = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._reject_logged: dict[str, float] = {}
        self._started_wall = time.time()
        self._expect_score = False
        self._received: Counter[str] = Counter()
        self.systemd = Notifier()
        self._ready_sent = False
        self._watchdog_at = 0.0
        self._score_since = 0.0
        self.membership: Membership | None = None
        self.metrics: MetricsEndpoint | None = None
        try:
            self.pm = plugin_manager()
        except PluginError as err:
            raise ConfigError((Problem(Location(str(config.source)), str(err)),)) from None
        groups, problems = _validate(config, self.pm)
        if problems:
            raise ConfigError(problems)
        self.dispatcher = EventDispatcher(self.pm)
        # Agents keep pid and state files here (OCF's HA_RSCTMP): one directory per node.
        os.environ["HACORE_RSCTMP"] = os.environ["HA_RSCTMP"] = str(paths.rsctmp)
        # Heartbeat-class scripts named in haresources: the config's resource.d, then init.d.
        config_dir = config.source if config.source.is_dir() else config.source.parent
        os.environ["HACORE_RESOURCE_DIRS"] = f"{config_dir / 'resource.d'}:/etc/init.d"
        self.resources = ResourceManager(
            config,
            groups,
            moves_file=paths.state_dir / "moves.json",
            send=self._send,
            on_event=self.dispatcher.resource_event,
            maintenance_file=paths.state_dir / "maintenance.json",
        )

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        generation = next_generation(self.paths.generation_file)
        uuid = node_uuid(self.paths.uuid_file)
        self.membership = Membership(
            local=self.config.local_node,
            nodes=self.config.nodes,
            links=[link.name for link in self.config.links],
            timers=self.config.timers,
            generation=generation,
            uuid=uuid,
            now=loop.time(),
        )
        self.membership.status_fields = self.resources.status_fields
        log.info(
            "hacore %s starting: node %s, generation %d, keepalive %d ms, deadtime %d ms",
            __version__,
            self.config.local_node,
            generation,
            self.config.timers.keepalive_ms,
            self.config.timers.deadtime_ms,
        )
        _warn_listed_crc(self.config)
        await self.links.start(self.config.links, self._datagram)
        await self.control.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        loop.add_signal_handler(signal.SIGUSR1, self._debug_level, 1)
        loop.add_signal_handler(signal.SIGUSR2, self._debug_level, -1)
        loop.add_signal_handler(signal.SIGHUP, self._reload_on_signal)
        if self.config.realtime:
            _go_realtime()
        if self.config.metrics_address is not None:
            await self._open_metrics(self.config.metrics_address)
        self._refresh_loadavg()
        self.paths.rsctmp.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.pm.hook.hacore_daemon_started(config=self.config)
        self._expect_score = bool(
            (self.config.ping_nodes or self.config.ping_groups)
            and self.pm.hook.hacore_connectivity_score.get_hookimpls()
        )
        self.resources.score_known = not self._expect_score
        self._score_since = loop.time()
        self._refresh_score()
        probing = loop.create_task(self.resources.start())
        # Everything allocated so far lives as long as the daemon: keep the collector off it.
        gc.collect()
        gc.freeze()
        self._wake()
        await self._stopping.wait()
        await probing
        await self._shutdown()

    async def _shutdown(self) -> None:
        if self.resources.maintenance:
            log.info("shutting down in maintenance mode: our groups stay as they are")
        else:
            log.info("shutting down: handing our groups over")
        assert self.membership is not None
        self.systemd.stopping()
        await self.resources.shutdown(_SHUTDOWN_TIMEOUT_S)
        # Deliver the last events first: the notify plugin stops its notifiers when told.
        undelivered = await asyncio.to_thread(self.dispatcher.close, _NOTIFY_DRAIN_S)
        if undelivered:
            log.warning("%d notifications not delivered at shutdown", undelivered)
        self.pm.hook.hacore_daemon_stopping(config=self.config)
        goodbye = self.membership.shutdown(time.time())
        self._handle(goodbye)
        await self._linger(goodbye)
        if self._timer is not None:
            self._timer.cancel()
        self.control.close()
        if self.metrics is not None:
            await asyncio.to_thread(self.metrics.close)
        # Let the goodbye datagram leave before the sockets close.
        await asyncio.sleep(0)
        self.links.close()
        self.systemd.close()
        log.info("stopped")

    async def _linger(self, goodbye: list[Event]) -> None:
        """Stay on the links a moment after t=shutdone, as Heartbeat does (its final shutdown
        comes a second later): the statuses that follow the goodbye show a peer that lost it a
        gap, it asks again (NS_rexmit) and we still answer, so it takes over at once even on a
        lossy link rather than after deadtime. Nobody to tell, no wait."""
        assert self.membership is not None
        loop = asyncio.get_running_loop()
        view = self.membership.view(loop.time())
        if all(node.state is NodeState.DEAD for node in view.nodes):
            return
        end = loop.time() + _GOODBYE_LINGER_S
        # A Heartbeat peer that lost the goodbye also needs its NS_rexmit and our answer to
        # get through; on a lossy link that fails now and then, and it then waits for deadtime.
        # So it gets the same datagram (same seq) a few more times, ahead of each status: a
        # duplicate to Heartbeat once it has one. Not to hacore peers alone, which would count
        # every copy as a replay.
        copies = _GOODBYE_COPIES if self.resources.has_heartbeat_peer else 0
        while loop.time() < end:
            if copies:
                copies -= 1
                for event in goodbye:
                    if isinstance(event, Send):
                        self.links.send(seal(event.message, self.config.auth))
            self._handle([Send(self.membership.status(time.time()))])
            await asyncio.sleep(_GOODBYE_SPACING_S)

    def stop(self) -> None:
        self._stopping.set()

    # ------------------------------------------------------------------ keepalive path

    def _wake(self) -> None:
        membership = self.membership
        assert membership is not None
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._handle(membership.tick(now, time.time()))
        self._schedule()
        if self.systemd.enabled:
            self._tell_systemd(now)

    def _tell_systemd(self, now: float) -> None:
        """Feed the watchdog from the keepalive timer; say READY once the node is settled."""
        assert self.membership is not None
        if self.systemd.watchdog_s and now - self._watchdog_at >= self.systemd.watchdog_s / 4:
            self._watchdog_at = now
            self.systemd.watchdog()
        settled = self.resources.ready and self.resources.rscstatus() != "transition"
        if not self._ready_sent and self.membership.state is NodeState.ACTIVE and settled:
            self._ready_sent = True
            self.systemd.ready(f"active, holding {self.resources.rscstatus()}")

    def _schedule(self) -> None:
        assert self.membership is not None
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(self.membership.next_wakeup(), self._wake)

    def _datagram(self, data: bytes, link: str, addr: tuple[str, int]) -> None:
        membership = self.membership
        assert membership is not None
        loop = asyncio.get_running_loop()
        try:
            message = open_envelope(data, self.config.auth, allow_crc=self._allow_crc)
        except Rejected as bad:
            self._handle([membership.reject(bad.verdict, link, f"from {addr[0]}: {bad.detail}")])
            return
        events = membership.receive(message, link, loop.time(), time.time())
        self._handle(events)
        if message.type == rexmit.REXMIT and any(
            isinstance(e, Send) and e.message.type == r1.RESOURCE for e in events
        ):
            # We resent an old t=resource, unchanged. Heartbeat takes a retransmitted message
            # as current news (it does not order them by sequence): it may now believe us in
            # transition (isstable=0) and refuse a standby request as "in flux". Our current
            # t=resource, sent after it, puts its view right.
            self.resources.restate_for_heartbeat()
        self._schedule()

    def _send(self, type_: str, fields: list[tuple[str, str | bytes]]) -> None:
        """Send a sequenced message of the resource exchange now, on every link."""
        assert self.membership is not None
        self._handle([Send(self.membership.message(type_, fields, time.time()))])

    def _handle(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, Send):
                self.links.send(seal(event.message, self.config.auth))
                continue
            self._log_event(event)
            match event:
                case Delivered(node, message):
                    self._received[message.type or "?"] += 1
                    if message.type in _EXCHANGE:
                        self.resources.on_message(node, message)
                case NodeStateChanged(node, old, new, reason):
                    self.resources.on_node_state(node, new, reason)
                    self.dispatcher.node_event(
                        NodeEvent(
                            node=node,
                            old_state=old.value,
                            new_state=new.value,
                            reason=reason,
                            cluster=self.config.cluster,
                            local_node=self.config.local_node,
                            timestamp=datetime.now(UTC),
                        )
                    )
                case CommUp():
                    # A status before t=starting: Heartbeat times a node from its statuses
                    # only, and after its own comm-up takes one whose first datagram is
                    # another message for dead at once.
                    assert self.membership is not None
                    self._handle([Send(self.membership.status(time.time()))])
                    self.resources.on_comm_up()
                case _:
                    pass

    def _log_event(self, event: Event) -> None:
        match event:
            case NodeStateChanged(node, _old, NodeState.DEAD, reason):
                log.warning("node %s: is dead (%s)", node, reason)
            case NodeStateChanged(node, _old, new, _reason):
                log.info("Status update for node %s: status %s", node, new)
            case CommUp():
                log.info(
                    "communications up: all nodes heard from or declared dead; local node active"
                )
            case LateHeartbeat(node, interval_ms):
                log.warning("Late heartbeat: node %s: interval %d ms", node, interval_ms)
            case LinkStateChanged(node, link, new):
                log.info("Link %s:%s %s", node, link, new)
            case NodeRestarted(node, old, new):
                log.info("node %s restarted (generation %d -> %d)", node, old, new)
            case NodeReturned(node):
                log.warning("node %s returning after partition", node)
            case DatagramRejected(verdict, link, detail):
                now = time.monotonic()
                if now - self._reject_logged.get(verdict, 0.0) >= _REJECT_LOG_INTERVAL_S:
                    self._reject_logged[verdict] = now
                    log.warning("link %s: datagram rejected (%s): %s", link, verdict, detail)
            case Delivered(node, message) if message.type != "status":
                log.debug("message %s from %s", message.type, node)

    # ------------------------------------------------------------------ housekeeping

    def _refresh_loadavg(self) -> None:
        assert self.membership is not None
        with contextlib.suppress(OSError), open("/proc/loadavg") as f:
            self.membership.load_average = f.read().strip()
        asyncio.get_running_loop().call_later(_LOADAVG_REFRESH_S, self._refresh_loadavg)

    def _refresh_score(self) -> None:
        answers = [
            a
            for a in self.pm.hook.hacore_connectivity_score(node=self.config.local_node)
            if a is not None
        ]
        loop = asyncio.get_running_loop()
        # Until the first measurement, say nothing rather than "reaches nothing"; give up
        # waiting after deadping (a scorer that never answers must not keep us out for ever).
        waited_out = loop.time() - self._score_since > self.config.timers.deadping_ms / 1000
        if answers or waited_out or not self._expect_score:
            self.resources.set_score(sum(answers))
        loop.call_later(_SCORE_REFRESH_S, self._refresh_score)

    async def _open_metrics(self, address: str) -> None:
        # After realtime: the server's threads get the small stacks that mlockall keeps resident.
        from hacore.exporter import MetricsEndpoint  # noqa: PLC0415 (only when configured)

        endpoint = MetricsEndpoint(address)
        try:
            await asyncio.to_thread(endpoint.start)
        except MetricsError:
            self.control.close()
            self.links.close()
            raise
        self.metrics = endpoint
        self._refresh_metrics()

    def _refresh_metrics(self) -> None:
        """Hand the metrics endpoint a fresh snapshot; its threads read nothing else."""
        assert self.metrics is not None
        self.metrics.collector.update(self.metrics_snapshot())
        asyncio.get_running_loop().call_later(REFRESH_S, self._refresh_metrics)

    def _debug_level(self, step: int) -> None:
        logger = logging.getLogger("hacore")
        logger.setLevel(logging.DEBUG if step > 0 else logging.INFO)
        log.info("log level now %s", logging.getLevelName(logger.level))

    # ------------------------------------------------------------------ reload

    def _reload_on_signal(self) -> None:
        async def run() -> None:
            reply = await self.reload()
            for line in reply.get("problems", []):
                log.error("reload refused: %s", line)
            for line in reply.get("warnings", []):
                log.warning("reload: %s", line)
            for line in reply.get("errors", []):
                log.error("reload: %s", line)

        # Held: the loop keeps only a weak reference to a task.
        self._reload_task = asyncio.get_running_loop().create_task(run())

    async def reload(self) -> dict[str, Any]:
        """Read, check and apply the configuration again (SIGHUP, ``hactl config reload``).

        Reply: ``ok`` and the ``applied`` change lines; or ``ok`` false with ``problems``
        (``file:line: message`` lines) when the new configuration is refused, in which case
        nothing changed. ``warnings`` are the reader's warnings either way; ``errors`` lists
        changes that were applied but failed (a group that would not stop)."""
        async with self._reloading:
            source = self.config.source
            log.info("reloading the configuration from %s", source)
            try:
                new, groups, files, warned = await asyncio.to_thread(self._read_new, source)
            except ConfigError as err:
                errors = [str(p) for p in err.problems if p.severity is Severity.ERROR]
                warnings = [str(p) for p in err.problems if p.severity is not Severity.ERROR]
                return {"ok": False, "refused": True, "problems": errors, "warnings": warnings}
            warnings = [str(p) for p in warned]
            plan = diff(
                self.config, new, old_plugin_files=self._plugin_files, new_plugin_files=files
            )
            if not plan.applicable:
                lines = [f"{source}: {r}" for r in plan.refusals]
                return {"ok": False, "refused": True, "problems": lines, "warnings": warnings}
            if not plan.changes:
                log.info("reload: nothing changed")
                return {"ok": True, "applied": [], "warnings": warnings}
            errors = await self._apply(plan, new, {g.key: g for g in groups}, files)
            applied = [str(c) for c in plan.changes]
            return {"ok": True, "applied": applied, "warnings": warnings, "errors": errors}

    def _read_new(
        self, source: Path
    ) -> tuple[ClusterConfig, tuple[BoundGroup, ...], dict[str, str], tuple[Problem, ...]]:
        """In a worker thread: reading and checking touch files and load agents."""
        loaded = load(source, node_name=self._node_name)
        groups, problems = _validate(loaded.config, self.pm)
        if problems:
            raise ConfigError(problems + loaded.warnings)
        return loaded.config, groups, plugin_files(loaded.config), loaded.warnings

    async def _apply(
        self,
        plan: ReloadPlan,
        new: ClusterConfig,
        bound: dict[str, BoundGroup],
        files: dict[str, str],
    ) -> list[str]:
        assert self.membership is not None
        loop = asyncio.get_running_loop()
        old, self.config = self.config, new
        # Keys first: from here on we sign with the new active key and accept every listed one.
        self._allow_crc = _allows_crc(new)
        _warn_listed_crc(new)
        for change in plan.of(ChangeKind.AUTH, ChangeKind.AUTO_FAILBACK):
            log.info("reload: %s", change)
        for change in plan.of(ChangeKind.TIMERS):
            self.membership.set_timers(new.timers, loop.time())
            self._schedule()
            log.info("reload: %s", change)
        for change in plan.of(ChangeKind.DEBUG):
            logging.getLogger().setLevel(logging.DEBUG if new.debug else logging.INFO)
            log.info("reload: %s", change)
        self.resources.set_config(new)
        for change in plan.of(ChangeKind.PLUGINS):
            await asyncio.to_thread(self.pm.hook.hacore_daemon_stopping, config=old)
            self.pm.hook.hacore_daemon_started(config=new)
            # Keep the last score until the restarted scorer answers (bounded by deadping):
            # a momentary "reaches nothing" would move groups.
            self._expect_score = bool(
                (new.ping_nodes or new.ping_groups)
                and self.pm.hook.hacore_connectivity_score.get_hookimpls()
            )
            self._score_since = loop.time()
            self._plugin_files = files
            log.info("reload: %s", change)
        errors: list[str] = []
        for change in plan.changes:
            match change.kind:
                case ChangeKind.GROUP_ADDED:
                    await self.resources.add_group(bound[change.subject])
                case ChangeKind.GROUP_REMOVED:
                    if not await self.resources.remove_group(change.subject):
                        errors.append(f"group {change.subject} did not stop: it stays here")
                case ChangeKind.GROUP_CHANGED:
                    if not await self.resources.replace_group(bound[change.subject]):
                        errors.append(f"group {change.subject} did not stop: not replaced")
                case ChangeKind.GROUP_PREFERRED | ChangeKind.MONITOR:
                    self.resources.update_group(bound[change.subject])
                case _:
                    continue
            log.info("reload: %s", change)
        return errors

    # ------------------------------------------------------------------ control socket

    async def _control(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request["cmd"]
        if cmd == "status":
            return {"ok": True, "status": self.status()}
        if cmd in ("standby", "takeover"):
            scope = str(request.get("scope", "all"))
            if scope not in ("all", "local", "foreign", "failback", "none"):
                return {"ok": False, "error": f"unknown scope '{scope}'"}
            direction = (
                None
                if scope == "none"
                else (Direction.GIVE if cmd == "standby" else Direction.TAKE)
            )
            problem = await self.resources.move(direction, scopes(scope))
            # Done, but not saved (a full disk): the user must hear that it won't last.
            return {"ok": True, "warning": problem} if problem else {"ok": True}
        if cmd == "cleanup":
            key = str(request.get("group", ""))
            if key not in self.resources.groups:
                return {"ok": False, "error": f"no group '{key}'"}
            self.resources.cleanup(key)
            return {"ok": True}
        if cmd == "reload":
            return await self.reload()
        if cmd == "maintenance":
            on = request.get("on")
            if not isinstance(on, bool):
                return {"ok": False, "error": "maintenance needs on: true or false"}
            await self.resources.set_maintenance(on)
            return {"ok": True, "maintenance": self.resources.maintenance}
        return {"ok": False, "error": f"unknown command '{cmd}'"}

    def metrics_snapshot(self) -> dict[str, Any]:
        """What the metrics endpoint serves: the status, and how resource actions went."""
        return {**self.status(), "actions": self.resources.actions.summary()}

    def status(self) -> dict[str, Any]:
        assert self.membership is not None
        view = self.membership.view(asyncio.get_running_loop().time())
        timers = self.config.timers
        return {
            "version": __version__,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self._started_wall, 3),
            "cluster": self.config.cluster,
            "config": str(self.config.source),
            "local": {
                "name": view.local,
                "state": view.local_state.value,
                "generation": view.generation,
                "seq": view.seq,
                "standby": self.resources.standby_scope(),
                "maintenance": self.resources.maintenance,
                "ready": self.resources.ready,
            },
            "timers": {
                "keepalive_ms": timers.keepalive_ms,
                "deadtime_ms": timers.deadtime_ms,
                "warntime_ms": timers.warntime_ms,
                "initdead_ms": timers.initdead_ms,
            },
            "links": self.links.names,
            "nodes": [
                {
                    **{k: v for k, v in asdict(node).items() if k != "links"},
                    "state": node.state.value,
                    "links": [
                        {
                            "name": li.name,
                            "state": li.state.value,
                            "last_heard_ms": li.last_heard_ms,
                        }
                        for li in node.links
                    ],
                }
                for node in view.nodes
            ],
            "rejected": view.rejected,
            "loopback": view.loopback,
            "groups": self.resources.status(),
            "rscstatus": self.resources.rscstatus(),
            "score": self.resources.score,
            "received": dict(sorted(self._received.items())),
            "notifiers": self.dispatcher.stats(),
        }
