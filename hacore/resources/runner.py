"""Running agent actions off the keepalive path, each under its timeout.

Agents are asynchronous, but an agent may still block by mistake (a synchronous call, a slow
import, a busy loop). So actions never run on the daemon's event loop: each group has a worker
thread with an event loop of its own, and the daemon awaits the result with a timeout. A timed
out action is cancelled; if the worker is so stuck that it cannot even be cancelled, it is
abandoned and the group gets a fresh worker, so one hung agent never holds up anything else.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class ActionTimeout(Exception):  # noqa: N818 - reads as the condition, as TimeoutError does
    def __init__(self, what: str, timeout_s: float) -> None:
        super().__init__(f"{what} did not finish within {timeout_s:g} s")


class Worker:
    """One thread running one event loop, for the actions of one group."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop = asyncio.new_event_loop()
        # The daemon's realtime class (SCHED_FIFO with RESET_ON_FORK) is not inherited by the
        # threads it starts, and a failover's start and a planned move's stop run here: on a
        # loaded machine a normal-priority worker waits milliseconds for a CPU. The worker
        # takes its creator's class (RESET_ON_FORK still keeps agents' processes off it).
        self._policy = _scheduling()
        self._thread = threading.Thread(target=self._run, name=f"hacore-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._policy is not None:
            _set_scheduling(0, self._policy)
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, make: Callable[[], Awaitable[T]]) -> concurrent.futures.Future[T]:
        async def call() -> T:
            try:
                return await make()
            except (SystemExit, KeyboardInterrupt) as exc:
                # Out of a task these end the worker's event loop, and the future would never
                # be resolved: an agent calling sys.exit() has failed its action, no more.
                raise RuntimeError(f"the agent raised {exc!r}") from None

        return asyncio.run_coroutine_threadsafe(call(), self._loop)

    def close(self) -> None:
        # An abandoned worker may be stuck in a busy loop: never leave it in the realtime class.
        if self._thread.native_id is not None and self._policy is not None:
            _set_scheduling(self._thread.native_id, None)
        self._loop.call_soon_threadsafe(self._loop.stop)


class Runner:
    """Runs actions for named groups; ``call`` is awaited on the daemon's loop."""

    def __init__(self) -> None:
        self._workers: dict[str, Worker] = {}

    def _worker(self, group: str) -> Worker:
        worker = self._workers.get(group)
        if worker is None or not worker.alive:
            worker = self._workers[group] = Worker(group)
        return worker

    async def call(
        self, group: str, what: str, make: Callable[[], Awaitable[T]], timeout_s: float
    ) -> T:
        """Run ``make()`` in the group's worker; raise ActionTimeout after ``timeout_s``."""
        future = self._worker(group).submit(make)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
        except TimeoutError:
            future.cancel()
            # If cancelling does not land promptly the worker's loop is blocked: abandon it.
            cancelled = asyncio.wrap_future(self._worker(group).submit(_noop))
            try:
                await asyncio.wait_for(cancelled, 1.0)
            except TimeoutError:
                log.error("%s: the agent blocks its thread; giving the group a new one", what)
                self._workers.pop(group).close()
            raise ActionTimeout(what, timeout_s) from None

    def close(self) -> None:
        for worker in self._workers.values():
            worker.close()
        self._workers.clear()


async def _noop() -> None:
    return None


def _scheduling() -> tuple[int, int] | None:
    """The calling thread's realtime policy and priority, or None if it is not realtime."""
    try:
        policy = os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK
        if policy not in (os.SCHED_FIFO, os.SCHED_RR):
            return None
        return policy, os.sched_getparam(0).sched_priority
    except OSError:
        return None


def _set_scheduling(tid: int, policy: tuple[int, int] | None) -> None:
    """Put thread ``tid`` (0: the caller) in ``policy``, or back in the normal class."""
    try:
        if policy is None:
            os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
        else:
            kind, priority = policy
            os.sched_setscheduler(tid, kind | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
    except OSError as err:  # best effort, as the daemon's own realtime switch
        log.debug("cannot set the scheduling of thread %d: %s", tid, err.strerror)
