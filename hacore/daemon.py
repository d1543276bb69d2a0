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
import logging
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from hacore import __version__
from hacore.config.errors import ConfigError, Problem
from hacore.config.model import AuthMethod, ClusterConfig, Location
from hacore.control import ControlServer
from hacore.dispatch import EventDispatcher
from hacore.events import NodeEvent
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
from hacore.metrics import REFRESH_S, MetricsEndpoint, MetricsError
from hacore.paths import RuntimePaths
from hacore.persist import next_generation, node_uuid
from hacore.plugins import PluginError, plugin_manager
from hacore.resources.binding import bind
from hacore.resources.manager import ResourceManager, scopes
from hacore.resources.placement import Direction
from hacore.systemd import Notifier
from hacore.transport import Links

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
_MCL_CURRENT, _MCL_FUTURE = 1, 2
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
    if libc.mlockall(_MCL_CURRENT | _MCL_FUTURE) != 0:
        log.warning("cannot lock ourselves into memory (%s)", os.strerror(ctypes.get_errno()))


class Daemon:
    def __init__(self, config: ClusterConfig, paths: RuntimePaths) -> None:
        self.config = config
        self.paths = paths
        self.links = Links()
        self.control = ControlServer(paths.socket, self._control)
        self._allow_crc = config.auth.signing_key.method is AuthMethod.CRC
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
        groups, problems = bind(config)
        try:
            self.pm = plugin_manager()
        except PluginError as err:
            problems += (Problem(Location(str(config.source)), str(err)),)
        else:
            for found in self.pm.hook.hacore_config_validate(config=config):
                problems += tuple(Problem(Location(str(config.source)), p) for p in found)
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
        await self.links.start(self.config.links, self._datagram)
        await self.control.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        loop.add_signal_handler(signal.SIGUSR1, self._debug_level, 1)
        loop.add_signal_handler(signal.SIGUSR2, self._debug_level, -1)
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
        log.info("shutting down: handing our groups over")
        assert self.membership is not None
        self.systemd.stopping()
        await self.resources.shutdown(_SHUTDOWN_TIMEOUT_S)
        # Deliver the last events first: the notify plugin stops its notifiers when told.
        undelivered = await asyncio.to_thread(self.dispatcher.close, _NOTIFY_DRAIN_S)
        if undelivered:
            log.warning("%d notifications not delivered at shutdown", undelivered)
        self.pm.hook.hacore_daemon_stopping(config=self.config)
        self._handle(self.membership.shutdown(time.time()))
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
        self._handle(membership.receive(message, link, loop.time(), time.time()))
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
                    self.resources.on_node_state(node, new)
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
            await self.resources.move(direction, scopes(scope))
            return {"ok": True}
        if cmd == "cleanup":
            key = str(request.get("group", ""))
            if key not in self.resources.groups:
                return {"ok": False, "error": f"no group '{key}'"}
            self.resources.cleanup(key)
            return {"ok": True}
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
