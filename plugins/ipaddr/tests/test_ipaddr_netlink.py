"""NetlinkAddressPort's own logic around pyroute2 that the kernel cannot be made to exercise on
demand (the namespace tests cover the requests themselves)."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from pyroute2.netlink import NLM_F_DUMP_INTR, NLM_F_MULTI
from pyroute2.netlink.exceptions import NetlinkError

from hacore_ipaddr.netlink import NetlinkAddressPort

T = TypeVar("T")


class Message(dict[str, Any]):
    """Enough of pyroute2's message for the adapter: ``get`` reads attributes by name."""

    def get(self, key: str, default: Any = None) -> Any:
        names = {"local": "IFA_LOCAL"}
        for name, value in self["attrs"]:
            if name == names.get(key, key):
                return value
        return super().get(key, default)


class Dumps:
    """Stands in for AsyncIPRoute: each dump answers the next of ``answers``."""

    def __init__(self, *answers: list[Message]) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def addr(self, command: str, **_: object) -> Any:
        assert command == "dump"
        self.calls += 1
        messages = self.answers.pop(0)

        async def replies() -> Any:
            for message in messages:
                yield message

        return replies()


class Scripted(NetlinkAddressPort):
    """The port with its socket replaced by ``ipr``."""

    def __init__(self, ipr: Any) -> None:
        super().__init__()
        self.ipr = ipr

    async def _request(self, request: Callable[[Any], Awaitable[T]]) -> T:
        return await request(self.ipr)


def address(ip: str, flags: int = NLM_F_MULTI) -> Message:
    return Message(
        header={"flags": flags}, index=2, prefixlen=24, flags=0, attrs=[("IFA_LOCAL", ip)]
    )


def test_an_interrupted_dump_is_done_again() -> None:
    torn = [address("198.51.100.1"), address("198.51.100.2", NLM_F_DUMP_INTR)]
    whole = [address("198.51.100.1"), address("198.51.100.3")]
    ipr = Dumps(torn, whole)
    found = asyncio.run(Scripted(ipr).addresses())
    assert [str(a.ip) for a in found] == ["198.51.100.1", "198.51.100.3"]
    assert ipr.calls == 2


def test_a_dump_interrupted_every_time_is_used_after_the_last_try() -> None:
    torn = [address("198.51.100.1", NLM_F_DUMP_INTR)]
    ipr = Dumps(*[torn] * NetlinkAddressPort.dump_retries)
    found = asyncio.run(Scripted(ipr).addresses())
    assert [str(a.ip) for a in found] == ["198.51.100.1"]
    assert ipr.calls == NetlinkAddressPort.dump_retries


def test_the_kernels_error_answer_is_an_oserror_and_keeps_the_socket() -> None:
    port = NetlinkAddressPort()

    async def refused(ipr: Any) -> None:
        raise NetlinkError(errno.EEXIST)

    async def run() -> tuple[object, object]:
        await port._request(lambda ipr: asyncio.sleep(0))  # opens the socket
        before = port._ipr
        with pytest.raises(OSError) as caught:
            await port._request(refused)
        assert caught.value.errno == errno.EEXIST
        after = port._ipr
        port.close()
        return before, after

    before, after = asyncio.run(run())
    assert before is not None and after is before


def test_a_cancelled_request_closes_the_socket_and_the_next_opens_another() -> None:
    port = NetlinkAddressPort()

    async def run() -> tuple[object, object, object]:
        await port._request(lambda ipr: asyncio.sleep(0))
        first = port._ipr
        hung = asyncio.ensure_future(port._request(lambda ipr: asyncio.sleep(60)))
        await asyncio.sleep(0)
        hung.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hung
        gone = port._ipr
        await port._request(lambda ipr: asyncio.sleep(0))
        second = port._ipr
        port.close()
        return first, gone, second

    first, gone, second = asyncio.run(run())
    assert first is not None and gone is None
    assert second is not None and second is not first
