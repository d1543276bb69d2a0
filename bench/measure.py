"""The instruments: what the client's probe saw, what the daemons cost, and a CPU load.

Times are wall-clock seconds (CLOCK_REALTIME) throughout, so the probe's kernel receive stamps,
``ip monitor``'s stamps (``hacore.lab.watch``) and the moment the bench pulled a plug compare
directly.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hacore.lab.netns import Host, LabError, wait_for
from hacore.lab.probe import ProbeResult

__all__ = [
    "CpuLoad",
    "Footprint",
    "PacketLog",
    "first_reply",
    "lost_between",
    "sample_footprints",
    "silence_between",
    "start_cpu_load",
    "wait_quiet",
]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# -- what the client saw ----------------------------------------------------------------------


def first_reply(result: ProbeResult, mac: str, after: float) -> float | None:
    """The time of the first reply from ``mac`` received after ``after``."""
    times = [r.time for r in result.replies if r.mac == mac and r.time > after]
    return min(times, default=None)


def silence_between(result: ProbeResult, start: float, end: float) -> float:
    """The longest time without any reply inside [start, end], minus one probe interval (what
    an uninterrupted stream shows): 0 when no request went unanswered."""
    marks = [start, *sorted(r.time for r in result.replies if start < r.time < end), end]
    longest = max(b - a for a, b in itertools.pairwise(marks))
    return max(0.0, longest - result.interval)


def lost_between(result: ProbeResult, start: float, end: float) -> int:
    """Requests sent inside [start, end] that got no reply."""
    answered = {r.seq for r in result.replies}
    return sum(1 for seq, sent in result.requests if start <= sent <= end and seq not in answered)


# -- what the daemons cost --------------------------------------------------------------------


def _cpu_ns(pid: int) -> int | None:
    """CPU time of every thread of ``pid`` in nanoseconds (schedstat), None if it is gone."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for task in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{task}/schedstat").read_text()
        except OSError:
            continue  # a thread that just ended
        total += int(text.split()[0])
    if total == 0:
        # No schedstat (CONFIG_SCHEDSTATS off): utime + stime, in clock ticks.
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total = (int(fields[11]) + int(fields[12])) * 1_000_000_000 // CLOCK_TICKS
    return total


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass(frozen=True)
class Footprint:
    """One node's daemon over a window: CPU % of one core per slice, and memory at the end."""

    cpu_percent: tuple[float, ...]  # one value per slice
    mean_cpu_percent: float  # over the whole window
    rss_mb: float  # summed over the daemon's processes
    processes: int


def sample_footprints(
    nodes: Mapping[str, Callable[[], Sequence[int]]], seconds: float, slice_s: float = 1.0
) -> dict[str, Footprint]:
    """Measure, over the same window, the processes that each ``nodes[name]()`` names (asked
    again at every slice: Heartbeat forks resource scripts), for ``seconds``. A process that
    appears mid-window counts from the slice it is first seen in."""
    before = {name: _cpu_by_pid(pids_of()) for name, pids_of in nodes.items()}
    slices: dict[str, list[float]] = {name: [] for name in nodes}
    totals = dict.fromkeys(nodes, 0)
    first = time.monotonic()
    deadline = first + seconds
    while (now := time.monotonic()) < deadline:
        time.sleep(max(0.0, min(slice_s, deadline - now)))
        elapsed = max(time.monotonic() - now, 1e-9)
        for name, pids_of in nodes.items():
            after = _cpu_by_pid(pids_of())
            used = sum(value - before[name].get(pid, value) for pid, value in after.items())
            slices[name].append(100.0 * used / 1e9 / elapsed)
            totals[name] += used
            before[name] = after
    window = max(time.monotonic() - first, 1e-9)
    result: dict[str, Footprint] = {}
    for name, pids_of in nodes.items():
        pids = list(pids_of())
        result[name] = Footprint(
            cpu_percent=tuple(slices[name]),
            mean_cpu_percent=100.0 * totals[name] / 1e9 / window,
            rss_mb=sum(_rss_kb(pid) for pid in pids) / 1024,
            processes=len(pids),
        )
    return result


