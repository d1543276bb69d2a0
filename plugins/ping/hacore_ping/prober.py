"""One measuring round: which addresses answer an ICMP echo, as ``fping -r attempts`` asks.

Every address gets its first request at once; each attempt waits ``timeout / attempts`` for
replies, and only the addresses still silent are asked again. An address is reached if any of
its attempts is answered (a late reply to an earlier attempt counts too), so a round lasts at
most ``timeout`` however many ping nodes there are, and a round where everyone answers lasts one
round trip.
"""

from __future__ import annotations

import logging
import secrets
import select
import time
from collections.abc import Sequence

from hacore_ping.icmp import IcmpSocket, build_request, parse_reply

__all__ = ["Prober", "Stopped"]

log = logging.getLogger("hacore.ping")


class Stopped(Exception):  # noqa: N818 -- reads as the condition, like hacore's AgentNotFound
    """The wake-up descriptor became readable: the round was abandoned."""


class Prober:
    """Sends echo requests on one socket and recognises the replies to them."""

    def __init__(self, icmp: IcmpSocket, wake_fd: int) -> None:
        self.icmp = icmp
        self.wake_fd = wake_fd
        # A raw socket sees every echo reply reaching the host (another ping's, another hacore's):
        # ours carry this identifier and this token.
        self.identifier = secrets.randbelow(0x10000)
        self.token = secrets.token_bytes(16)
        self._sequence = secrets.randbelow(0x10000)

    def round(self, addresses: Sequence[str], attempts: int, timeout_s: float) -> dict[str, float]:
        """Address -> round-trip time in seconds, for every address that answered."""
        answered: dict[str, float] = {}
        sent: dict[int, tuple[str, float]] = {}  # sequence -> (address, when)
        per_attempt = timeout_s / attempts
        for _ in range(attempts):
            silent = [a for a in addresses if a not in answered]
            if not silent:
                break
            for address in silent:
                sequence = self._next_sequence()
                try:
                    self.icmp.sock.sendto(
                        build_request(self.identifier, sequence, self.token), (address, 0)
                    )
                except OSError as err:
                    # No route, no neighbour, a firewall's EPERM: this attempt failed, and the
                    # round goes on for the other addresses.
                    log.debug("ping %s: %s", address, err.strerror)
                    continue
                sent[sequence] = (address, time.monotonic())
            self._receive(sent, answered, time.monotonic() + per_attempt, len(addresses))
        return answered

    def _receive(
        self,
        sent: dict[int, tuple[str, float]],
        answered: dict[str, float],
        deadline: float,
        wanted: int,
    ) -> None:
        sock = self.icmp.sock
        while len(answered) < wanted:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([sock.fileno(), self.wake_fd], [], [], left)
            if self.wake_fd in ready:
                raise Stopped
            if not ready:
                return
            data, (source, _) = sock.recvfrom(2048)
            received = time.monotonic()
            echo = parse_reply(data, self.icmp.raw)
            if echo is None or echo.payload != self.token:
                continue
            # A ping socket's identifier is the kernel's; it delivers only that socket's replies.
            if self.icmp.raw and echo.identifier != self.identifier:
                continue
            request = sent.get(echo.sequence)
            if request is not None and request[0] == source:
                answered.setdefault(source, received - request[1])

    def _next_sequence(self) -> int:
        self._sequence = (self._sequence + 1) & 0xFFFF
        return self._sequence
