"""Running plugin code off the event loop: events for notifiers, in order, one lane per plugin.

``EventDispatcher`` hands each ``NodeEvent`` and ``ResourceEvent`` to the ``hacore_node_event`` and
``hacore_resource_event`` implementations without ever waiting for them. Every plugin that
implements either hook gets its own *lane*: a worker thread and a bounded queue. Enqueueing is a
few microseconds under one lock, so the daemon's loop (and with it the keepalive path) never waits
for a notifier, and one slow or hanging plugin never delays another.

Per lane:

- events are delivered **in order** (node and resource events interleaved as they happened),
  **one at a time**;
- a call that raises is logged on one line naming the plugin, counted, and the next event goes
  on; nothing is ever propagated;
- each call runs under a **timeout** (10 s by default). Python cannot stop a thread, so a call
  that overruns is not cut off: it is logged, counted, and the lane is marked *stuck*. Events for
  that plugin wait in its queue until the call returns, and are then delivered in order;
- the queue is **bounded** (1000 by default): when it is full the oldest event is dropped, with
  one warning per burst and a counter, so a plugin that hangs forever costs bounded memory.

``Lanes`` is the same machinery without pluggy, for a plugin that fans out to independent
destinations of its own (hacore-notify gives each configured notifier a lane).

Threads are started by ``spawn_thread``: daemon threads, so a hung plugin cannot hold up the
process's exit, with a small stack and at normal scheduling priority, because the daemon runs
``realtime`` (SCHED_FIFO, inherited by new threads; ``mlockall`` makes every thread's stack
resident, 8 MiB each at the default size).
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

import pluggy

from hacore.events import NodeEvent, ResourceEvent

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_TIMEOUT_S",
    "EventDispatcher",
    "Lane",
    "LaneStats",
    "Lanes",
    "spawn_thread",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_QUEUE_SIZE = 1000
# Enough for urllib over TLS and smtplib; the default (ulimit -s, usually 8 MiB) would be locked
# into memory whole by the daemon's mlockall(MCL_FUTURE).
THREAD_STACK_SIZE = 512 * 1024

_NODE_HOOK = "hacore_node_event"
_RESOURCE_HOOK = "hacore_resource_event"

# threading.stack_size() is process-wide: hold it only while starting one thread.
_stack_lock = threading.Lock()


def spawn_thread(target: Callable[[], object], name: str) -> threading.Thread:
    """Start ``target`` in a daemon thread with a small stack, at normal scheduling priority."""

    def body() -> None:
        _normal_priority()
        target()

    thread = threading.Thread(target=body, name=name, daemon=True)
    with _stack_lock:
        previous = threading.stack_size(THREAD_STACK_SIZE)
        try:
            thread.start()
        finally:
            threading.stack_size(previous)
    return thread


def _normal_priority() -> None:
    # A thread inherits the scheduling policy of the thread that created it, and the daemon's
    # loop runs SCHED_FIFO: plugin code must never compete with keepalives at that priority.
    # Lowering one's own policy needs no privilege (Linux applies it to this thread only).
    try:
        if os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except OSError as err:  # not expected; a notifier at a higher priority still works
        log.debug("cannot return thread %s to normal priority: %s", threading.current_thread(), err)


@dataclass(frozen=True)
class LaneStats:
    """One lane's counters, since it was made."""

    delivered: int  # calls that returned
    failed: int  # calls that raised
    overran: int  # calls that outlived the timeout (they still count as delivered or failed)
    dropped: int  # items dropped unseen: the queue was full, or the lane was closed
    queued: int  # items waiting now
    stuck: bool  # a call is running past its timeout now


