"""The fault library itself: the forwarder's schedule (no namespaces), then the forwarder and the
one-way cut in a real lab, measured with UDP datagrams on the cluster's port."""

from __future__ import annotations

import json
import os
import random
import select
import socket
import struct
import subprocess
import sys
import time

import pytest

from hacore.lab.faults import (
    MAX_QUEUE,
    Disturbance,
    Schedule,
    Wire,
    cluster_frame,
    cut_one_way,
    fix_checksum,
    heal_one_way,
)
from hacore.lab.netns import Host, Lab, LabError

MAC = bytes.fromhex("020000000001") + bytes.fromhex("020000000002")


def _udp4(sport: int, dport: int, payload: bytes, checksum: int = 0) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), checksum) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
        socket.inet_aton("198.51.100.1"), socket.inet_aton("198.51.100.2"),
    )  # fmt: skip
    return MAC + b"\x08\x00" + ip + udp


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


# -- frames ------------------------------------------------------------------------------------


def test_fix_checksum_makes_a_udp_checksum_that_verifies_whatever_was_there() -> None:
    for garbage in (0, 0x1234, 0xFFFF):
        frame = fix_checksum(_udp4(694, 694, b"t=status", checksum=garbage))
        udp = frame[34:]
        pseudo = frame[26:34] + struct.pack("!BBH", 0, 17, len(udp))
        # A correct checksum makes the one's complement sum of everything 0xFFFF.
        assert _sum16(pseudo + udp) == 0xFFFF
        assert frame[:34] == _udp4(694, 694, b"t=status")[:34]


def test_fix_checksum_leaves_other_frames_alone() -> None:
    arp = MAC + b"\x08\x06" + bytes(28)
    assert fix_checksum(arp) == arp
    fragment = bytearray(_udp4(694, 694, b"x"))
    fragment[20:22] = struct.pack("!H", 0x2000)  # more fragments follow
    assert fix_checksum(bytes(fragment)) == bytes(fragment)
    assert fix_checksum(b"short") == b"short"


def test_cluster_frame_matches_the_port_either_way() -> None:
    assert cluster_frame(_udp4(694, 50000, b""), 694)
    assert cluster_frame(_udp4(50000, 694, b""), 694)
    assert not cluster_frame(_udp4(50000, 695, b""), 694)
    assert not cluster_frame(MAC + b"\x08\x06" + bytes(28), 694)


# -- the schedule ------------------------------------------------------------------------------


def _frames(n: int, port: int = 694) -> list[bytes]:
    return [_udp4(port, port, f"{i}".encode()) for i in range(n)]


def test_an_idle_schedule_forwards_everything_at_once_in_order() -> None:
    s = Schedule()
    frames = _frames(5)
    for frame in frames:
        s.push("out", frame, now=1.0)
    assert [f for _, f in s.due(1.0)] == frames
    assert s.next_time() is None


def test_delay_holds_cluster_frames_only() -> None:
    s = Schedule()
    s.configure("out", Disturbance(delay_ms=50))
    cluster, other = _udp4(694, 694, b"a"), _udp4(53, 53, b"b")
    s.push("out", cluster, now=10.0)
    s.push("out", other, now=10.0)
    assert list(s.due(10.0)) == [("out", other)]
    assert s.next_time() == pytest.approx(10.05)
    assert list(s.due(10.049)) == []
    assert list(s.due(10.05)) == [("out", cluster)]
    assert s.counters.delayed == 1


def test_duplication_sends_the_chosen_share_twice() -> None:
    s = Schedule(rng=random.Random(1))
    s.configure("in", Disturbance(duplicate=30))
    for frame in _frames(1000):
        s.push("in", frame, now=0.0)
    out = list(s.due(0.0))
    extra = len(out) - 1000
    assert extra == s.counters.duplicated
    assert 220 < extra < 380  # 30 % of 1000, with room for chance


def test_reordering_lets_the_next_frame_overtake_a_held_one() -> None:
    s = Schedule(rng=random.Random(2))
    s.configure("out", Disturbance(reorder=100, hold_ms=500))
    a, b, c = _frames(3)
    s.push("out", a, now=0.0)  # held
    assert list(s.due(0.0)) == []
    s.push("out", b, now=0.1)
    assert [f for _, f in s.due(0.1)] == [b, a]
    s.push("out", c, now=0.2)  # held again, and nothing follows: it leaves at hold_ms
    assert list(s.due(0.69)) == []
    assert [f for _, f in s.due(0.7)] == [c]
    assert (s.counters.reordered, s.counters.hold_expired) == (1, 1)


def test_the_queue_is_bounded() -> None:
    s = Schedule()
    s.configure("out", Disturbance(delay_ms=1000))
    for frame in _frames(MAX_QUEUE + 5):
        s.push("out", frame, now=0.0)
    assert s.counters.dropped == 5
    assert len(list(s.due(2.0))) == MAX_QUEUE


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Disturbance(duplicate=101)
    with pytest.raises(ValueError, match="delay_ms"):
        Disturbance(delay_ms=-1)
    with pytest.raises(ValueError, match="direction"):
        Schedule().configure("sideways", Disturbance())


