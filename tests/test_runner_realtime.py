"""Agent workers take the daemon's realtime class (it is not inherited across threads started
after SCHED_RESET_ON_FORK), and leave it when abandoned."""

from __future__ import annotations

import os
import threading

import pytest

from hacore.resources.runner import Worker

TIMEOUT = 20.0


async def _policy() -> int:
    return os.sched_getscheduler(0)


def _in_thread(fifo: bool) -> tuple[int, int, int]:
    """From a new thread (realtime if ``fifo``): the worker's class while it runs, its class
    after close, and its creator's class."""
    out: list[tuple[int, int, int]] = []
    failed: list[BaseException] = []

    def body() -> None:
        try:
            if fifo:
                policy = os.SCHED_FIFO | os.SCHED_RESET_ON_FORK
                os.sched_setscheduler(0, policy, os.sched_param(1))
            worker = Worker("test")
            running = worker.submit(_policy).result(TIMEOUT)
            tid = worker._thread.native_id
            assert tid is not None
            worker.close()
            after = os.sched_getscheduler(tid) if worker._thread.is_alive() else -1
            worker._thread.join(TIMEOUT)
            out.append((running, after, os.sched_getscheduler(0)))
        except BaseException as err:  # reported by the test thread
            failed.append(err)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    if failed:
        raise failed[0]
    return out[0]


def test_a_worker_started_by_a_realtime_thread_is_realtime_until_closed() -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root (SCHED_FIFO); run the suite as root")
    running, after, creator = _in_thread(fifo=True)
    assert running == os.SCHED_FIFO | os.SCHED_RESET_ON_FORK
    assert after in (os.SCHED_OTHER, -1)  # demoted, or already gone
    assert creator == os.SCHED_FIFO | os.SCHED_RESET_ON_FORK


def test_a_worker_of_a_normal_thread_stays_normal() -> None:
    running, _, _ = _in_thread(fifo=False)
    assert running == os.SCHED_OTHER
