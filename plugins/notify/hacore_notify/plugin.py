"""hacore-notify's hook implementations: every cluster event, to every configured notifier.

The entry point registers ``plugin``, one ``NotifyPlugin``. hacore calls its event hooks in one
worker thread, in event order (``hacore.dispatch.EventDispatcher``); the hooks only number the
event and queue it for each notifier, which runs in a lane of its own. So a notifier that hangs
until its timeout delays neither the other notifiers nor the cluster, and each notifier still
sees the events in order.

With no notify.toml (see ``hacore_notify.settings``), nothing is started and events are ignored.
"""

from __future__ import annotations

import logging
import threading

from hacore.config.model import ClusterConfig
from hacore.dispatch import Lane, Lanes, LaneStats
from hacore.events import NodeEvent, ResourceEvent
from hacore.hookspecs import hookimpl

from hacore_notify.message import Notice, summary
from hacore_notify.notifiers import make_notifier
from hacore_notify.settings import EventKind, load_settings

__all__ = ["NotifyPlugin", "plugin"]

log = logging.getLogger("hacore.notify")

# A notifier enforces its own timeout; its lane's watchdog only reports one that failed to.
_WATCHDOG_GRACE_S = 2.0
# At shutdown, the last events (the groups released, the node's own stop) are delivered for at
# most this long.
_MAX_DRAIN_S = 10.0


class NotifyPlugin:
    """The hooks, and the notifiers' lanes while the daemon runs."""

    def __init__(self) -> None:
        # Events come from the dispatcher's thread, start and stop from the daemon's loop.
        self._lock = threading.Lock()
        self._lanes: Lanes | None = None
        self._routes: tuple[tuple[Lane[Notice], frozenset[EventKind]], ...] = ()
        self._local_node = ""
        self._sequence = 0
        self._drain_s = 0.0

    @hookimpl
    def hacore_config_validate(self, config: ClusterConfig) -> list[str]:
        return load_settings(config)[1]

    @hookimpl
    def hacore_daemon_started(self, config: ClusterConfig) -> None:
        notifiers, problems = load_settings(config)
        for problem in problems:  # hacore_config_validate refused these already; be loud anyway
            log.error("%s", problem)
        if not notifiers:
            return
        lanes = Lanes()
        routes: list[tuple[Lane[Notice], frozenset[EventKind]]] = []
        longest = 0.0
        for settings in notifiers:
            notifier = make_notifier(settings, config.local_node)
            lane = lanes.add(
                f"notifier {settings.name}",
                notifier.send,
                summary,
                timeout_s=notifier.timeout_s + _WATCHDOG_GRACE_S,
            )
            routes.append((lane, settings.events))
            longest = max(longest, notifier.timeout_s)
        with self._lock:
            previous = self._lanes
            self._lanes, self._routes = lanes, tuple(routes)
            self._local_node, self._sequence = config.local_node, 0
            self._drain_s = min(_MAX_DRAIN_S, longest + _WATCHDOG_GRACE_S)
        if previous is not None:  # started twice without a stop: keep no orphan threads
            previous.close(0)
        log.info("notifiers: %s", ", ".join(s.name for s in notifiers))

    @hookimpl
    def hacore_daemon_stopping(self, config: ClusterConfig) -> None:
        with self._lock:
            lanes, self._lanes, self._routes = self._lanes, None, ()
        if lanes is not None:
            lanes.close(self._drain_s)

    @hookimpl
    def hacore_node_event(self, event: NodeEvent) -> None:
        self._post(event)

    @hookimpl
    def hacore_resource_event(self, event: ResourceEvent) -> None:
        self._post(event)

    def stats(self) -> dict[str, LaneStats]:
        """Notifier lane name -> its counters; empty when no notifier runs."""
        with self._lock:
            return self._lanes.stats() if self._lanes is not None else {}

    def _post(self, event: NodeEvent | ResourceEvent) -> None:
        with self._lock:
            if not self._routes:
                return
            self._sequence += 1
            notice = Notice(event, self._sequence, self._local_node)
            routes = self._routes
        for lane, kinds in routes:
            if notice.kind in kinds:
                lane.put(notice)


plugin = NotifyPlugin()
