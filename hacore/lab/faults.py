"""Faults a kernel without netem cannot make by itself: delay, duplication and reordering of a
host's frames, by a small userspace forwarder (``Wire``); and one-way cuts (``cut_one_way``).

This machine's kernel has no ``netem`` qdisc and no NFQUEUE (see
/work/shared/reference/running-peers-in-namespaces.md), so a frame cannot be held back inside
the kernel. Instead, a forwarder is spliced between a host and the switch, all inside the
lab's switch namespace::

    host eth0 ══ sw-<name> ◄─ forwarder ─► wa-<name> ══ wb-<name> ─ br0

The host's own port ``sw-<name>`` leaves the bridge; ``wb-<name>`` joins it in its place
(``Lab.splice``), so partitions, blocks and loss made by the lab follow the host. The forwarder
(``python -m hacore.lab.faults``) reads every frame on ``sw-<name>`` and on ``wa-<name>`` with
AF_PACKET sockets and writes it out of the other one, now, later (delay and jitter), twice
(duplication) or after the next one (reordering). Only the frames of the chosen UDP port (the
cluster's, 694 by default) are disturbed; everything else (ARP, the client's pings) passes at
once, so a test disturbs the cluster's datagrams and nothing else.

Bounded: the queue holds at most ``MAX_QUEUE`` frames (more are dropped and counted), a held
frame waits at most ``hold_ms``, and the process exits at its ``--lifetime`` or as soon as its
standard input closes (the lab that started it is gone). It is a process of the switch
namespace, started with ``Lab.run_in_switch``, so ``Lab.close`` kills it whatever happens.

The scheduling is a sans-I/O core (``Schedule``), tested without namespaces; the I/O loop is
``serve``. The forwarder rewrites the UDP or TCP checksum of every frame it forwards: a frame
read from a veth may carry an unfinished checksum (offloaded to a "hardware" that is not there),
and a frame sent from a packet socket is taken as it is.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import heapq
import json
import os
import random
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from hacore.lab.netns import Host, Lab, LabError

__all__ = [
    "MAX_QUEUE",
    "Disturbance",
    "Schedule",
    "Wire",
    "cluster_frame",
    "cut_one_way",
    "fix_checksum",
    "heal_one_way",
    "main",
]

HEARTBEAT_PORT = 694
MAX_QUEUE = 10_000
MAX_DELAY_MS = 10_000.0
MAX_HOLD_MS = 10_000.0
REPLY_TIMEOUT = 10.0
START_TIMEOUT = 10.0
DEFAULT_LIFETIME = 3600.0
ETH_P_ALL = 0x0003
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
PACKET_OUTGOING = 4
IPPROTO_TCP, IPPROTO_UDP = 6, 17
# The two sides of the forwarder: frames the host sent (towards the switch) and frames the
# switch delivers (towards the host).
OUT, IN = "out", "in"
DIRECTIONS = (OUT, IN)


# -- frames -------------------------------------------------------------------------------------


def _ip_payload(frame: bytes) -> tuple[int, int, int, bytes] | None:
    """(IP version, transport protocol, offset of the transport header, pseudo-header) of an
    unfragmented IPv4 or IPv6 (no extension header) frame, else None."""
    if len(frame) < 14:
        return None
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    if ethertype == ETH_P_IP and len(frame) >= 34:
        ihl = (frame[14] & 0x0F) * 4
        (total,) = struct.unpack_from("!H", frame, 16)
        (flags_offset,) = struct.unpack_from("!H", frame, 20)
        if flags_offset & 0x3FFF:  # a fragment: the first one's checksum covers them all
            return None
        proto = frame[23]
        start = 14 + ihl
        length = total - ihl
        if length < 0 or start + length > len(frame):
            return None
        pseudo = frame[26:34] + struct.pack("!BBH", 0, proto, length)
        return 4, proto, start, pseudo
    if ethertype == ETH_P_IPV6 and len(frame) >= 54:
        (length,) = struct.unpack_from("!H", frame, 18)
        proto = frame[20]
        start = 54
        if start + length > len(frame):
            return None
        pseudo = frame[22:54] + struct.pack("!IxxxB", length, proto)
        return 6, proto, start, pseudo
    return None


def _transport_length(frame: bytes, info: tuple[int, int, int, bytes]) -> int:
    version, _proto, start, pseudo = info
    if version == 4:
        (length,) = struct.unpack_from("!H", pseudo, 10)
    else:
        (length,) = struct.unpack_from("!I", pseudo, 32)
    return min(int(length), len(frame) - start)


def _ones_complement(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def fix_checksum(frame: bytes) -> bytes:
    """The frame with its UDP or TCP checksum computed afresh (other frames unchanged)."""
    info = _ip_payload(frame)
    if info is None or info[1] not in (IPPROTO_UDP, IPPROTO_TCP):
        return frame
    _version, proto, start, pseudo = info
    at = start + (6 if proto == IPPROTO_UDP else 16)
    length = _transport_length(frame, info)
    if at + 2 > start + length:
        return frame
    body = bytearray(frame)
    body[at : at + 2] = b"\0\0"
    checksum = _ones_complement(pseudo + bytes(body[start : start + length]))
    if proto == IPPROTO_UDP and checksum == 0:
        checksum = 0xFFFF  # 0 means "no checksum" in UDP
    struct.pack_into("!H", body, at, checksum)
    return bytes(body)


def cluster_frame(frame: bytes, port: int) -> bool:
    """Is this a UDP datagram from or to ``port`` (IPv4 or IPv6)?"""
    info = _ip_payload(frame)
    if info is None or info[1] != IPPROTO_UDP or len(frame) < info[2] + 4:
        return False
    src, dst = struct.unpack_from("!HH", frame, info[2])
    return port in (src, dst)


# -- the schedule (sans I/O) --------------------------------------------------------------------


@dataclass(frozen=True)
class Disturbance:
    """What the forwarder does to the cluster's frames in one direction.

    ``delay_ms`` ± ``jitter_ms`` (uniform) before a frame leaves; ``duplicate`` percent of the
    frames are sent twice; ``reorder`` percent are held back until the next frame of the same
    direction has left (at most ``hold_ms``), so they arrive after a frame sent later.
    """

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    hold_ms: float = 1000.0

    def __post_init__(self) -> None:
        for name in ("delay_ms", "jitter_ms"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_DELAY_MS:
                raise ValueError(f"{name} must be within 0..{MAX_DELAY_MS:g}, not {value}")
        for name in ("duplicate", "reorder"):
            value = getattr(self, name)
            if not 0 <= value <= 100:
                raise ValueError(f"{name} must be a percentage within 0..100, not {value}")
        if not 0 < self.hold_ms <= MAX_HOLD_MS:
            raise ValueError(f"hold_ms must be within 0..{MAX_HOLD_MS:g}, not {self.hold_ms}")

    @property
    def idle(self) -> bool:
        return not (self.delay_ms or self.jitter_ms or self.duplicate or self.reorder)


@dataclass
class Counters:
    forwarded: int = 0  # frames handed to the other side (duplicates included)
    disturbed: int = 0  # cluster frames that went through a disturbance
    delayed: int = 0
    duplicated: int = 0
    reordered: int = 0  # held frames that left after a later one
    hold_expired: int = 0  # held frames that left because nothing came after them in time
    dropped: int = 0  # queue full


@dataclass
class Schedule:
    """When each frame leaves. ``push`` frames as they come, ``due`` what must leave now."""

    port: int = HEARTBEAT_PORT
    rng: random.Random = field(default_factory=random.Random)
    settings: dict[str, Disturbance] = field(
        default_factory=lambda: {d: Disturbance() for d in DIRECTIONS}
    )
    counters: Counters = field(default_factory=Counters)
    _queue: list[tuple[float, int, str, bytes]] = field(default_factory=list)
    _held: dict[str, tuple[float, bytes] | None] = field(
        default_factory=lambda: {d: None for d in DIRECTIONS}
    )
    _seq: int = 0

    def configure(self, direction: str, disturbance: Disturbance) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction}")
        self.settings[direction] = disturbance

    def _enqueue(self, at: float, direction: str, frame: bytes) -> None:
        if len(self._queue) >= MAX_QUEUE:
            self.counters.dropped += 1
            return
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, direction, frame))

    def push(self, direction: str, frame: bytes, now: float) -> None:
        setting = self.settings[direction]
        if setting.idle or not cluster_frame(frame, self.port):
            self._enqueue(now, direction, frame)
            return
        self.counters.disturbed += 1
        delay = setting.delay_ms
        if setting.jitter_ms:
            delay += self.rng.uniform(-setting.jitter_ms, setting.jitter_ms)
        at = now + max(0.0, delay) / 1000
        if delay > 0:
            self.counters.delayed += 1
        if self._held[direction] is None and self.rng.random() * 100 < setting.reorder:
            self._held[direction] = (now + setting.hold_ms / 1000, frame)
            return
        self._enqueue(at, direction, frame)
        if self.rng.random() * 100 < setting.duplicate:
            self.counters.duplicated += 1
            self._enqueue(at, direction, frame)

    def next_time(self) -> float | None:
        """When ``due`` will next have something, or None if nothing waits."""
        times = [entry[0] for entry in self._queue[:1]]
        times += [held[0] for held in self._held.values() if held is not None]
        return min(times, default=None)

    def due(self, now: float) -> Iterator[tuple[str, bytes]]:
        """The frames that must leave by ``now``, in order: (direction, frame)."""
        while True:
            if self._queue and self._queue[0][0] <= now:
                _at, _seq, direction, frame = heapq.heappop(self._queue)
                self.counters.forwarded += 1
                yield direction, frame
                held = self._held[direction]
                # A later frame of the same direction has just left: the held one follows it.
                if held is not None and cluster_frame(frame, self.port):
                    self._held[direction] = None
                    self.counters.reordered += 1
                    self.counters.forwarded += 1
                    yield direction, held[1]
                continue
            expired = [d for d, h in self._held.items() if h is not None and h[0] <= now]
            if not expired:
                return
            for direction in expired:
                held = self._held[direction]
                assert held is not None
                self._held[direction] = None
                self.counters.hold_expired += 1
                self.counters.forwarded += 1
                yield direction, held[1]


# -- the forwarder process ----------------------------------------------------------------------


def _packet_socket(interface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((interface, 0))
    sock.setblocking(False)
    return sock


def _reply(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def _command(schedule: Schedule, line: str) -> dict[str, Any]:
    try:
        request = json.loads(line)
        if not isinstance(request, dict):
            raise ValueError("a command is a JSON object")
        for direction, values in (request.get("set") or {}).items():
            schedule.configure(direction, Disturbance(**values))
    except (ValueError, TypeError) as err:
        return {"ok": False, "error": str(err)}
    return {
        "ok": True,
        "counters": dataclasses.asdict(schedule.counters),
        "settings": {d: dataclasses.asdict(s) for d, s in schedule.settings.items()},
    }


def serve(host_port: str, wire_port: str, port: int, lifetime: float, seed: int | None) -> int:
    """Forward between ``host_port`` (the host's) and ``wire_port`` (the bridge's side) until
    standard input closes or ``lifetime`` seconds have passed."""
    sockets = {OUT: _packet_socket(host_port), IN: _packet_socket(wire_port)}
    # A frame read on the host's port goes out of the wire's, and the other way round.
    exits = {OUT: sockets[IN], IN: sockets[OUT]}
    schedule = Schedule(port=port, rng=random.Random(seed))
    stdin = sys.stdin.buffer
    pending = b""
    end = time.monotonic() + lifetime
    _reply({"ok": True, "ready": True})
    while True:
        now = time.monotonic()
        if now >= end:
            return 0
        for direction, frame in schedule.due(now):
            with contextlib.suppress(OSError):  # a port down: the frame is lost, as on a wire
                exits[direction].send(fix_checksum(frame))
        wake = schedule.next_time()
        timeout = min(end - now, 1.0 if wake is None else max(0.0, wake - now))
        readable, _, _ = select.select([*sockets.values(), stdin], [], [], timeout)
        now = time.monotonic()
        for direction, sock in sockets.items():
            if sock not in readable:
                continue
            for _ in range(256):  # bounded per wake-up: the other side gets its turn
                try:
                    frame, address = sock.recvfrom(65535)
                except OSError:  # nothing more now, or the port went down (ENETDOWN)
                    break
                if address[2] != PACKET_OUTGOING:  # our own transmissions come back here
                    schedule.push(direction, frame, now)
        if stdin in readable:
            chunk = os.read(stdin.fileno(), 65536)
            if not chunk:
                return 0  # the lab is gone
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if line.strip():
                    _reply(_command(schedule, line.decode(errors="replace")))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hacore.lab.faults",
        description="Forward frames between two interfaces, delaying, duplicating or "
        "reordering the UDP datagrams of one port. Commands are JSON lines on stdin.",
    )
    parser.add_argument("host_port", help="the interface facing the host (sw-<name>)")
    parser.add_argument("wire_port", help="the interface facing the bridge (wa-<name>)")
    parser.add_argument("--port", type=int, default=HEARTBEAT_PORT, help="UDP port to disturb")
    parser.add_argument("--lifetime", type=float, default=DEFAULT_LIFETIME, help="seconds")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        return serve(args.host_port, args.wire_port, args.port, args.lifetime, args.seed)
    except OSError as err:
        print(f"hacore.lab.faults: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


# -- the lab side ------------------------------------------------------------------------------


class Wire:
    """A forwarder spliced between ``host`` and the switch; ``set`` changes what it does.

    Use as a context manager, or ``start``/``close``. Closing puts the host's own port back
    on the bridge.
    """

    def __init__(
        self,
        lab: Lab,
        host: Host,
        *,
        port: int = HEARTBEAT_PORT,
        lifetime: float = DEFAULT_LIFETIME,
        seed: int | None = None,
    ) -> None:
        if not 0 < lifetime <= 24 * 3600:
            raise LabError(f"a forwarder's lifetime must be within 0..86400 s, not {lifetime}")
        self.lab, self.host, self.port = lab, host, port
        self.lifetime, self.seed = lifetime, seed
        self.proc: subprocess.Popen[bytes] | None = None
        self._pending = b""
        self._outer: str | None = None

    def __enter__(self) -> Wire:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> Wire:
        inner, outer = (
            self.lab.add_wire_ports(self.host)
            if self._outer is None
            else (
                f"wa-{self.host.name}",
                self._outer,
            )
        )
        self._outer = outer
        argv = [
            sys.executable,
            "-m",
            "hacore.lab.faults",
            self.host.port,
            inner,
            "--port",
            str(self.port),
            "--lifetime",
            str(self.lifetime),
        ]
        if self.seed is not None:
            argv += ["--seed", str(self.seed)]
        self.proc = self.lab.run_in_switch(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        hello = self._read(START_TIMEOUT)
        if not hello.get("ready"):
            raise LabError(f"the forwarder of {self.host.name} did not start: {hello}")
        # Only now that it listens on both ports: the bridge reaches the host through it.
        self.lab.splice(self.host, outer)
        return self

    def set(self, direction: str = OUT, /, **values: float) -> dict[str, Any]:
        """Disturb the cluster frames of one direction (``out``: sent by the host; ``in``:
        delivered to it) as ``Disturbance(**values)`` says; no values: pass them untouched."""
        Disturbance(**values)  # refuse a bad value here, with the caller's traceback
        return self._ask({"set": {direction: values}})

    def clear(self) -> dict[str, Any]:
        return self._ask({"set": {d: {} for d in DIRECTIONS}})

    def counters(self) -> dict[str, int]:
        reply = self._ask({})
        return dict(reply["counters"])

    def close(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if not self.lab.closed:
            self.lab.unsplice(self.host)
        assert proc.stdin is not None
        with contextlib.suppress(OSError):
            proc.stdin.close()  # the forwarder exits when its input closes
        if proc.poll() is None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            raise LabError(f"the forwarder of {self.host.name} is not running")
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        reply = self._read(REPLY_TIMEOUT)
        if not reply.get("ok"):
            raise LabError(f"the forwarder of {self.host.name} refused {request}: {reply}")
        return reply

    def _read(self, timeout: float) -> dict[str, Any]:
        # Our own line buffer: select() cannot see lines already read into a Python buffer.
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            readable, _, _ = select.select([self.proc.stdout], [], [], max(0.0, left))
            chunk = os.read(self.proc.stdout.fileno(), 65536) if readable else b""
            if not chunk:
                error = b""
                if self.proc.poll() is not None and self.proc.stderr is not None:
                    error = self.proc.stderr.read()
                raise LabError(
                    f"the forwarder of {self.host.name} did not answer within {timeout:g} s"
                    + (f": {error.decode(errors='replace').strip()}" if error else "")
                )
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        reply: dict[str, Any] = json.loads(line)
        return reply


def cut_one_way(lab: Lab, src: Host, dst: Host) -> None:
    """A one-way partition: nothing ``src`` sends reaches ``dst`` (broadcasts included), while
    ``dst`` is still heard by ``src``. Bridge filtering (nftables, bridge family)."""
    lab.block(src, dst)


def heal_one_way(lab: Lab, src: Host, dst: Host) -> None:
    lab.unblock(src, dst)


if __name__ == "__main__":
    sys.exit(main())
