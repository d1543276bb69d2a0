"""The two-node scenarios, each run for every system: unplanned failover (and the failback that
follows it), planned moves, idle footprint, and false failovers under load and loss.

Every repetition that cannot be measured (a timeout, a daemon that died) is recorded as an
error of its series and its cluster is rebuilt from scratch; the run goes on.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bench.hacore_log import dead_times, group_operations
from bench.measure import (
    PacketLog,
    first_reply,
    lost_between,
    sample_footprints,
    silence_between,
    start_cpu_load,
    wait_quiet,
)
from bench.peers import VIP, HacorePair, Pair, make_pair
from bench.profiles import PROFILES, Profile
from bench.results import Run, Series
from hacore.lab.netns import Lab, LabError, wait_for
from hacore.lab.probe import Probe, ProbeResult, start_probe
from hacore.lab.watch import AddressWatch

__all__ = ["Options", "failover", "footprint", "planned_moves", "soak"]

PROBE_SECONDS = 600.0  # outlives every measurement; each is killed when its measurement ends
ANSWERED_TIMEOUT = 30.0  # beyond the deadtime, for the client to be answered by the survivor
SETTLE_TIMEOUT = 60.0
SETTLE_REPLIES = 40  # 0.2 s of uninterrupted answers at the probe's 5 ms spacing
FAILURES = (LabError, TimeoutError, RuntimeError, subprocess.SubprocessError, OSError)


@dataclass(frozen=True)
class Options:
    reps: int
    quick: bool
    systems: tuple[str, ...]
    footprint_s: float
    soak_minutes: float
    scale_sizes: tuple[int, ...]
    command: Callable[[str], str]  # scenario → the command that reproduces it
    say: Callable[[str], None]


def _agent_detail(pair: Pair, since: float) -> dict[str, list[float]]:
    if not isinstance(pair, HacorePair):
        return {}
    detail: dict[str, list[float]] = {}
    for name in pair.hosts:
        for op, seconds in group_operations(pair.log(name), since):
            detail.setdefault(f"{name}_{op}_s", []).append(seconds)
    return detail


class Cluster:
    """A lab holding one pair, rebuilt after any failure so the next repetition starts clean."""

    def __init__(self, system: str, profile: Profile) -> None:
        self.system = system
        self.profile = profile
        self._lab: Lab | None = None
        self._pair: Pair | None = None

    def pair(self) -> Pair:
        if self._pair is None:
            self._lab = Lab()
            try:
                self._pair = make_pair(self.system, self._lab, self.profile)
                self._pair.start()
            except BaseException:
                self.close()
                raise
        return self._pair

    def close(self) -> None:
        if self._lab is not None:
            self._lab.close()
        self._lab, self._pair = None, None

    @contextlib.contextmanager
    def repetition(self, series: Series) -> Iterator[Pair]:
        """One repetition; a failure is recorded in ``series`` and the cluster rebuilt."""
        try:
            yield self.pair()
        except FAILURES as exc:
            series.errors.append(f"{type(exc).__name__}: {exc}"[:2000])
            self.close()


def _probe(pair: Pair, answered_by: str) -> Probe:
    """A probe of the VIP from the client, once ``answered_by`` answers it steadily."""
    probe = start_probe(pair.client, VIP, duration=PROBE_SECONDS)
    probe.wait_for_replies(SETTLE_REPLIES, mac=pair.hosts[answered_by].mac, timeout=10.0)
    return probe


def _stop(probe: Probe) -> ProbeResult:
    probe.host.kill(probe.proc)
    return probe.result()


def _wait_answers(probe: Probe, mac: str, after: float, count: int, timeout: float) -> None:
    """Wait for ``count`` replies from ``mac`` received after ``after``."""
    before = sum(1 for r in probe.result().replies if r.mac == mac and r.time <= after)
    probe.wait_for_replies(before + count, mac=mac, timeout=timeout)


# -- unplanned failover, then failback --------------------------------------------------------


def failover(run: Run, opts: Options, profile_name: str) -> None:
    """Power pc1 off; time until the client is answered by pc2. Boot pc1 again; measure the
    silence while the VIP comes back to it (auto_failback)."""
    profile = PROFILES[profile_name]
    scenario = f"failover-{profile_name}"
    for system in opts.systems:
        cluster = Cluster(system, profile)
        deadtime = profile.deadtime_s(system)
        common = {"command": opts.command(scenario), "settings": profile.settings(system)}
        fo = run.new(scenario, "failover_s", system, "s", limit=deadtime, **common)
        overhead = run.new(scenario, "overhead_s", system, "s", limit=0.0, **common)
        reaction = run.new(scenario, "reaction_s", system, "s", limit=0.0, **common)
        back = run.new(scenario, "failback_gap_s", system, "s", limit=0.0, **common)
        overlap = run.new(scenario, "failback_overlap_s", system, "s", limit=0.0, **common)
        try:
            attempts = 0
            while len(fo.samples) < opts.reps and attempts < opts.reps + 3:
                attempts += 1
                opts.say(f"{scenario} {system}: repetition {len(fo.samples) + 1}/{opts.reps}")
                with cluster.repetition(fo) as pair:
                    _failover_once(pair, fo, overhead, reaction, deadtime)
                    _failback_once(pair, back, overlap)
        finally:
            cluster.close()


def _failover_once(
    pair: Pair, fo: Series, overhead: Series, reaction: Series, deadtime: float
) -> None:
    pc1, pc2 = pair.hosts["pc1"], pair.hosts["pc2"]
    keepalive = pair.profile.keepalive_s(pair.system)
    probe = _probe(pair, "pc1")
    # hacore and Heartbeat keepalives (UDP 694) and VRRP adverts (IP protocol 112) from pc1.
    bpf = f"src host {pc1.address} and (udp port 694 or ip proto 112)"
    wire = PacketLog(pc2, bpf, pair.lab.workdir / f"keepalives-{time.time_ns()}.txt")
    try:
        # Kill at a random phase of pc1's keepalives, once the capture has seen one of them.
        wait_for(wire.times, 3 * keepalive + 5.0, what=f"a keepalive from pc1 in {pc2.name}")
        time.sleep(random.uniform(0, keepalive))
        with AddressWatch([pc2], VIP) as watch:
            killed = time.time()
            pair.power_off("pc1")
            _wait_answers(probe, pc2.mac, killed, 5, deadtime + ANSWERED_TIMEOUT)
            added = next((e.time for e in watch.events() if e.present and e.time > killed), None)
    finally:
        result = _stop(probe)
        wire.stop()
    heard = [t for t in wire.times() if t <= killed + 0.1]
    answered = first_reply(result, pc2.mac, killed)
    if answered is None:
        raise LabError("the survivor's replies vanished from the probe record")
    last_pc1 = max((r.time for r in result.replies if r.mac == pc1.mac), default=killed)
    detail: dict[str, object] = {
        "killed": killed,
        "answered": answered,
        "last_reply_from_dead_node": last_pc1,
        "vip_added_s": None if added is None else added - killed,
        "announce_s": None if added is None else answered - added,
    }
    if isinstance(pair, HacorePair):
        dead = [t for t in dead_times(pair.log("pc2"), "pc1") if t > killed - 1.0]
        detail["declared_dead_s"] = dead[0] - killed if dead else None
    detail.update(_agent_detail(pair, killed))
    last_heard = max(heard, default=None)
    detail["last_heard_before_kill_s"] = None if last_heard is None else killed - last_heard
    fo.add(answered - killed, **detail)
    overhead.add(answered - killed - deadtime)
    if last_heard is not None:
        # What the software adds once its deadtime has run out (from the last packet heard).
        reaction.add(answered - (last_heard + deadtime))


def _failback_once(pair: Pair, back: Series, overlap: Series) -> None:
    pc1 = pair.hosts["pc1"]
    probe = _probe(pair, "pc2")
    # Powered on before the watch starts: the VIP left on the dead node's downed interface is
    # cleared by the "reboot", and is no overlap.
    pair.power_on("pc1")
    try:
        with AddressWatch([pc1, pair.hosts["pc2"]], VIP) as watch:
            booted = time.time()
            pair.start_node("pc1")
            pair.wait_holder("pc1", SETTLE_TIMEOUT)
            _wait_answers(probe, pc1.mac, booted, SETTLE_REPLIES, ANSWERED_TIMEOUT)
            ended = time.time()
            episodes = watch.overlaps()
            both = sum(e.seconds(ended) for e in episodes)
    finally:
        result = _stop(probe)
    back.add(
        silence_between(result, booted, ended),
        lost=lost_between(result, booted, ended),
        booted=booted,
        answered_by_pc1=first_reply(result, pc1.mac, booted),
        **_agent_detail(pair, booted),
    )
    overlap.add(both, episodes=len(episodes))


# -- planned moves ----------------------------------------------------------------------------


def planned_moves(run: Run, opts: Options) -> None:
    """hb_standby on pc1 (the VIP goes to pc2), then hb_takeover on pc1 (it comes back); for
    keepalived, pc1's priority lowered below pc2's and restored. Fast profile timings."""
    profile = PROFILES["fast"]
    scenario = "switchover"
    for system in opts.systems:
        cluster = Cluster(system, profile)
        common = {"command": opts.command(scenario), "settings": profile.settings(system)}
        give = run.new(scenario, "standby_gap_s", system, "s", limit=0.0, **common)
        take = run.new(scenario, "takeover_gap_s", system, "s", limit=0.0, **common)
        overlap = run.new(scenario, "overlap_s", system, "s", limit=0.0, **common)
        try:
            attempts = 0
            while len(give.samples) < opts.reps and attempts < opts.reps + 3:
                attempts += 1
                opts.say(f"{scenario} {system}: repetition {len(give.samples) + 1}/{opts.reps}")
                with cluster.repetition(give) as pair:
                    _move_once(pair, give=True, gaps=give, overlap=overlap)
                    _move_once(pair, give=False, gaps=take, overlap=overlap)
        finally:
            cluster.close()


def _move_once(pair: Pair, *, give: bool, gaps: Series, overlap: Series) -> None:
    """A planned move asked on pc1: give the VIP to pc2, or take it back from pc2."""
    on = "pc1"
    source, to = ("pc1", "pc2") if give else ("pc2", "pc1")
    target = pair.hosts[to]
    probe = _probe(pair, source)
    try:
        with AddressWatch(list(pair.hosts.values()), VIP) as watch:
            asked = time.time()
            pair.move(on, give)
            pair.wait_holder(to, SETTLE_TIMEOUT)
            _wait_answers(probe, target.mac, asked, SETTLE_REPLIES, ANSWERED_TIMEOUT)
            ended = time.time()
            episodes = watch.overlaps()
            both = sum(e.seconds(ended) for e in episodes)
            moved = next((e.time for e in watch.events() if e.present and e.host == to), None)
    finally:
        result = _stop(probe)
    gaps.add(
        silence_between(result, asked, ended),
        lost=lost_between(result, asked, ended),
        asked=asked,
        vip_added_s=None if moved is None else moved - asked,
        answered_s=(first_reply(result, target.mac, asked) or ended) - asked,
        direction="standby" if give else "takeover",
        **_agent_detail(pair, asked),
    )
    overlap.add(both, episodes=len(episodes), direction="standby" if give else "takeover")


# -- footprint --------------------------------------------------------------------------------


def footprint(run: Run, opts: Options) -> None:
    """Steady-state CPU and RSS of each node's daemon at 1 s and at 100 ms keepalive."""
    for profile_name, label in (("classic", "1s"), ("fast", "100ms")):
        profile = PROFILES[profile_name]
        scenario = f"footprint-{label}"
        for system in opts.systems:
            common = {"command": opts.command("footprint"), "settings": profile.settings(system)}
            cpu = run.new(scenario, "cpu_percent", system, "%", **common)
            rss = run.new(scenario, "rss_mb", system, "MB", **common)
            cluster = Cluster(system, profile)
            opts.say(f"{scenario} {system}: {opts.footprint_s:g} s")
            try:
                with cluster.repetition(cpu) as pair:
                    daemons = {
                        name: functools.partial(pair.daemon_pids, name) for name in pair.hosts
                    }
                    waited, quiet = wait_quiet(daemons)  # past the start-up work
                    if not quiet:
                        opts.say(f"{scenario} {system}: still busy after {waited:.1f} s")
                    got = sample_footprints(daemons, opts.footprint_s)
                    for name, fp in got.items():
                        for value in fp.cpu_percent:
                            cpu.add(value, node=name)
                        rss.add(
                            fp.rss_mb,
                            node=name,
                            processes=fp.processes,
                            mean_cpu_percent=fp.mean_cpu_percent,
                        )
            finally:
                cluster.close()


