"""What the real tests need besides hacore.lab: an event loop inside a node's namespace (where
the agent runs, so the apache it starts lives there), sockets opened in a namespace, and a
clean-up that kills an apache instance by the pids it owns.

The namespaces themselves come from ``hacore.lab.Lab`` (prefix ``hcap-<4 hex>``): a switch, the
nodes and a client, documentation addresses only, and a teardown that deletes them whatever
happens.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hacore.lab import Host, Lab

from hacore_apache import processes
from hacore_apache.site import ApacheSite, write_site

_T = TypeVar("_T")

CLONE_NEWNET = 0x40000000
HTTPD = Path("/usr/sbin/apache2")

_libc = ctypes.CDLL(None, use_errno=True)

SiteFactory = Callable[..., ApacheSite]


def missing_tools() -> str | None:
    """Why the real tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    for tool, package in (("ip", "iproute2"), ("curl", "curl"), ("openssl", "openssl")):
        if shutil.which(tool) is None:
            return f"needs {tool} (apt-get install {package})"
    if not HTTPD.exists():
        return "needs apache2 (apt-get install apache2)"
    return None


def enter_namespace(name: str) -> None:
    """Move the calling thread into network namespace ``name``, and prove it."""
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
    """An asyncio event loop running in a thread inside a network namespace. Subprocesses and
    threads it starts inherit the namespace: the apache the agent launches lives there."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop = asyncio.new_event_loop()
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=f"loop {name}")
        self._thread.start()
        ready.result(timeout=20)

    def _run(self, ready: Future[None]) -> None:
        try:
            enter_namespace(self.name)
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

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float = 90) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=20)


def in_namespace(name: str, fn: Callable[[], _T]) -> _T:
    """Run ``fn`` in a short-lived thread inside namespace ``name`` (a socket it opens stays in
    that namespace for its whole life)."""
    result: Future[_T] = Future()

    def body() -> None:
        try:
            enter_namespace(name)
            result.set_result(fn())
        except BaseException as err:  # handed to the caller
            result.set_exception(err)

    thread = threading.Thread(target=body, name=f"in {name}")
    thread.start()
    thread.join(timeout=20)
    return result.result(timeout=0)


def open_connection(netns: str, host: str, port: int) -> socket.socket:
    """A TCP connection to ``host:port`` made from namespace ``netns``."""
    return in_namespace(netns, lambda: socket.create_connection((host, port), timeout=5))


def instance_pids(site: ApacheSite) -> tuple[int, ...]:
    """Every live process of the site's apache: the master in its pid file and its group."""
    return processes.inspect(site.pid_file, HTTPD, site.config).all


def kill_instance(site: ApacheSite, pid: int | None = None) -> None:
    """SIGKILL every process of the site's apache (the pid file's master, or ``pid``, and the
    process group it leads), by pid: for teardown after a failed test."""
    found = (
        processes.inspect_pid(pid, HTTPD, site.config)
        if pid is not None
        else processes.inspect(site.pid_file, HTTPD, site.config)
    )
    processes.signal_all(found.all, signal.SIGKILL)
    wait_for(lambda: not any(processes.alive(p) for p in found.all), 5, "apache to die")


def wait_for(condition: Callable[[], _T], timeout: float, what: str) -> _T:
    """Poll ``condition`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)


class SiteRegistry:
    """Sites written in a directory that apache's children (www-data) can enter: pytest's
    tmp_path is under /tmp/pytest-of-root, which is mode 0700."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hcap-site-"))
        self.root.chmod(0o755)
        self.written: list[ApacheSite] = []

    def write(self, node: str, **options: Any) -> ApacheSite:
        site = write_site(self.root / node, node, **options)
        self.written.append(site)
        return site

    def kill_all(self) -> None:
        """Kill every apache of these sites, by the pids of its pid file and process group."""
        for site in self.written:
            kill_instance(site)

    def remove(self) -> None:
        self.kill_all()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class ApacheLab:
    lab: Lab
    node: Host  # n1, where the agent runs
    client: Host
    loops: list[NamespaceLoop] = field(default_factory=list)

    def loop(self, host: Host) -> NamespaceLoop:
        """An event loop in ``host``'s namespace, closed at teardown."""
        loop = NamespaceLoop(host.netns)
        self.loops.append(loop)
        return loop
