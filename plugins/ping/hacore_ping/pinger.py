"""The measuring thread: a round every ``interval``, the dampened score kept for the hook to read.

The hook (``hacore_connectivity_score``) runs in the daemon's event loop and must answer at once,
so it only reads ``Pinger.score``, an int the thread replaces after each round. A pipe wakes the
thread when the daemon stops, even in the middle of a round, so ``stop`` returns promptly.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from dataclasses import dataclass

from hacore.dispatch import spawn_thread

from hacore_ping.icmp import IcmpSocket, open_socket
from hacore_ping.prober import Prober, Stopped
from hacore_ping.score import Dampener, Target, addresses, reached
from hacore_ping.settings import PingSettings

__all__ = ["PingStatus", "Pinger"]

log = logging.getLogger("hacore.ping")


@dataclass(frozen=True)
class PingStatus:
    """What the last round saw."""

    score: int | None  # in force (dampened); None before the first round
    measured: int | None  # from the last round alone
    reached: tuple[str, ...]  # the targets (ping node addresses, ping group names) that answered
    round_trip_s: dict[str, float]  # per address that answered
    round_s: float  # how long the last round took
    rounds: int


class Pinger:
    """Pings ``targets`` from a thread of its own. ``start`` once, ``stop`` once."""

    def __init__(self, targets: tuple[Target, ...], settings: PingSettings) -> None:
        self.targets = targets
        self.settings = settings
        self._addresses = addresses(targets)
        self._dampener = Dampener(settings.dampen_ms / 1000)
        self._wake_read, self._wake_write = os.pipe()
        self._stopping = False
        self._failing = False  # the last socket or round failed (logged once, not every round)
        self._thread: threading.Thread | None = None
        self._status = PingStatus(None, None, (), {}, 0.0, 0)

    @property
    def score(self) -> int | None:
        """The dampened score; None until the first round is done. Never blocks."""
        return self._status.score

    def status(self) -> PingStatus:
        return self._status

    def start(self) -> None:
        # The thread is made by the caller's thread, so it measures from the caller's network
        # namespace (the daemon's; in tests, a namespace the caller entered).
        self._thread = spawn_thread(self._run, "hacore ping")

    def stop(self, timeout_s: float) -> bool:
        """Stop the thread; False if it had not ended after ``timeout_s``."""
        if self._stopping:
            return self._thread is None
        self._stopping = True
        os.write(self._wake_write, b"x")
        thread, self._thread = self._thread, None
        ended = True
        if thread is not None:
            thread.join(timeout_s)
            ended = not thread.is_alive()
        if ended:  # else the thread still selects on the read end: leave both ends open
            os.close(self._wake_read)
            os.close(self._wake_write)
        return ended

    def _run(self) -> None:
        icmp: IcmpSocket | None = None
        prober: Prober | None = None
        next_round = time.monotonic()
        try:
            while not self._stopping:
                if prober is None:
                    icmp = self._open()
                    prober = Prober(icmp, self._wake_read) if icmp is not None else None
                if prober is not None:
                    self._round(prober)
                # Rounds start every interval; one that overran its slot is followed at once.
                next_round = max(next_round + self.settings.interval_ms / 1000, time.monotonic())
                pause = max(0.0, next_round - time.monotonic())
                if select.select([self._wake_read], [], [], pause)[0]:
                    return
        except Stopped:
            return
        finally:
            if icmp is not None:
                icmp.close()

    def _open(self) -> IcmpSocket | None:
        try:
            icmp = open_socket()
        except OSError as err:
            # hacore_config_validate refuses this at start; should it happen later, it is
            # retried every round, and the score stays unknown meanwhile.
            if not self._failing:
                log.error("cannot open an ICMP socket: %s (ping nodes need root)", err)
            self._failing = True
            return None
        self._failing = False
        return icmp

    def _round(self, prober: Prober) -> None:
        started = time.monotonic()
        s = self.settings
        try:
            rtts = prober.round(self._addresses, s.attempts, s.timeout_ms / 1000)
            self._failing = False
        except Stopped:
            raise
        except Exception as err:
            # Not expected (sending failures are per address, in the prober). A round that
            # cannot be measured reached nobody: a stale score could keep groups on a node
            # that lost its way out. Logged once, not at every round; the traceback at debug.
            if not self._failing:
                log.error(
                    "ping round failed (%r); counting nothing reached until one succeeds", err
                )
                log.debug("ping round: traceback", exc_info=True)
            self._failing = True
            rtts = {}
        now = time.monotonic()
        previous = self._status
        up = reached(self.targets, rtts)
        measured = len(up) * s.multiplier
        score = self._dampener.update(measured, now)
        names = tuple(t.name for t in up)
        for target in self.targets:
            was, now_up = target.name in previous.reached, target.name in names
            if previous.rounds and was != now_up:
                log.info("ping node %s: %s", target.name, "reachable" if now_up else "unreachable")
        if previous.score != score:
            log.info(
                "connectivity score %s (reaching %d of %d ping nodes)",
                score if previous.score is None else f"{previous.score} -> {score}",
                len(up),
                len(self.targets),
            )
        elif measured not in (score, previous.measured):  # a new value starts to wait
            log.info(
                "connectivity score %d measured; %d stays in force until it has held for %g s",
                measured,
                score,
                self._dampener.dampen_s,
            )
        self._status = PingStatus(score, measured, names, rtts, now - started, previous.rounds + 1)