# -- false failovers --------------------------------------------------------------------------

LOSS_PERCENT = 10.0


def soak(run: Run, opts: Options) -> None:
    """Every system at the fast profile at the same time, in labs of their own, for
    ``soak_minutes`` with both cores loaded and 10 % loss on each node's link: count the times
    pc2 took the VIP while pc1 was alive."""
    profile = PROFILES["fast"]
    scenario = "false-failovers"
    seconds = opts.soak_minutes * 60
    clusters = {system: Cluster(system, profile) for system in opts.systems}
    series = {
        system: run.new(
            scenario,
            "spurious_takeovers",
            system,
            "count",
            limit=0.0,
            command=opts.command(scenario),
            settings=f"{profile.settings(system)}; {opts.soak_minutes:g} min, "
            f"{LOSS_PERCENT:g} % loss per link, all CPUs loaded",
        )
        for system in opts.systems
    }
    both = {
        system: run.new(scenario, "overlap_s", system, "s", limit=0.0,
                        command=opts.command(scenario), settings=series[system].settings)
        for system in opts.systems
    }  # fmt: skip
    watches: dict[str, AddressWatch] = {}
    load = None
    try:
        for system, cluster in clusters.items():
            opts.say(f"{scenario} {system}: starting")
            with cluster.repetition(series[system]) as pair:
                watches[system] = AddressWatch(list(pair.hosts.values()), VIP).start()
        pairs = {s: c.pair() for s, c in clusters.items() if s in watches}
        for pair in pairs.values():
            for host in pair.hosts.values():
                pair.lab.loss(host, LOSS_PERCENT)
        marks = {s: len(pair.log("pc2")) for s, pair in pairs.items()}
        first = next(iter(pairs.values()))
        load = start_cpu_load(first.client, workers=_cpus(), seconds=seconds)
        opts.say(f"{scenario}: {opts.soak_minutes:g} min under {load.tool} and loss")
        started = time.time()
        time.sleep(seconds)
        ended = time.time()
        tool = load.tool
        load.stop()
        load = None
        for system, pair in pairs.items():
            watch = watches[system]
            events = [e for e in watch.events() if started <= e.time <= ended]
            takeovers = sum(1 for e in events if e.present and e.host == "pc2")
            episodes = [e for e in watch.overlaps() if e.start >= started]
            overlap_s = sum(e.seconds(ended) for e in episodes)
            detail: dict[str, object] = {
                "seconds": ended - started,
                "overlap_episodes": len(episodes),
                "overlap_s": overlap_s,
                "vip_events": len(events),
                "load": tool,
                # pc2's own count of the times it gave pc1 up (its log since the start).
                "pc2_logged_takeovers": len(
                    re.findall(pair.takeover_line, pair.log("pc2")[marks[system] :])
                ),
            }
            series[system].add(float(takeovers), **detail)
            both[system].add(overlap_s, episodes=len(episodes))
    except FAILURES as exc:
        for s in series.values():
            s.errors.append(f"{type(exc).__name__}: {exc}"[:2000])
    finally:
        if load is not None:
            load.stop()
        for watch in watches.values():
            watch.stop()
        for cluster in clusters.values():
            cluster.close()


def _cpus() -> int:
    return len(os.sched_getaffinity(0))
