"""Which lab hosts hold an address, and when: the evidence that a virtual IP was never on two
nodes at once (or the measure of how long it was).

``AddressWatch`` is the instrument the tests use. One ``ip -ts -o monitor address all-nsid`` runs
in the lab's switch namespace, where every host namespace already has a netns id (its veth peer
gave it one). ``all-nsid`` (NETLINK_LISTEN_ALL_NSID) makes one netlink socket receive the address
notifications of every namespace with an id, all in **one queue, in the order the kernel emitted
them**. A notification is queued inside the very syscall that adds or deletes the address, so
when a node deletes the address and only then tells its peer, which adds it, the delete is
queued before the add: the order of the stream is exact, and a clean handover can never read as
an overlap. A real overlap is always reported as an episode (``overlaps()``), even one too short
to measure. Running outside the watched hosts also means the watch survives ``power_off``.

Times are wall-clock seconds (CLOCK_REALTIME, comparable with ``hacore.lab.probe`` results and
``time.time()``). They come from ``ip -ts``, which stamps each notification with gettimeofday()
when it reads it (netlink carries no kernel timestamp): microsecond resolution, and on an idle
machine within about 0.1 ms of the change; a busy machine can delay the read by a few ms, which
shifts the stamps but never the order.

The state at the start comes from a snapshot of each host (``Host.addresses``) taken once the
monitor sleeps on its subscribed socket, so no change falls between the two; a change that
races the snapshot is in the stream, and its kind says what was there before it.

``AddressSampler`` / ``sample_addresses`` is the fallback: it polls each host's addresses with a
netlink dump every few milliseconds, from sockets opened inside the hosts' namespaces (no
process per sample). It can miss an overlap shorter than its period and reports only overlaps it
is sure of. The tests use ``AddressWatch``; the sampler stays for machines whose ``ip`` lacks
``all-nsid`` (iproute2 < 4.6) and as a cross-check.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import datetime
import ipaddress
import itertools
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hacore.lab.netns import Host, Lab, LabCommandError, LabError, wait_for

__all__ = [
    "AddressEvent",
    "AddressSampler",
    "AddressWatch",
    "Overlap",
    "Sample",
    "SampleResult",
    "WatchError",
    "parse_monitor",
    "sample_addresses",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Interval = tuple[float, float | None]

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
COMMAND_TIMEOUT = 10.0
# ip monitor's subscriptions: RTNLGRP_IPV4_IFADDR (5) and RTNLGRP_IPV6_IFADDR (9), as bits.
_ADDRESS_GROUPS = (1 << 4) | (1 << 8)
NETLINK_ROUTE = 0

# One notification of `ip -ts -o monitor address all-nsid`. Headers of notifications that ip
# then filters out stay on the line without a body ("[ts] [ts] 2: eth0 ..."), so a line is
# searched, not matched whole. The interface name is resolved in the monitor's own namespace
# and means nothing for another one: only the nsid and the address count.
_EVENT = re.compile(
    r"\[(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6})\]\s*"
    r"(?:\[nsid (?P<nsid>\d+|current)\]\s*)?"
    r"(?P<deleted>Deleted\s+)?\d+:\s+\S+\s+inet6?\s+(?P<address>[0-9A-Fa-f.:]+)"
)


class WatchError(LabError):
    """The watch could not run, or its record cannot be trusted (events were lost)."""


@dataclass(frozen=True)
class AddressEvent:
    """The address appeared on (``present``) or left a host, stamped in wall-clock seconds."""

    time: float
    host: str
    present: bool


@dataclass(frozen=True)
class Overlap:
    """A time during which at least two hosts held the address; ``end`` None while it lasts."""

    start: float
    end: float | None
    hosts: frozenset[str]

    def seconds(self, now: float) -> float:
        return (self.end if self.end is not None else now) - self.start


def _ip_time(text: str) -> float:
    # ip prints local time; the watch runs it with TZ=UTC, so the stamp reads back exactly.
    stamp = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f")
    return stamp.replace(tzinfo=datetime.UTC).timestamp()


def parse_monitor(
    lines: Iterable[str], address: str, hosts_by_nsid: Mapping[int, str]
) -> list[AddressEvent]:
    """The events for ``address`` in ``ip -ts -o monitor address all-nsid`` output (run with
    TZ=UTC), in stream order. Notifications from namespaces not in ``hosts_by_nsid`` and an
    unfinished last line are ignored."""
    wanted = ipaddress.ip_address(address)
    events: list[AddressEvent] = []
    for line in lines:
        if not line.endswith("\n"):
            break
        for match in _EVENT.finditer(line):
            nsid = match["nsid"]
            if nsid is None or nsid == "current" or int(nsid) not in hosts_by_nsid:
                continue
            try:
                if ipaddress.ip_address(match["address"]) != wanted:
                    continue
            except ValueError:
                continue
            events.append(
                AddressEvent(
                    _ip_time(match["time"]), hosts_by_nsid[int(nsid)], match["deleted"] is None
                )
            )
    return events


def _parse_address(address: str) -> IPAddress:
    try:
        return ipaddress.ip_address(address.split("/", maxsplit=1)[0])
    except ValueError:
        raise LabError(f"{address!r} is not an IP address") from None


def _common_lab(hosts: Sequence[Host]) -> Lab:
    if not hosts:
        raise LabError("watch at least one host")
    lab = hosts[0].lab
    if any(host.lab is not lab for host in hosts):
        raise LabError("the watched hosts must belong to one lab")
    if len({host.name for host in hosts}) != len(hosts):
        raise LabError("a host is named twice in the watch")
    return lab


def _ip(argv: Sequence[str]) -> str:
    done = subprocess.run(
        ["ip", *argv],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise LabCommandError(["ip", *argv], done.returncode, done.stdout, done.stderr)
    return done.stdout


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            todo += [
                int(w) for w in Path(f"/proc/{current}/task/{current}/children").read_text().split()
            ]
    return found


def _monitor_socket(pid: int) -> tuple[str, int] | None:
    """(process state, bytes queued) of ``pid``'s NETLINK_ROUTE socket subscribed to address
    changes, or None while it has none (not subscribed yet, or not the monitor)."""
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        table = Path(f"/proc/{pid}/net/netlink").read_text().splitlines()[1:]
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    for row in table:
        fields = row.split()
        # sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
        if len(fields) >= 10 and fields[1] == str(NETLINK_ROUTE):
            groups = int(fields[3], 16)
            if groups & _ADDRESS_GROUPS == _ADDRESS_GROUPS and f"socket:[{fields[9]}]" in inodes:
                return state, int(fields[4])
    return None


def _listening(pid: int) -> bool:
    """Is ``pid`` asleep with its address subscription in place?

    ip binds its socket with the groups, sets NETLINK_LISTEN_ALL_NSID at once (no blocking call
    in between), then sleeps only in recvmsg(): subscribed and asleep means nothing is missed.
    """
    found = _monitor_socket(pid)
    return found is not None and found[0] == "S"


def _drained(pid: int) -> bool:
    """Has ``pid`` read (and, as ip flushes each one, written) every queued notification?"""
    found = _monitor_socket(pid)
    return found is not None and found == ("S", 0)


class AddressWatch:
    """Record when ``address`` is on which of ``hosts``, from kernel notifications.

    Use as a context manager (or ``start``/``stop``); every query can be made while the watch
    runs and after it stopped. Hosts are reported by name.
    """

    def __init__(self, hosts: Sequence[Host], address: str) -> None:
        self.lab = _common_lab(hosts)
        self.hosts = tuple(hosts)
        self.names = tuple(host.name for host in hosts)
        self.address = str(_parse_address(address))
        count = len(list(self.lab.workdir.glob("watch-*.log")))
        self.output = self.lab.workdir / f"watch-{count}.log"
        self.errors = self.output.with_suffix(".err")
        self.output.touch()
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._hosts_by_nsid: dict[int, str] = {}
        self._snapshot: dict[str, tuple[bool, float]] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> AddressWatch:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> AddressWatch:
        """Start monitoring; returns once no change can be missed and the initial state is known."""
        if self._proc is not None:
            raise WatchError("this watch was started already")
        self._hosts_by_nsid = self._nsids()
        argv = ["ip", "netns", "exec", self.lab.switch_ns]
        argv += ["ip", "-ts", "-o", "monitor", "address", "all-nsid"]
        with self.output.open("wb") as out, self.errors.open("wb") as err:
            # The switch namespace belongs to the lab: Lab.close kills whatever is left there,
            # so even a watch that is never stopped does not outlive the lab.
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env={**os.environ, "TZ": "UTC"},
                start_new_session=True,
            )
        try:
            wait_for(self._ready, START_TIMEOUT, what="the address monitor to listen")
            self.started_at = time.time()
            for host in self.hosts:
                present = self.address in host.addresses()
                self._snapshot[host.name] = (present, time.time())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop monitoring (bounded); the record stays readable. Idempotent."""
        proc = self._proc
        if proc is None or self.stopped_at is not None:
            return
        self.stopped_at = time.time()
        # Let ip read what the kernel queued until now, or the last changes would die with it.
        with contextlib.suppress(TimeoutError):
            wait_for(
                lambda: (
                    proc.poll() is not None or any(_drained(pid) for pid in _descendants(proc.pid))
                ),
                STOP_TIMEOUT,
                what="the address monitor to read its queue",
            )
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
                break
            except subprocess.TimeoutExpired:
                continue

    def _nsids(self) -> dict[int, str]:
        """nsid (in the switch namespace) → host name; ids are assigned where missing."""

        def known() -> dict[str, int]:
            entries = json.loads(_ip(["-j", "-n", self.lab.switch_ns, "netns", "list-id"]) or "[]")
            return {e["name"]: int(e["nsid"]) for e in entries if "name" in e}

        ids = known()
        missing = [host for host in self.hosts if host.netns not in ids]
        for host in missing:
            _ip(["-n", self.lab.switch_ns, "netns", "set", host.netns, "auto"])
        if missing:
            ids = known()
        return {ids[host.netns]: host.name for host in self.hosts}

    def _ready(self) -> bool:
        assert self._proc is not None
        if self._proc.poll() is not None:
            raise WatchError(
                f"`ip monitor` exited with {self._proc.returncode}: {self._stderr() or 'no output'}"
            )
        return any(_listening(pid) for pid in _descendants(self._proc.pid))

    def _stderr(self) -> str:
        try:
            return self.errors.read_text(errors="replace").strip()
        except FileNotFoundError:
            return ""

    # -- the record --------------------------------------------------------------------------

    def events(self) -> list[AddressEvent]:
        """Every add and delete of the address on a watched host so far, in kernel order."""
        if self.started_at is None:
            raise WatchError("the watch has not started")
        problems = self._stderr()
        # ENOBUFS: the kernel dropped notifications the monitor read too slowly.
        if "receive error" in problems or "No buffer space" in problems:
            raise WatchError(f"the address monitor lost notifications: {problems}")
        with self.output.open(errors="replace") as file:
            return parse_monitor(file, self.address, self._hosts_by_nsid)

    def timeline(self) -> list[tuple[float, frozenset[str]]]:
        """(time, holders) at the start and at every change, in order."""
        events = self.events()
        assert self.started_at is not None
        holders: set[str] = set()
        for name in self.names:
            present, snapshot_end = self._snapshot[name]
            # A change that raced the snapshot is in the stream: its kind says what was there
            # before it. Otherwise the snapshot is the state since the start.
            first = next((e for e in events if e.host == name and e.time <= snapshot_end), None)
            if (not first.present) if first is not None else present:
                holders.add(name)
        timeline = [(self.started_at, frozenset(holders))]
        last = self.started_at
        for event in events:
            if event.present == (event.host in holders):
                continue  # an update of a present address, or a repeat
            (holders.add if event.present else holders.discard)(event.host)
            # Stamps follow the stream order; the clamp only guards against a clock step.
            last = max(last, event.time)
            timeline.append((last, frozenset(holders)))
        return timeline

    def intervals(self) -> dict[str, list[Interval]]:
        """host → [(start, end or None while held)], wall-clock seconds; the watch's start
        opens the interval of a host that held the address already."""
        result: dict[str, list[Interval]] = {name: [] for name in self.names}
        previous: frozenset[str] = frozenset()
        for at, holders in self.timeline():
            for name in holders - previous:
                result[name].append((at, None))
            for name in previous - holders:
                start, _ = result[name][-1]
                result[name][-1] = (start, at)
            previous = holders
        return result

    def overlaps(self) -> list[Overlap]:
        """Every episode of the address on two or more hosts at once (empty: never)."""
        episodes: list[Overlap] = []
        for at, holders in self.timeline():
            current = episodes[-1] if episodes and episodes[-1].end is None else None
            if len(holders) >= 2:
                if current is None:
                    episodes.append(Overlap(at, None, holders))
                else:
                    episodes[-1] = dataclasses.replace(current, hosts=current.hosts | holders)
            elif current is not None:
                episodes[-1] = dataclasses.replace(current, end=at)
        return episodes

    def overlap(self) -> float:
        """Total seconds during which two or more hosts held the address."""
        now = self._now()
        return sum(episode.seconds(now) for episode in self.overlaps())

    def max_overlap(self) -> float:
        """The longest single episode of the address on two or more hosts, in seconds."""
        now = self._now()
        return max((episode.seconds(now) for episode in self.overlaps()), default=0.0)

    def holders_now(self) -> set[str]:
        """The hosts holding the address according to the notifications read so far."""
        return set(self.timeline()[-1][1])

    def wait_holders(self, expected: Collection[str], timeout: float) -> float:
        """Wait until exactly ``expected`` hold the address; returns when that began."""
        wanted = frozenset(expected)

        def reached() -> float | None:
            timeline = self.timeline()
            return timeline[-1][0] if timeline[-1][1] == wanted else None

        what = f"{self.address} held by exactly {sorted(wanted) or 'nobody'}"
        try:
            return wait_for(reached, timeout, what=what)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; seen: {self.describe()}") from None

    def describe(self) -> str:
        """The record in words, times relative to the start: for assertion messages."""
        start = self.started_at or 0.0

        def span(interval: Interval) -> str:
            begin, end = interval
            return f"{begin - start:.4f}-" + ("now" if end is None else f"{end - start:.4f}")

        held = self.intervals()
        parts = [f"{name}: {', '.join(map(span, held[name])) or 'never'}" for name in self.names]
        return f"{self.address} ({'; '.join(parts)})"

    def _now(self) -> float:
        return self.stopped_at if self.stopped_at is not None else time.time()


