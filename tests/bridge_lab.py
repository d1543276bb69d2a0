"""A node in a namespace lab, and an event loop that runs the bridge's actions inside it.

    hcbr-<id>-sw (br0) ── hcbr-<id>-node (eth0 198.51.100.1/24)

The lab is hacore.lab's: every interface is created inside a lab namespace, so a shell agent
that adds an address (IPaddr2) can only ever touch the node's eth0, never the host's. The
bridge forks its scripts from the thread that awaits them, so running the event loop in a
thread that has entered the node's namespace puts every script there too.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import secrets
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from hacore.lab import Host, Lab

_T = TypeVar("_T")

CLONE_NEWNET = 0x40000000
NODE_IP = "198.51.100.1"

_libc = ctypes.CDLL(None, use_errno=True)


def lab_prefix() -> str:
    """``hcbr-<4 hex>``: this file's labs are recognisable in `ip netns list`."""
    return f"hcbr-{secrets.token_hex(2)}"


def add_node(lab: Lab) -> Host:
    return lab.add_host("node", address=NODE_IP)


def enter_namespace(name: str) -> None:
    """Move the calling thread into network namespace ``name``, and prove it: an agent run from
    the wrong namespace would change the host's own network."""
    path = f"/run/netns/{name}"
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {name}: {os.strerror(err)}")
    finally:
        os.close(fd)
    if os.stat("/proc/thread-self/ns/net").st_ino != os.stat(path).st_ino:
        raise RuntimeError(f"thread did not enter network namespace {name}")


class NamespaceLoop:
    """An asyncio event loop running in a thread inside a network namespace."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self._loop = asyncio.new_event_loop()
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=f"loop {netns}")
        self._thread.start()
        ready.result(timeout=20)

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

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float = 120) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=20)
