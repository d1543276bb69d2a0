"""hacore.lab.nsloop: code of this process acting from inside a lab host's network namespace."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from hacore.lab import Lab
from hacore.lab.nsloop import NamespaceLoop, in_namespace, namespace_of

pytestmark = pytest.mark.netns


def _here() -> int:
    return namespace_of(threading.get_native_id())


def test_in_namespace_runs_in_the_hosts_namespace_and_the_caller_stays_home(lab: Lab) -> None:
    a, b = lab.add_host("a"), lab.add_host("b")
    home = _here()

    in_a, in_b = in_namespace(a.netns, _here), in_namespace(b.netns, _here)

    assert len({home, in_a, in_b}) == 3
    assert _here() == home


def test_in_namespace_hands_the_exception_to_the_caller(lab: Lab) -> None:
    host = lab.add_host("a")

    def fail() -> None:
        raise ValueError("from inside")

    with pytest.raises(ValueError, match="from inside"):
        in_namespace(host.netns, fail)


def test_a_socket_opened_in_a_namespace_stays_there(lab: Lab) -> None:
    host = lab.add_host("a")

    def bound() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((host.address, 0))
        except BaseException:
            sock.close()
            raise
        return sock

    in_namespace(host.netns, bound).close()  # the host's address is there...
    with pytest.raises(OSError):
        bound().close()  # ...and not here


def test_the_loop_and_its_executor_threads_run_in_the_namespace(lab: Lab) -> None:
    host = lab.add_host("a")
    expected = in_namespace(host.netns, _here)

    async def where() -> tuple[int, int]:
        return _here(), await asyncio.get_running_loop().run_in_executor(None, _here)

    with NamespaceLoop(host.netns) as loop:
        assert loop.netns == host.netns
        assert loop.run(where()) == (expected, expected)
    loop.close()  # closing again does nothing


def test_run_gives_up_after_its_timeout_and_close_cancels_what_is_left(lab: Lab) -> None:
    host = lab.add_host("a")
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with NamespaceLoop(host.netns, run_timeout=0.1) as loop, pytest.raises(TimeoutError):
        loop.run(forever())
    assert cancelled.is_set()


def test_a_missing_namespace_is_an_error_not_the_machines_namespace() -> None:
    with pytest.raises(FileNotFoundError):
        NamespaceLoop("hc-no-such-namespace")
    with pytest.raises(FileNotFoundError):
        in_namespace("hc-no-such-namespace", _here)
