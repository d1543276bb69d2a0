"""A lab for real ICMP: the cluster node that pings, and three ping nodes, on one bridge.

    node (198.51.100.1) ── switch (br0) ── pa (.2), pb (.3), pc (.4)

Built with hacore's own ``Lab`` (namespaces ``hcpg-<4 hex>-*``; only documentation addresses; no
interface ever in the host's namespace; torn down even when a test fails). A ping node becomes
unreachable when its switch port goes down, as when its cable is pulled. The plugin runs in a
thread that has entered the node's namespace, so the thread it starts pings from there too.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar

from hacore.lab.netns import Host, Lab

_T = TypeVar("_T")

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass
class PingLab:
    lab: Lab
    node: Host
    pa: Host
    pb: Host
    pc: Host

    @classmethod
    def build(cls) -> PingLab:
        lab = Lab(prefix=f"hcpg-{secrets.token_hex(2)}")
        try:
            hosts = [lab.add_host(name) for name in ("node", "pa", "pb", "pc")]
        except BaseException:
            lab.close()
            raise
        return cls(lab, *hosts)

    def close(self) -> None:
        self.lab.close()


def enter_namespace(netns: str) -> None:
    """Move the calling thread into network namespace ``netns``, and prove it."""
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


def namespace_of(tid: int) -> int:
    """The inode of the network namespace thread ``tid`` (of this process) lives in."""
    return os.stat(f"/proc/self/task/{tid}/ns/net").st_ino


def in_namespace(netns: str, fn: Callable[[], _T]) -> _T:
    """Run ``fn`` in a short-lived thread inside ``netns``: threads and sockets it creates
    belong to that namespace for good."""
    result: Future[_T] = Future()

    def body() -> None:
        try:
            enter_namespace(netns)
            result.set_result(fn())
        except BaseException as err:  # handed to the caller
            result.set_exception(err)

    thread = threading.Thread(target=body, name=f"in {netns}")
    thread.start()
    thread.join(timeout=20)
    return result.result(timeout=0)
