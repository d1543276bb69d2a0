"""EventDispatcher: events reach every plugin in order, off the caller's thread, and no plugin —
slow, hanging or raising — delays another plugin or the caller.

The plugins are ordinary objects with ``@hookimpl`` methods registered on a real PluginManager.
A "hanging" plugin blocks on a threading.Event that the test sets at the end, so no thread
outlives its test by more than one call.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from hacore.agent import OCFResult
from hacore.dispatch import EventDispatcher, Lane, Lanes
from hacore.events import NodeEvent, ResourceAction, ResourceEvent
from hacore.hookspecs import hookimpl
from hacore.lab.netns import wait_for
from hacore.plugins import plugin_manager

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def node_event(n: int) -> NodeEvent:
    # n numbers the events, through the reason, so that order can be checked.
    return NodeEvent(
        node="pc1",
        old_state="up",
        new_state="dead",
        reason=f"#{n}",
        cluster="linux-ha",
        local_node="pc2",
        timestamp=T0,
    )


def resource_event(n: int) -> ResourceEvent:
    return ResourceEvent(
        group="IPaddr::198.51.100.55/24/eth0",
        resource=None,
        action=ResourceAction.FAILOVER,
        result=OCFResult.SUCCESS,
        node="pc2",
        cluster="linux-ha",
        timestamp=T0,
        detail=f"#{n}",
    )


def number(event: NodeEvent | ResourceEvent) -> int:
    text = event.reason if isinstance(event, NodeEvent) else event.detail
    return int(text.removeprefix("#"))


class Recorder:
    """Records the number of every event it is given, with the thread it ran in."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.threads: set[str] = set()

    def _record(self, event: NodeEvent | ResourceEvent) -> None:
        self.threads.add(threading.current_thread().name)
        self.seen.append(number(event))

    @hookimpl
    def hacore_node_event(self, event: NodeEvent) -> None:
        self._record(event)

    @hookimpl
    def hacore_resource_event(self, event: ResourceEvent) -> None:
        self._record(event)