# What "past the start-up work" means: every node's daemon under this share of one core over
# one window (steady state is 0.01-2 %; start-up — imports, the probe, first exchanges — is
# tens of %). Bounded: a daemon that never goes quiet is measured anyway, and said so.
QUIET_PERCENT = 5.0
QUIET_WINDOW_S = 0.5
QUIET_TIMEOUT_S = 20.0


def wait_quiet(
    nodes: Mapping[str, Callable[[], Sequence[int]]],
    *,
    below_percent: float = QUIET_PERCENT,
    window_s: float = QUIET_WINDOW_S,
    timeout_s: float = QUIET_TIMEOUT_S,
) -> tuple[float, bool]:
    """Wait until, over one ``window_s`` window, each ``nodes[name]()`` used less than
    ``below_percent`` of a core: the start-up work is over and a footprint can begin. Returns
    (seconds waited, whether it went quiet before ``timeout_s``)."""
    first = time.monotonic()
    while True:
        got = sample_footprints(nodes, window_s, slice_s=window_s)
        waited = time.monotonic() - first
        if all(fp.mean_cpu_percent < below_percent for fp in got.values()):
            return waited, True
        if waited >= timeout_s:
            return waited, False


def _cpu_by_pid(pids: Sequence[int]) -> dict[int, int]:
    found = {pid: _cpu_ns(pid) for pid in pids}
    return {pid: value for pid, value in found.items() if value is not None}


# -- what crossed the wire ---------------------------------------------------------------------


class PacketLog:
    """``tcpdump`` in a lab host: the kernel receive time of every packet matching a filter.

    Used to find the last keepalive (or VRRP advert) the survivor heard from the node that was
    powered off, which is where every system's deadtime really starts.
    """

    def __init__(self, host: Host, bpf: str, output: Path) -> None:
        self.host = host
        self.output = output
        self.errors = output.with_suffix(".err")
        argv = ["tcpdump", "-i", host.iface, "-n", "-tt", "-l", "--immediate-mode", "-Q", "in"]
        argv += ["-Z", "root", bpf]
        with output.open("wb") as out, self.errors.open("wb") as err:
            self.proc = host.run(argv, stdout=out, stderr=err)

        def listening() -> bool:
            if self.proc.poll() is not None:
                raise LabError(f"tcpdump exited: {self.errors.read_text(errors='replace')}")
            return "listening on" in self.errors.read_text(errors="replace")

        wait_for(listening, 10.0, what=f"tcpdump in {host.name}")

    def times(self) -> list[float]:
        found = []
        for line in self.output.read_text(errors="replace").splitlines():
            word = line.split(" ", 1)[0]
            try:
                found.append(float(word))
            except ValueError:
                continue
        return found

    def stop(self) -> None:
        self.host.kill(self.proc)


# -- load -------------------------------------------------------------------------------------

_BUSY_LOOP = "while True:\n    pass\n"


@dataclass
class CpuLoad:
    """Busy processes in a lab host (so the lab kills them whatever happens)."""

    host: Host
    procs: list[subprocess.Popen[bytes]]
    tool: str

    def stop(self) -> None:
        for proc in self.procs:
            self.host.kill(proc)


def _have_stress_ng() -> bool:
    if shutil.which("stress-ng"):
        return True
    # The benchmark installs its peers' and its load's Debian packages when missing (as root,
    # which the lab needs anyway); a refusal leaves the Python fallback.
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", "stress-ng"],
            capture_output=True,
            timeout=300,
            check=False,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return False
    return shutil.which("stress-ng") is not None


def start_cpu_load(host: Host, workers: int, seconds: float) -> CpuLoad:
    """Keep ``workers`` CPUs busy for ``seconds`` (stress-ng, or busy Python loops)."""
    if _have_stress_ng():
        argv = ["stress-ng", "--cpu", str(workers), "--timeout", f"{int(seconds) + 1}s", "--quiet"]
        return CpuLoad(host, [host.run(argv)], "stress-ng")
    procs = [host.run([sys.executable, "-c", _BUSY_LOOP]) for _ in range(workers)]
    return CpuLoad(host, procs, "python busy loops")