# -- fallback: polling ------------------------------------------------------------------------

CLONE_NEWNET = 0x40000000
RTM_NEWADDR, RTM_GETADDR = 20, 22
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFA_ADDRESS, IFA_LOCAL = 1, 2
_NLMSGHDR = struct.Struct("=IHHII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTATTR = struct.Struct("=HH")


def _align(n: int) -> int:
    return (n + 3) & ~3


def _netlink_socket_in(netns: str) -> socket.socket:
    """A NETLINK_ROUTE socket that lives in ``netns`` (a socket keeps the namespace it was made
    in). Only the calling thread switches namespace, and it switches back before returning."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {netns} failed")
        try:
            return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to the original namespace failed")
    finally:
        os.close(home)
        os.close(target)


def _holds(sock: socket.socket, address: IPAddress, seq: int) -> bool:
    """Does the namespace of ``sock`` have ``address`` on any interface? (one RTM_GETADDR dump)"""
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    body = _IFADDRMSG.pack(family, 0, 0, 0, 0)
    header = _NLMSGHDR.pack(
        _NLMSGHDR.size + len(body), RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, 0
    )
    sock.send(header + body)
    wanted, found = address.packed, False
    while True:
        data = sock.recv(65536)
        offset = 0
        while offset + _NLMSGHDR.size <= len(data):
            length, kind, _flags, got_seq, _pid = _NLMSGHDR.unpack_from(data, offset)
            if length < _NLMSGHDR.size:
                raise WatchError("malformed netlink reply")
            if got_seq == seq:
                if kind == NLMSG_DONE:
                    return found
                if kind == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", data, offset + _NLMSGHDR.size)
                    raise OSError(-code, "RTM_GETADDR failed")
                if kind == RTM_NEWADDR:
                    at = offset + _NLMSGHDR.size + _IFADDRMSG.size
                    while at + _RTATTR.size <= offset + length:
                        size, attr = _RTATTR.unpack_from(data, at)
                        if size < _RTATTR.size:
                            break
                        if attr in (IFA_ADDRESS, IFA_LOCAL) and data[at + 4 : at + size] == wanted:
                            found = True
                        at += _align(size)
            offset += _align(length)


@dataclass(frozen=True)
class Sample:
    """One look at one host: did it hold the address at ``time``?"""

    time: float
    host: str
    present: bool


@dataclass(frozen=True)
class SampleResult:
    address: str
    hosts: tuple[str, ...]
    samples: tuple[Sample, ...]

    def held(self) -> dict[str, list[tuple[float, float]]]:
        """host → spans between consecutive samples that both saw the address (a lone sample
        that saw it is a span of zero length). Between two such samples the address is assumed
        to have stayed: the sampler cannot see a blip shorter than its period."""
        spans: dict[str, list[tuple[float, float]]] = {name: [] for name in self.hosts}
        for name in self.hosts:
            mine = [s for s in self.samples if s.host == name]
            for s in mine:
                if s.present:
                    spans[name].append((s.time, s.time))
            for a, b in itertools.pairwise(mine):
                if a.present and b.present:
                    spans[name].append((a.time, b.time))
        return spans

    def together(self) -> list[tuple[float, float, frozenset[str]]]:
        """(start, end, hosts) where two hosts surely held the address at the same time."""
        held = self.held()
        found = []
        for x, y in itertools.combinations(self.hosts, 2):
            for a0, a1 in held[x]:
                for b0, b1 in held[y]:
                    start, end = max(a0, b0), min(a1, b1)
                    if start <= end:
                        found.append((start, end, frozenset((x, y))))
        return sorted(found, key=lambda item: item[0])

    def holders(self) -> set[str]:
        """The hosts whose latest sample saw the address."""
        latest: dict[str, bool] = {}
        for s in self.samples:
            latest[s.host] = s.present
        return {name for name, present in latest.items() if present}


class AddressSampler:
    """Poll ``hosts`` for ``address`` every ``period`` seconds in a background thread."""

    def __init__(self, hosts: Sequence[Host], address: str, period: float = 0.005) -> None:
        _common_lab(hosts)
        if not 0 < period <= 10:
            raise LabError(f"sampling period must be in (0, 10] s, not {period}")
        self.hosts = tuple(hosts)
        self.address = _parse_address(address)
        self.period = period
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="address-sampler", daemon=True)

    def __enter__(self) -> AddressSampler:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> AddressSampler:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            self.stop()
            raise WatchError("the address sampler did not start")
        self._raise()
        return self

    def stop(self) -> SampleResult:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT)
        self._raise()
        return self.result()

    def result(self) -> SampleResult:
        with self._lock:
            samples = tuple(self._samples)
        return SampleResult(str(self.address), tuple(h.name for h in self.hosts), samples)

    def _raise(self) -> None:
        if self._error is not None:
            raise WatchError(f"the address sampler failed: {self._error!r}") from self._error

    def _run(self) -> None:
        sockets: list[socket.socket] = []
        try:
            for host in self.hosts:
                sockets.append(_netlink_socket_in(host.netns))
                sockets[-1].settimeout(COMMAND_TIMEOUT)
        except BaseException as exc:
            self._error = exc
        self._ready.set()
        try:
            seq = itertools.count(1)
            while self._error is None and not self._stop.is_set():
                for host, sock in zip(self.hosts, sockets, strict=True):
                    present = _holds(sock, self.address, next(seq))
                    sample = Sample(time.time(), host.name, present)
                    with self._lock:
                        self._samples.append(sample)
                self._stop.wait(self.period)
        except BaseException as exc:
            self._error = exc
        finally:
            for sock in sockets:
                sock.close()


def sample_addresses(
    hosts: Sequence[Host], address: str, *, period: float = 0.005, duration: float
) -> SampleResult:
    """Poll ``hosts`` for ``address`` every ``period`` seconds for ``duration`` seconds."""
    if not 0 < duration <= 3600:
        raise LabError(f"sampling duration must be in (0, 3600] s, not {duration}")
    sampler = AddressSampler(hosts, address, period).start()
    try:
        sampler._stop.wait(duration)
    finally:
        result = sampler.stop()
    return result
