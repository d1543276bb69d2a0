"""Acting as a lab host from inside this process: threads that have entered its namespace.

``setns(2)`` moves only the calling thread into a network namespace, and what that thread makes
there stays there: a socket keeps the namespace it was opened in for its whole life, and a
process or thread it starts begins in the same namespace. So a test that must act *as* a lab
host (run an agent whose scripts and sockets must touch that host's ``eth0``, start a plugin
whose thread pings from there, open a connection from a client) does so in a thread that has
entered the host's namespace, while the test's own thread stays where it was.

- ``NamespaceLoop``: an asyncio event loop in such a thread; ``run`` a coroutine on it and wait.
- ``in_namespace``: run one function in a short-lived such thread and return what it returns.
- ``enter_namespace``: move the calling thread into a namespace, and check that it moved.
- ``namespace_of``: which network namespace a thread of this process is in.

Namespaces are named as ``ip netns`` names them (``/run/netns/<name>``): a lab ``Host`` is
``host.netns``. Entering is always checked, because code run from the wrong namespace would
change the machine's own network. Needs root (``CAP_SYS_ADMIN``), like the lab itself.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = [
    "CLONE_NEWNET",
    "NamespaceLoop",
    "enter_namespace",
    "in_namespace",
    "namespace_of",
]

T = TypeVar("T")

CLONE_NEWNET = 0x40000000  # <linux/sched.h>: setns() into a network namespace
# How long a thread may take to enter its namespace (and a loop to start), or to finish.
THREAD_TIMEOUT = 20.0
# NamespaceLoop.run's default bound on one coroutine.
RUN_TIMEOUT = 30.0

_libc = ctypes.CDLL(None, use_errno=True)


def namespace_of(tid: int) -> int:
    """The inode of the network namespace that thread ``tid`` (of this process) is in: equal
    inodes, same namespace (``threading.get_native_id()`` is the calling thread's ``tid``)."""
    return os.stat(f"/proc/self/task/{tid}/ns/net").st_ino


def enter_namespace(netns: str) -> None:
    """Move the calling thread into network namespace ``netns``, and prove that it is there.

    Raises ``OSError`` when ``setns`` fails (no such namespace, not root), ``RuntimeError``
    when the thread is not in ``netns`` afterwards.
    """
    path = f"/run/netns/{netns}"
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {netns}: {os.strerror(err)}")
    finally:
        os.close(fd)
    if namespace_of(threading.get_native_id()) != os.stat(path).st_ino:
        raise RuntimeError(f"thread did not enter network namespace {netns}")


def in_namespace(netns: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a short-lived thread inside ``netns`` and return its result (or raise its
    exception). Sockets and threads it creates belong to that namespace for good."""
    result: Future[T] = Future()

    def body() -> None:
        try:
            enter_namespace(netns)
            result.set_result(fn())
        except BaseException as err:  # handed to the caller
            result.set_exception(err)

    thread = threading.Thread(target=body, name=f"in {netns}")
    thread.start()
    thread.join(timeout=THREAD_TIMEOUT)
    return result.result(timeout=0)


class NamespaceLoop:
    """An asyncio event loop running in a thread inside network namespace ``netns``.

    The thread enters the namespace before the loop starts (the constructor raises if it
    cannot), so everything run on the loop acts from there: subprocesses it spawns, threads its
    executor starts and sockets it opens all live in ``netns``. ``run`` waits at most
    ``run_timeout`` seconds unless told otherwise. ``close`` (or leaving a ``with`` block) stops
    the loop and shuts it down as ``asyncio.run`` does; it is idempotent.
    """

    def __init__(self, netns: str, *, run_timeout: float = RUN_TIMEOUT) -> None:
        self.netns = netns
        self.run_timeout = run_timeout
        self._loop = asyncio.new_event_loop()
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=f"loop {netns}")
        self._thread.start()
        ready.result(timeout=THREAD_TIMEOUT)

    def _run(self, ready: Future[None]) -> None:
        try:
            enter_namespace(self.netns)
        except BaseException as err:
            ready.set_exception(err)
            self._loop.close()
            return
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(ready.set_result, None)
        self._loop.run_forever()
        # Shut down like asyncio.run: cancel what is left, then the executor's threads.
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.run_until_complete(self._loop.shutdown_default_executor())
        self._loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result (or exception); ``TimeoutError``
        after ``timeout`` seconds (default: ``run_timeout``)."""
        wait = self.run_timeout if timeout is None else timeout
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(wait)

    def close(self) -> None:
        """Stop the loop, cancel what is still running on it and wait for its thread."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=THREAD_TIMEOUT)

    def __enter__(self) -> NamespaceLoop:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