class Lane(Generic[T]):
    """A worker thread feeding items to ``deliver`` in order, one at a time. Made by ``Lanes``."""

    def __init__(
        self,
        name: str,
        deliver: Callable[[T], object],
        describe: Callable[[T], str],
        *,
        timeout_s: float,
        queue_size: int,
        watchdog: _Watchdog,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, not {queue_size}")
        self.name = name
        self.timeout_s = timeout_s
        self._deliver = deliver
        self._describe = describe
        self._queue_size = queue_size
        self._watchdog = watchdog
        self._cond = threading.Condition()
        self._queue: collections.deque[T] = collections.deque()
        self._closing = False
        self._call = 0  # number of the call in progress or last made
        self._busy_since: float | None = None
        self._stuck = False
        self._burst_drops = 0  # dropped since the worker last took an item
        self._delivered = self._failed = self._overran = self._dropped = 0
        self._thread = spawn_thread(self._run, f"hacore lane: {name}")

    def put(self, item: T) -> None:
        """Queue ``item``; never blocks (beyond a short lock) and never raises."""
        with self._cond:
            if self._closing:
                self._dropped += 1
                log.debug("%s: closed, dropping %s", self.name, self._describe(item))
                return
            first_drop = False
            if len(self._queue) >= self._queue_size:
                self._queue.popleft()
                self._dropped += 1
                self._burst_drops += 1
                first_drop = self._burst_drops == 1
            self._queue.append(item)
            self._cond.notify()
        if first_drop:
            log.warning(
                "%s: %d items waiting, dropping the oldest until it catches up",
                self.name,
                self._queue_size,
            )

    def stats(self) -> LaneStats:
        with self._cond:
            return LaneStats(
                delivered=self._delivered,
                failed=self._failed,
                overran=self._overran,
                dropped=self._dropped,
                queued=len(self._queue),
                stuck=self._stuck,
            )

    def _close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()

    def _join(self, timeout_s: float) -> int:
        """Wait for the queue to drain; the number of items left undelivered (a call in
        progress included)."""
        self._thread.join(max(0.0, timeout_s))
        with self._cond:
            left = len(self._queue) + int(self._busy_since is not None)
            if left:
                log.warning(
                    "%s: %d items left undelivered at close%s",
                    self.name,
                    left,
                    " (stuck in a call)" if self._stuck else "",
                )
            return left

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return  # closing, and everything delivered
                item = self._queue.popleft()
                burst_drops, self._burst_drops = self._burst_drops, 0
                self._call += 1
                call = self._call
                started = self._busy_since = time.monotonic()
            if burst_drops:
                log.warning("%s: %d items were dropped while it was behind", self.name, burst_drops)
            self._watchdog.watch(
                self, started + self.timeout_s, functools.partial(self._deadline_passed, call)
            )
            failed = False
            try:
                self._deliver(item)
            # The top of this thread: anything not caught here would end the lane for good.
            except BaseException as err:
                failed = True
                reason = " ".join(str(err).split())  # one log line, whatever the message holds
                log.warning(
                    "%s: %s failed: %s%s",
                    self.name,
                    self._describe(item),
                    type(err).__name__,
                    f": {reason}" if reason else "",
                )
                log.debug("%s: traceback", self.name, exc_info=True)
            self._watchdog.unwatch(self)
            with self._cond:
                if failed:
                    self._failed += 1
                else:
                    self._delivered += 1
                self._busy_since = None
                was_stuck, self._stuck = self._stuck, False
                waiting = len(self._queue)
            if was_stuck:
                log.warning(
                    "%s: returned after %.1f s; delivering the %d items that waited",
                    self.name,
                    time.monotonic() - started,
                    waiting,
                )

    def _deadline_passed(self, call: int) -> None:
        """Called by the watchdog when call number ``call`` reached its deadline."""
        with self._cond:
            if self._call != call or self._busy_since is None:
                return  # it returned meanwhile
            self._stuck = True
            self._overran += 1
            waiting = len(self._queue)
        log.warning(
            "%s: still in a call after its %g s timeout; its items wait until it returns "
            "(%d waiting, at most %d kept)",
            self.name,
            self.timeout_s,
            waiting,
            self._queue_size,
        )


class _Watchdog:
    """One thread that notices calls outliving their deadline, for every lane of a ``Lanes``."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # Lane (by identity) -> its call's deadline and what to do when it passes.
        self._deadlines: dict[object, tuple[float, Callable[[], None]]] = {}
        self._closed = False
        self._thread: threading.Thread | None = None

    def watch(self, lane: object, deadline: float, overran: Callable[[], None]) -> None:
        with self._cond:
            if self._thread is None and not self._closed:
                self._thread = spawn_thread(self._run, "hacore lane watchdog")
            self._deadlines[lane] = (deadline, overran)
            self._cond.notify()

    def unwatch(self, lane: object) -> None:
        with self._cond:
            self._deadlines.pop(lane, None)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [lane for lane, (at, _) in self._deadlines.items() if at <= now]
                overran = [self._deadlines.pop(lane)[1] for lane in due]
                if not overran:
                    if self._closed:
                        return
                    soonest = min((at for at, _ in self._deadlines.values()), default=None)
                    self._cond.wait(None if soonest is None else soonest - now)
                    continue
            for callback in overran:  # outside our lock: a lane takes its own
                callback()


class Lanes:
    """A set of lanes sharing one timeout watchdog; closed together."""

    def __init__(
        self, *, timeout_s: float = DEFAULT_TIMEOUT_S, queue_size: int = DEFAULT_QUEUE_SIZE
    ) -> None:
        self.timeout_s = timeout_s
        self.queue_size = queue_size
        self._watchdog = _Watchdog()
        self._lanes: dict[str, Lane[Any]] = {}

    def add(
        self,
        name: str,
        deliver: Callable[[T], object],
        describe: Callable[[T], str] = repr,
        *,
        timeout_s: float | None = None,
    ) -> Lane[T]:
        """A new lane called ``name`` (as log lines and ``stats()`` name it), with its thread."""
        if name in self._lanes:
            raise ValueError(f"there is already a lane called {name!r}")
        lane = Lane(
            name,
            deliver,
            describe,
            timeout_s=self.timeout_s if timeout_s is None else timeout_s,
            queue_size=self.queue_size,
            watchdog=self._watchdog,
        )
        self._lanes[name] = lane
        return lane

    def stats(self) -> dict[str, LaneStats]:
        return {name: lane.stats() for name, lane in self._lanes.items()}

    def close(self, timeout_s: float) -> int:
        """Refuse new items, deliver what is queued within ``timeout_s`` in all, and return the
        number of items left undelivered (a lane that is still busy keeps its daemon thread)."""
        deadline = time.monotonic() + timeout_s
        for lane in self._lanes.values():
            lane._close()
        left = sum(lane._join(deadline - time.monotonic()) for lane in self._lanes.values())
        self._watchdog.close()
        return left


# One hook implementation and the event to give it.
_Call = tuple[pluggy.HookImpl, NodeEvent | ResourceEvent]


class EventDispatcher:
    """Delivers events to every plugin's event hooks, each plugin in its own lane.

    The plugins are those registered on ``pm`` when the dispatcher is made. ``node_event`` and
    ``resource_event`` only enqueue: call them from the event loop. ``close`` at shutdown, after
    the last event (the local node's own stop) and before ``hacore_daemon_stopping``.
    """

    def __init__(
        self,
        pm: pluggy.PluginManager,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        self._lanes = Lanes(timeout_s=timeout_s, queue_size=queue_size)
        impls: dict[str, dict[str, pluggy.HookImpl]] = {}
        for hook in (_NODE_HOOK, _RESOURCE_HOOK):
            for impl in getattr(pm.hook, hook).get_hookimpls():
                # A wrapper wraps other plugins' calls; one lane per plugin has nothing for it.
                if not (impl.wrapper or impl.hookwrapper):
                    impls.setdefault(impl.plugin_name, {})[hook] = impl
        self._by_plugin: dict[str, Lane[_Call]] = {}
        # Hook -> the lanes of the plugins implementing it, each with its implementation.
        self._routes: dict[str, list[tuple[Lane[_Call], pluggy.HookImpl]]] = {
            _NODE_HOOK: [],
            _RESOURCE_HOOK: [],
        }
        for plugin_name, hooks in impls.items():
            lane = self._lanes.add(f"plugin {plugin_name}", _call, _describe)
            self._by_plugin[plugin_name] = lane
            for hook, impl in hooks.items():
                self._routes[hook].append((lane, impl))

    def node_event(self, event: NodeEvent) -> None:
        """Queue ``event`` for every ``hacore_node_event`` implementation; returns at once."""
        for lane, impl in self._routes[_NODE_HOOK]:
            lane.put((impl, event))

    def resource_event(self, event: ResourceEvent) -> None:
        """Queue ``event`` for every ``hacore_resource_event`` implementation; returns at once."""
        for lane, impl in self._routes[_RESOURCE_HOOK]:
            lane.put((impl, event))

    def stats(self) -> dict[str, dict[str, int | bool]]:
        """Plugin name -> its lane's counters (see ``LaneStats``), ready for JSON."""
        return {name: asdict(lane.stats()) for name, lane in self._by_plugin.items()}

    def close(self, timeout_s: float) -> int:
        """Deliver what is queued, for at most ``timeout_s``; the number left undelivered."""
        return self._lanes.close(timeout_s)


def _call(call: _Call) -> None:
    impl, event = call
    # What pluggy does for each implementation: pass the arguments it declared, by position.
    arguments = {"event": event}
    impl.function(*(arguments[name] for name in impl.argnames))


def _describe(call: _Call) -> str:
    impl, event = call
    if isinstance(event, NodeEvent):
        what = f"{event.node} {event.old_state}->{event.new_state}"
    else:
        what = f"{event.group} {event.action} {event.result.name} on {event.node}"
    return f"{impl.function.__name__}({what})"