class Hanging(Recorder):
    """Blocks in every call until ``release`` is set; ``entered`` tells that a call began."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    @hookimpl
    def hacore_node_event(self, event: NodeEvent) -> None:
        self.entered.set()
        self.release.wait(timeout=30)
        self._record(event)


class Failing(Recorder):
    """Raises on odd-numbered events, with a message spread over two lines."""

    @hookimpl
    def hacore_node_event(self, event: NodeEvent) -> None:
        if number(event) % 2:
            raise RuntimeError("smtp server said:\n  421 try later")
        self._record(event)


@pytest.fixture
def dispatchers() -> Iterator[list[EventDispatcher]]:
    """Dispatchers the test makes; each is closed at the end (after hanging plugins let go)."""
    made: list[EventDispatcher] = []
    yield made
    for dispatcher in made:
        dispatcher.close(timeout_s=5)


def dispatcher_for(made: list[EventDispatcher], *plugins: object) -> EventDispatcher:
    dispatcher = EventDispatcher(plugin_manager(load_entrypoints=False, plugins=plugins))
    made.append(dispatcher)
    return dispatcher


def test_each_plugin_sees_node_and_resource_events_in_the_order_they_were_given(
    dispatchers: list[EventDispatcher],
) -> None:
    first, second = Recorder(), Recorder()
    dispatcher = dispatcher_for(dispatchers, first, second)

    for n in range(200):
        if n % 3:
            dispatcher.node_event(node_event(n))
        else:
            dispatcher.resource_event(resource_event(n))

    wait_for(lambda: len(first.seen) == len(second.seen) == 200, 5, what="200 events each")
    assert first.seen == second.seen == list(range(200))


def test_plugins_run_in_their_own_threads_not_the_callers(
    dispatchers: list[EventDispatcher],
) -> None:
    first, second = Recorder(), Recorder()
    dispatcher = dispatcher_for(dispatchers, first, second)

    dispatcher.node_event(node_event(1))

    wait_for(lambda: first.seen and second.seen, 5, what="both plugins called")
    caller = threading.current_thread().name
    assert caller not in first.threads | second.threads
    assert first.threads.isdisjoint(second.threads)


def test_a_hanging_plugin_delays_neither_another_plugin_nor_the_caller(
    dispatchers: list[EventDispatcher],
) -> None:
    hanging, quick = Hanging(), Recorder()
    dispatcher = dispatcher_for(dispatchers, hanging, quick)
    dispatcher.node_event(node_event(0))
    assert hanging.entered.wait(5)

    enqueue_times = []
    for n in range(1, 50):
        started = time.perf_counter()
        dispatcher.node_event(node_event(n))
        enqueue_times.append(time.perf_counter() - started)

    wait_for(lambda: len(quick.seen) == 50, 5, what="the quick plugin to see all 50 events")
    assert hanging.seen == []  # still in its first call
    print(f"\nenqueue: worst {max(enqueue_times) * 1e6:.0f} µs over {len(enqueue_times)} events")
    assert max(enqueue_times) < 0.001
    hanging.release.set()
    wait_for(lambda: len(hanging.seen) == 50, 5, what="the hanging plugin to catch up")
    assert hanging.seen == quick.seen == list(range(50))


def test_an_exception_is_logged_on_one_line_naming_the_plugin_and_delivery_goes_on(
    dispatchers: list[EventDispatcher], caplog: pytest.LogCaptureFixture
) -> None:
    failing = Failing()
    pm = plugin_manager(load_entrypoints=False)
    pm.register(failing, name="mailer")
    dispatcher = EventDispatcher(pm)
    dispatchers.append(dispatcher)

    for n in range(6):
        dispatcher.node_event(node_event(n))

    wait_for(lambda: dispatcher.stats()["mailer"]["failed"] == 3, 5, what="three failures")
    wait_for(lambda: failing.seen == [0, 2, 4], 5, what="the even events")
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert failures[0] == (
        "plugin mailer: hacore_node_event(pc1 up->dead) failed: "
        "RuntimeError: smtp server said: 421 try later"
    )
    assert len(failures) == 3
    assert dispatcher.stats()["mailer"] == {
        "delivered": 3,
        "failed": 3,
        "overran": 0,
        "dropped": 0,
        "queued": 0,
        "stuck": False,
    }


def test_a_full_queue_drops_the_oldest_events_and_counts_them(
    dispatchers: list[EventDispatcher], caplog: pytest.LogCaptureFixture
) -> None:
    hanging = Hanging()
    pm = plugin_manager(load_entrypoints=False)
    pm.register(hanging, name="slow")
    dispatcher = EventDispatcher(pm, queue_size=5)
    dispatchers.append(dispatcher)
    dispatcher.node_event(node_event(0))
    assert hanging.entered.wait(5)  # event 0 is in the call, not in the queue

    for n in range(1, 12):
        dispatcher.node_event(node_event(n))

    assert dispatcher.stats()["slow"]["dropped"] == 6
    assert dispatcher.stats()["slow"]["queued"] == 5
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["plugin slow: 5 items waiting, dropping the oldest until it catches up"]
    hanging.release.set()
    wait_for(lambda: len(hanging.seen) == 6, 5, what="the kept events")
    assert hanging.seen == [0, 7, 8, 9, 10, 11]  # the newest are kept, in order


def test_a_call_that_overruns_its_timeout_is_reported_and_later_events_wait_for_it(
    dispatchers: list[EventDispatcher], caplog: pytest.LogCaptureFixture
) -> None:
    hanging = Hanging()
    pm = plugin_manager(load_entrypoints=False)
    pm.register(hanging, name="slow")
    dispatcher = EventDispatcher(pm, timeout_s=0.1)
    dispatchers.append(dispatcher)
    dispatcher.node_event(node_event(0))
    dispatcher.node_event(node_event(1))

    wait_for(lambda: dispatcher.stats()["slow"]["stuck"], 5, what="the lane to be stuck")
    assert dispatcher.stats()["slow"]["queued"] == 1
    assert dispatcher.stats()["slow"]["overran"] == 1
    assert (
        "plugin slow: still in a call after its 0.1 s timeout; its items wait until it returns "
        "(1 waiting, at most 1000 kept)"
    ) in caplog.messages
    hanging.release.set()
    wait_for(lambda: hanging.seen == [0, 1], 5, what="both events, in order")
    stats = dispatcher.stats()["slow"]
    assert (stats["stuck"], stats["delivered"]) == (False, 2)


def test_close_delivers_what_is_queued(dispatchers: list[EventDispatcher]) -> None:
    recorder = Recorder()
    dispatcher = dispatcher_for(dispatchers, recorder)
    for n in range(100):
        dispatcher.node_event(node_event(n))

    assert dispatcher.close(timeout_s=5) == 0
    assert recorder.seen == list(range(100))


def test_close_is_bounded_when_a_plugin_hangs_and_says_what_was_left(
    dispatchers: list[EventDispatcher],
) -> None:
    hanging = Hanging()
    dispatcher = dispatcher_for(dispatchers, hanging)
    for n in range(3):
        dispatcher.node_event(node_event(n))
    assert hanging.entered.wait(5)

    started = time.monotonic()
    left = dispatcher.close(timeout_s=0.2)

    assert time.monotonic() - started < 1
    assert left == 3  # one in the call, two queued
    dispatcher.node_event(node_event(3))  # after close: dropped, not raised
    hanging.release.set()


def test_plugins_without_event_hooks_get_no_thread(dispatchers: list[EventDispatcher]) -> None:
    class Score:
        @hookimpl
        def hacore_connectivity_score(self, node: str) -> int | None:
            return 1

    before = threading.active_count()
    dispatcher = dispatcher_for(dispatchers, Score())
    dispatcher.node_event(node_event(1))

    assert threading.active_count() == before
    assert dispatcher.stats() == {}


def test_an_implementation_may_take_no_arguments(dispatchers: list[EventDispatcher]) -> None:
    calls: list[str] = []

    class Bell:
        @hookimpl
        def hacore_node_event(self) -> None:
            calls.append("ring")

    dispatcher = dispatcher_for(dispatchers, Bell())
    dispatcher.node_event(node_event(1))

    wait_for(lambda: calls == ["ring"], 5, what="the bell")


def test_lanes_run_at_normal_priority_when_made_from_a_realtime_thread() -> None:
    # The daemon's loop runs SCHED_FIFO and threads inherit their creator's policy.
    policies: list[int] = []
    refused: list[OSError] = []
    lanes = Lanes()

    def make_lane() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        except OSError as err:
            refused.append(err)
            return
        lane: Lane[None] = lanes.add("probe", lambda _: policies.append(os.sched_getscheduler(0)))
        lane.put(None)

    maker = threading.Thread(target=make_lane)
    maker.start()
    maker.join(5)
    if refused:
        pytest.fail(f"cannot use SCHED_FIFO here ({refused[0].strerror}): run the tests as root")
    assert lanes.close(timeout_s=5) == 0
    assert policies == [os.SCHED_OTHER]