# -- in a lab ---------------------------------------------------------------------------------

# A receiver on the cluster's port that prints each datagram's payload and arrival time.
RECEIVER = """
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", 694))
s.settimeout(30)
print(json.dumps({"ready": True}), flush=True)
while True:
    data, _ = s.recvfrom(2048)
    print(json.dumps({"at": time.time(), "data": data.decode()}), flush=True)
"""
SENDER = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
first = int(sys.argv[4]) if len(sys.argv) > 4 else 0
for i in range(first, first + int(sys.argv[2])):
    s.sendto(f"{i} {time.time()!r}".encode(), (sys.argv[1], 694))
    time.sleep(float(sys.argv[3]))
"""


class Receiver:
    def __init__(self, host: Host) -> None:
        self.host = host
        self._pending = b""
        self.proc = host.run([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE)
        assert json.loads(self._line())["ready"]

    def _line(self) -> bytes:
        # Unbuffered: select() on a pipe says nothing about lines already in a Python buffer.
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 10
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            readable, _, _ = select.select([self.proc.stdout], [], [], max(0.0, left))
            assert readable, "the receiver said nothing for 10 s"
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            assert chunk, "the receiver exited"
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line

    def take(self, n: int) -> list[tuple[int, float]]:
        """(index, one-way latency) of the next ``n`` datagrams."""
        got = []
        for _ in range(n):
            entry = json.loads(self._line())
            index, sent = entry["data"].split()
            got.append((int(index), entry["at"] - float(sent)))
        return got

    def close(self) -> None:
        self.host.kill(self.proc)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def _send(src: Host, dst: Host, count: int, spacing: float = 0.01, first: int = 0) -> None:
    argv = [sys.executable, "-c", SENDER, dst.address, str(count), str(spacing), str(first)]
    src.exec(argv, timeout=30)


@pytest.mark.netns
def test_a_wire_delays_duplicates_and_reorders_the_cluster_port_only(lab: Lab) -> None:
    a, b = lab.add_host("a"), lab.add_host("b")
    receiver = Receiver(b)
    with Wire(lab, a, seed=7) as wire:
        _send(a, b, 5)
        assert all(latency < 0.05 for _, latency in receiver.take(5))

        wire.set(delay_ms=80)
        _send(a, b, 5)
        latencies = [latency for _, latency in receiver.take(5)]
        print(f"\ndelay 80 ms: one-way latencies {[round(x * 1000, 1) for x in latencies]} ms")
        assert all(0.075 < latency < 1.0 for latency in latencies)
        # Pings are not on the cluster's port: untouched.
        ping = a.exec(["ping", "-c", "3", "-i", "0.2", "-W", "2", b.address], timeout=20).stdout
        rtts = [float(word.split("=")[1]) for word in ping.split() if word.startswith("time=")]
        assert len(rtts) == 3 and max(rtts) < 60, ping

        wire.set(duplicate=100)
        _send(a, b, 3)
        assert sorted(i for i, _ in receiver.take(6)) == [0, 0, 1, 1, 2, 2]

        wire.set(reorder=50, hold_ms=300)
        _send(a, b, 40)
        order = [i for i, _ in receiver.take(40)]
        assert sorted(order) == list(range(40))
        assert order != list(range(40)), "nothing was reordered"
        counters = wire.counters()
        assert counters["reordered"] + counters["hold_expired"] > 0
        assert counters["duplicated"] == 3

        wire.clear()
        _send(a, b, 3)
        assert [i for i, _ in receiver.take(3)] == [0, 1, 2]
    # The host's own port is back on the bridge.
    assert lab.bridge_port(a) == a.port
    _send(a, b, 2)
    assert len(receiver.take(2)) == 2
    receiver.close()


@pytest.mark.netns
def test_a_one_way_cut_silences_one_direction_even_through_a_wire(lab: Lab) -> None:
    a, b = lab.add_host("a"), lab.add_host("b")
    rb, ra = Receiver(b), Receiver(a)
    with Wire(lab, a):
        # The cut drops ARP replies too: resolve both ways first (the cluster broadcasts).
        a.exec(["ping", "-c", "1", "-W", "2", b.address])
        b.exec(["ping", "-c", "1", "-W", "2", a.address])
        cut_one_way(lab, a, b)
        _send(b, a, 3)
        assert len(ra.take(3)) == 3  # b is still heard by a
        _send(a, b, 3, first=100)
        # Nothing from a reached b: the first datagram b gets is the one sent after healing.
        heal_one_way(lab, a, b)
        _send(a, b, 1)
        ((index, _),) = rb.take(1)
        assert index == 0
    rb.close()
    ra.close()


@pytest.mark.netns
def test_a_wire_refuses_bad_settings_and_reports_a_dead_forwarder(lab: Lab) -> None:
    a = lab.add_host("a")
    wire = Wire(lab, a).start()
    with pytest.raises(ValueError, match="reorder"):
        wire.set(reorder=200)
    assert wire.proc is not None
    wire.proc.kill()
    wire.proc.wait(timeout=5)
    with pytest.raises(LabError, match="not running"):
        wire.counters()
    wire.close()
    assert lab.bridge_port(a) == a.port
