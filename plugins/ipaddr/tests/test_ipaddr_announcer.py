"""Pacing of announcement bursts, with a sender that records instead of sending."""

from __future__ import annotations

import asyncio
import errno
import os
import time
from ipaddress import IPv4Address

import pytest

from hacore_ipaddr.announce import Announcement, Announcer, RoundSender

WHAT = Announcement("eth0", 2, bytes.fromhex("00005e005301"), IPv4Address("198.51.100.100"))


class RecordingSender:
    def __init__(self, failures: int = 0) -> None:
        self.rounds = 0
        self.closed = False
        self.failures = failures

    async def send_round(self) -> None:
        self.rounds += 1
        if self.rounds <= self.failures:
            raise OSError(errno.ENETDOWN, os.strerror(errno.ENETDOWN))

    def close(self) -> None:
        self.closed = True


def recording(sender: RecordingSender) -> Announcer:
    def opener(what: Announcement) -> RoundSender:
        assert what == WHAT
        return sender

    return Announcer(opener)


async def until_closed(*senders: RecordingSender) -> None:
    """Let the loop run until the senders are closed (in a worker thread, after the burst)."""
    deadline = time.monotonic() + 5
    while not all(s.closed for s in senders):
        if time.monotonic() > deadline:
            raise AssertionError("the burst did not finish")
        await asyncio.sleep(0.001)


def test_first_round_is_sent_before_announce_returns() -> None:
    async def scenario() -> None:
        sender = RecordingSender()
        announcer = recording(sender)
        await announcer.announce(WHAT, count=5, interval_ms=60_000)
        assert sender.rounds == 1
        assert announcer.busy
        await announcer.cancel()

    asyncio.run(scenario())


def test_remaining_rounds_follow_in_the_background_then_the_socket_closes() -> None:
    async def scenario() -> None:
        sender = RecordingSender()
        announcer = recording(sender)
        await announcer.announce(WHAT, count=5, interval_ms=0)
        await until_closed(sender)
        assert (sender.rounds, announcer.busy) == (5, False)

    asyncio.run(scenario())


def test_cancel_stops_the_burst_and_closes_the_socket() -> None:
    async def scenario() -> None:
        sender = RecordingSender()
        announcer = recording(sender)
        await announcer.announce(WHAT, count=5, interval_ms=60_000)
        await announcer.cancel()
        assert not announcer.busy
        await until_closed(sender)
        assert sender.rounds == 1

    asyncio.run(scenario())


def test_a_new_burst_replaces_the_running_one() -> None:
    async def scenario() -> None:
        first, second = RecordingSender(), RecordingSender()
        senders = iter([first, second])
        announcer = Announcer(lambda what: next(senders))
        await announcer.announce(WHAT, count=5, interval_ms=60_000)
        await announcer.announce(WHAT, count=5, interval_ms=60_000)
        assert announcer.busy
        await until_closed(first)
        assert (first.rounds, second.rounds, second.closed) == (1, 1, False)
        await announcer.cancel()

    asyncio.run(scenario())


def test_a_single_round_needs_no_background_task() -> None:
    async def scenario() -> None:
        sender = RecordingSender()
        announcer = recording(sender)
        await announcer.announce(WHAT, count=1, interval_ms=200)
        assert (sender.rounds, announcer.busy) == (1, False)
        await until_closed(sender)

    asyncio.run(scenario())


def test_zero_rounds_open_nothing() -> None:
    def opener(what: Announcement) -> RoundSender:
        raise AssertionError("no socket wanted")

    asyncio.run(Announcer(opener).announce(WHAT, count=0, interval_ms=200))


def test_a_failed_round_is_logged_and_later_rounds_still_go(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        sender = RecordingSender(failures=2)
        announcer = recording(sender)
        await announcer.announce(WHAT, count=3, interval_ms=0)
        await until_closed(sender)
        assert sender.rounds == 3

    asyncio.run(scenario())
    assert "gratuitous ARP for 198.51.100.100 on eth0, round 1, not sent" in caplog.text
    assert "round 2, not sent" in caplog.text


def test_no_socket_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def opener(what: Announcement) -> RoundSender:
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

    asyncio.run(Announcer(opener).announce(WHAT, count=5, interval_ms=200))
    assert "neighbours keep the old MAC until their caches expire" in caplog.text
