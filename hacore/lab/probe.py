"""A client-side prober for a virtual IP: who answered, and for how long nobody did.

Run inside a lab host (``start_probe``, or ``python -m hacore.lab.probe`` through ``Host.run``).
It sends ICMP echo requests to one address at a fixed spacing for a bounded duration and records
every matching reply with the kernel's receive timestamp and the Ethernet source MAC of the
frame, which names the node that answered (lab MACs are ``02:00:`` + the node's IPv4 bytes).

Replies are read from an AF_PACKET socket on the interface, not from the ICMP socket, because
only the link layer still knows the sender's MAC. ``ping -i`` cannot do this: below 10 ms it
burns a core and at 10 ms really sends about every 16 ms.

Output: JSON lines, one event each, times in nanoseconds of CLOCK_REALTIME (the kernel stamps
received frames with that clock)::

    {"event": "start", "target": "198.51.100.200", "interval": 0.005, "duration": 3.0, ...}
    {"event": "request", "seq": 0, "time_ns": ...}
    {"event": "reply", "seq": 0, "time_ns": ..., "mac": "02:00:c6:33:64:01"}
    {"event": "end", "time_ns": ..., "sent": 600, "received": 598}
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import itertools
import json
import os
import secrets
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hacore.lab.netns import Host, LabError, wait_for

__all__ = [
    "Answerer",
    "Gap",
    "Probe",
    "ProbeReply",
    "ProbeResult",
    "main",
    "parse_probe",
    "start_probe",
]

# Linux constants the socket module of Python 3.11 does not export.
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
SO_TIMESTAMPNS = 35  # asm-generic value (x86, arm64); also the cmsg type SCM_TIMESTAMPNS
SOL_RAW = 255
ICMP_FILTER = 1
ICMP6_FILTER = 1
PACKET_OUTGOING = 4
ICMP_ECHO, ICMP_ECHOREPLY = 8, 0
ICMP6_ECHO, ICMP6_ECHOREPLY = 128, 129
PAYLOAD = b"hacore-lab-probe".ljust(56, b".")
# After the last request, replies still in flight are collected for this long.
LINGER = 0.1
MAX_DURATION = 3600.0
MIN_INTERVAL = 0.001


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int(word) for word in struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _echo_request(version: int, ident: int, seq: int) -> bytes:
    kind = ICMP_ECHO if version == 4 else ICMP6_ECHO
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq & 0xFFFF)
    if version == 6:
        return header + PAYLOAD  # the kernel fills in ICMPv6 checksums (pseudo-header)
    checksum = _checksum(header + PAYLOAD)
    return struct.pack("!BBHHH", kind, 0, checksum, ident, seq & 0xFFFF) + PAYLOAD


def _parse_reply(frame: bytes, version: int, target: bytes, ident: int) -> tuple[str, int] | None:
    """(source MAC, 16-bit sequence) if ``frame`` is an echo reply from ``target`` to us."""
    if len(frame) < 14:
        return None
    mac = frame[6:12].hex(":")
    packet = frame[14:]
    if version == 4:
        if len(packet) < 20 or packet[9] != socket.IPPROTO_ICMP or packet[12:16] != target:
            return None
        icmp = packet[(packet[0] & 0x0F) * 4 :]
        reply_type = ICMP_ECHOREPLY
    else:
        # Echo replies carry no extension headers: next header must be ICMPv6 directly.
        if len(packet) < 40 or packet[6] != socket.IPPROTO_ICMPV6 or packet[8:24] != target:
            return None
        icmp = packet[40:]
        reply_type = ICMP6_ECHOREPLY
    if len(icmp) < 8:
        return None
    kind, _code, _sum, got_ident, seq = struct.unpack("!BBHHH", icmp[:8])
    if kind != reply_type or got_ident != ident:
        return None
    return mac, seq


def _kernel_time_ns(ancillary: list[tuple[int, int, bytes]]) -> int:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("@ll", data[:16])
            return int(seconds) * 1_000_000_000 + int(nanoseconds)
    return time.time_ns()  # no timestamp delivered: the best we have


def run_probe(target: str, *, interval: float, duration: float, iface: str, out: IO[str]) -> int:
    """Probe ``target`` and write JSON lines to ``out``; returns the number of replies."""
    address = ipaddress.ip_address(target)
    version = address.version
    ident = secrets.randbits(16)
    if version == 4:
        sender = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        # Block every ICMP type on the sending socket: replies are read at the link layer, and
        # an unread raw socket would only fill its buffer.
        sender.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", 0xFFFFFFFF))
        ethertype = ETH_P_IP
    else:
        sender = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        sender.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, b"\xff" * 32)
        ethertype = ETH_P_IPV6
    listener = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
    listener.bind((iface, ethertype))
    listener.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    listener.setblocking(False)
    wanted = address.packed

    def emit(event: dict[str, Any]) -> None:
        out.write(json.dumps(event, separators=(",", ":")) + "\n")

    emit(
        {
            "event": "start",
            "target": target,
            "interval": interval,
            "duration": duration,
            "iface": iface,
            "ident": ident,
            "time_ns": time.time_ns(),
        }
    )
    out.flush()
    sent = received = 0
    last_seq = -1
    start = time.monotonic()
    stop_sending = start + duration
    stop = stop_sending + LINGER
    # Request n goes out at grid + (n - grid_seq) * interval.
    grid, grid_seq = start, 0
    next_send = start
    while True:
        now = time.monotonic()
        if now >= stop:
            break
        if now >= next_send and now < stop_sending:
            sent_at = time.time_ns()
            # A send can fail (EHOSTUNREACH while the address is unresolved): a lost probe.
            with contextlib.suppress(OSError):
                sender.sendto(_echo_request(version, ident, sent), (target, 0))
            emit({"event": "request", "seq": sent, "time_ns": sent_at})
            last_seq = sent
            sent += 1
            # A fixed grid; if we fell behind (a busy machine), restart the grid from now
            # instead of sending a burst to catch up.
            next_send = grid + (sent - grid_seq) * interval
            if now - next_send > interval:
                grid, grid_seq = now, sent - 1
                next_send = now + interval
        wake = min(next_send if now < stop_sending else stop, stop)
        readable, _, _ = select.select([listener], [], [], max(0.0, wake - time.monotonic()))
        while readable:
            try:
                frame, ancillary, _flags, source = listener.recvmsg(2048, socket.CMSG_SPACE(16))
            except BlockingIOError:
                break
            if source[2] == PACKET_OUTGOING:
                continue
            parsed = _parse_reply(frame, version, wanted, ident)
            if parsed is None:
                continue
            mac, seq16 = parsed
            # Sequence numbers are 16 bits on the wire; unwrap against the last one sent.
            seq = last_seq - ((last_seq - seq16) & 0xFFFF)
            emit(
                {
                    "event": "reply",
                    "seq": seq,
                    "time_ns": _kernel_time_ns(ancillary),
                    "mac": mac,
                }
            )
            received += 1
        out.flush()
    emit({"event": "end", "time_ns": time.time_ns(), "sent": sent, "received": received})
    out.flush()
    sender.close()
    listener.close()
    return received


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeReply:
    seq: int
    time: float  # seconds, CLOCK_REALTIME
    mac: str


@dataclass(frozen=True)
class Gap:
    """An interval with no reply; ``start``/``end`` are replies (or the probe's start/end)."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Answerer:
    """A run of consecutive replies from one MAC."""

    mac: str
    first: float
    last: float
    replies: int


@dataclass(frozen=True)
class ProbeResult:
    target: str
    interval: float
    started: float
    ended: float | None  # None while the probe still runs
    requests: tuple[tuple[int, float], ...]  # (seq, time sent)
    replies: tuple[ProbeReply, ...]

    @property
    def sent(self) -> int:
        return len(self.requests)

    @property
    def lost(self) -> int:
        """Requests that got no reply at all."""
        return len({seq for seq, _ in self.requests} - {reply.seq for reply in self.replies})

    def longest_gap(self) -> Gap:
        """The longest time without a reply, from the first request to the last one.

        A probe that never got a reply reports its whole span; a reply always closes a gap.
        """
        sent = [t for _, t in self.requests]
        first, last = min(sent, default=self.started), max(sent, default=self.started)
        marks = [first, *sorted(reply.time for reply in self.replies), last]
        return max(
            (Gap(a, b) for a, b in itertools.pairwise(marks)),
            key=lambda gap: gap.seconds,
            default=Gap(self.started, self.started),
        )

    def answerers(self) -> tuple[Answerer, ...]:
        """Who answered when: consecutive replies from the same MAC merged, in time order."""
        runs: list[Answerer] = []
        for reply in sorted(self.replies, key=lambda r: r.time):
            if runs and runs[-1].mac == reply.mac:
                last = runs[-1]
                runs[-1] = Answerer(last.mac, last.first, reply.time, last.replies + 1)
            else:
                runs.append(Answerer(reply.mac, reply.time, reply.time, 1))
        return tuple(runs)

    def macs(self) -> list[str]:
        """The MACs of the answerers in the order they took over (repeats kept)."""
        return [run.mac for run in self.answerers()]


def parse_probe(lines: Iterable[str]) -> ProbeResult:
    """Read the prober's JSON lines; an incomplete last line (still being written) is ignored."""
    target, interval, started, ended = "", 0.0, 0.0, None
    requests: list[tuple[int, float]] = []
    replies: list[ProbeReply] = []
    for line in lines:
        if not line.endswith("\n"):
            break
        event = json.loads(line)
        seconds = event["time_ns"] / 1e9
        kind = event["event"]
        if kind == "start":
            target, interval, started = event["target"], float(event["interval"]), seconds
        elif kind == "request":
            requests.append((int(event["seq"]), seconds))
        elif kind == "reply":
            replies.append(ProbeReply(int(event["seq"]), seconds, str(event["mac"])))
        elif kind == "end":
            ended = seconds
    return ProbeResult(target, interval, started, ended, tuple(requests), tuple(replies))


# -- running it in a lab host -----------------------------------------------------------------


class Probe:
    """A prober running in a lab host; read its results while it runs or once it is done."""

    def __init__(
        self,
        host: Host,
        target: str,
        *,
        duration: float,
        interval: float = 0.005,
        output: Path | None = None,
    ) -> None:
        if not 0 < duration <= MAX_DURATION:
            raise LabError(f"probe duration must be in (0, {MAX_DURATION:g}] s, not {duration}")
        if interval < MIN_INTERVAL:
            raise LabError(f"probe interval must be at least {MIN_INTERVAL} s")
        self.host = host
        self.target = target
        self.duration = duration
        if output is None:
            count = len(list(host.lab.workdir.glob("probe-*.jsonl")))
            output = host.lab.workdir / f"probe-{count}.jsonl"
        self.output = output
        self.errors = output.with_suffix(".err")
        argv = [sys.executable, "-m", "hacore.lab.probe", "--target", target]
        argv += ["--interval", repr(interval), "--duration", repr(duration)]
        argv += ["--iface", host.iface]
        # The prober must import this very copy of hacore, installed or not.
        source_root = str(Path(__file__).resolve().parents[2])
        python_path = os.pathsep.join(filter(None, [source_root, os.environ.get("PYTHONPATH")]))
        with output.open("wb") as out, self.errors.open("wb") as err:
            self.proc = host.run(argv, env={"PYTHONPATH": python_path}, stdout=out, stderr=err)

    def result(self) -> ProbeResult:
        """What the probe has recorded so far."""
        with self.output.open() as file:
            return parse_probe(file)

    def wait_started(self, timeout: float = 10.0) -> None:
        """Wait until the probe's sockets are open and it has started sending."""

        def sending() -> bool:
            self._check_alive()
            return self.result().sent > 0

        wait_for(sending, timeout, what=f"the probe of {self.target} to start")

    def wait_for_replies(self, count: int, *, mac: str | None = None, timeout: float) -> None:
        """Wait until ``count`` replies (from ``mac``, if given) have been recorded."""

        def enough() -> bool:
            self._check_alive()
            replies = self.result().replies
            return sum(1 for r in replies if mac is None or r.mac == mac) >= count

        wait_for(enough, timeout, what=f"{count} replies from {mac or self.target}")

    def wait(self, timeout: float | None = None) -> ProbeResult:
        """Wait for the probe to finish (bounded: its duration plus a margin by default)."""
        try:
            self.proc.wait(timeout=timeout if timeout is not None else self.duration + 10.0)
        except subprocess.TimeoutExpired:
            self.host.kill(self.proc)
            raise TimeoutError(f"the probe of {self.target} outlived its duration") from None
        self._check_alive()
        return self.result()

    def _check_alive(self) -> None:
        if self.proc.poll() not in (None, 0):
            raise LabError(
                f"the probe of {self.target} failed ({self.proc.returncode}): "
                + self.errors.read_text(errors="replace").strip()
            )


def start_probe(
    host: Host,
    target: str,
    *,
    duration: float,
    interval: float = 0.005,
    output: Path | None = None,
) -> Probe:
    """Start probing ``target`` from ``host``; returns once requests are going out."""
    probe = Probe(host, target, duration=duration, interval=interval, output=output)
    probe.wait_started()
    return probe


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hacore.lab.probe",
        description="Probe an address with ICMP echo and report which MAC answered when.",
    )
    parser.add_argument("--target", required=True, help="IPv4 or IPv6 address to probe")
    parser.add_argument("--interval", type=float, default=0.005, help="seconds between requests")
    parser.add_argument("--duration", type=float, required=True, help="seconds to probe for")
    parser.add_argument("--iface", default="eth0", help="interface the replies arrive on")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= MAX_DURATION:
        parser.error(f"--duration must be in (0, {MAX_DURATION:g}]")
    if args.interval < MIN_INTERVAL:
        parser.error(f"--interval must be at least {MIN_INTERVAL}")
    try:
        ipaddress.ip_address(args.target)
    except ValueError:
        parser.error(f"--target {args.target!r} is not an IP address")
    run_probe(
        args.target,
        interval=args.interval,
        duration=args.duration,
        iface=args.iface,
        out=sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
