"""Mixed clusters: one node runs the real Debian Heartbeat 3.0.6, the other hacore, from the same
/etc/ha.d (ha.cf, authkeys with sha1, haresources ``pc1 IPaddr::VIP/24/eth0``, auto_failback on).

Every scenario runs in both role assignments (Heartbeat on the preferred node pc1 and hacore on
pc2, and the reverse) and, except the partition, with and without 10 % loss on both nodes'
links; the rolling migration of docs/migrating-from-heartbeat.md is scripted in
``tests/rolling_migration.py`` and run here, and reports the total time the VIP did not answer.

Where the VIP was is read from the kernel (``AddressWatch``: which namespace held it, in the
kernel's own order; ``AddressSampler`` as a second witness for planned moves) and from a client
(the probe: who answered, and for how long nobody did). What each daemon believed comes from
hacore's status and Heartbeat's log; a failure message carries the tail of both logs, because a
mixed cluster that goes wrong is understood from both sides.

Heartbeat sets the pace: it acquires resources only after its start-up exchange ("Initial
resource acquisition complete"), it ignores a standby request while either side is in
transition ("Other side is in flux") and it can hold a SIGTERM received then for good; so it is
asked nothing before both sides have settled (``Mixed.wait_placed``).

Measured times are printed (``pytest -s``); bounds are generous for a busy two-core machine.
"""

from __future__ import annotations

import itertools
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hacore.lab.heartbeat import HeartbeatNode, start_heartbeat, write_heartbeat_config
from hacore.lab.netns import Host, Lab, LabCommandError, LabError, wait_for
from hacore.lab.nodes import HacoreNode, localize
from hacore.lab.probe import Probe, ProbeResult, start_probe
from hacore.lab.watch import AddressSampler, AddressWatch
from tests.rolling_migration import MOVE_STEPS, log_tail, migrate

# The lab tests: namespaces and the real Heartbeat.
MIXED = (pytest.mark.netns, pytest.mark.heartbeat)
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "migrating-from-heartbeat.md"

VIP = "198.51.100.55"
VIP_KEY = f"IPaddr::{VIP}/24/eth0"
PREFERRED = "pc1"
KEEPALIVE_MS = 200
DEADTIME_MS = 2000
# Long, so that a slow start of the preferred node never lets the other take its group at
# start-up; Heartbeat requires initdead >= deadtime anyway.
INITDEAD_MS = 10_000
# A graceful stop must hand over "at once": a deadtime long enough that waiting for it could
# not pass for that.
STOP_DEADTIME_MS = 6000
AT_ONCE_S = 3.0
LOSS_PERCENT = 10
START_TIMEOUT = 45.0  # both daemons up, Heartbeat's start-up exchange over, the VIP placed
MOVE_TIMEOUT = 25.0  # a planned move: Heartbeat's scripts, its 10 s standby request timeout
CLIENT_TIMEOUT = 30.0  # the client follows the VIP (a lost GARP costs it an ARP timeout)
PROBE_SECONDS = 300.0  # outlives every test; each test kills its probe when done
# Heartbeat's own witness of the VIP on both nodes (AuditResources).
BOTH_OWN = "Both machines own our resources!"

_ROLE_IDS = {"pc1": "heartbeat-pc1-hacore-pc2", "pc2": "hacore-pc1-heartbeat-pc2"}


def _cases(*losses: float) -> pytest.MarkDecorator:
    """Both role assignments (``heartbeat_on``: the node that runs Heartbeat; hacore runs the
    other one), each with every ``loss`` percentage given."""
    return pytest.mark.parametrize(
        ("heartbeat_on", "loss"),
        [
            pytest.param(
                node, loss, id=_ROLE_IDS[node] + (f"-loss{loss:g}" if loss else ""), marks=MIXED
            )
            for node in ("pc1", "pc2")
            for loss in losses
        ],
    )


# Every scenario of the issue, without and with loss; the partition without (a partition under
# loss tells nothing a clean one does not).
EVERY_CASE = _cases(0, LOSS_PERCENT)
CLEAN = _cases(0)


# -- the cluster -------------------------------------------------------------------------------


@dataclass
class Mixed:
    """pc1 and pc2 (one Heartbeat, one hacore) serving the VIP, and a client."""

    lab: Lab
    ha_d: Path  # the cluster's /etc/ha.d, read as is by Heartbeat
    hosts: dict[str, Host]
    client: Host
    heartbeat_on: str
    hacore: HacoreNode  # reads a copy of ha_d with its own nodeinfo and log file
    deadtime_s: float
    loss: float = 0
    heartbeat: HeartbeatNode | None = None

    @property
    def pc1(self) -> Host:
        return self.hosts["pc1"]

    @property
    def pc2(self) -> Host:
        return self.hosts["pc2"]

    @property
    def hacore_on(self) -> str:
        return self.hacore.name

    def other(self, name: str) -> str:
        return "pc2" if name == "pc1" else "pc1"

    def runs_heartbeat(self, name: str) -> bool:
        return name == self.heartbeat_on

    def hb(self) -> HeartbeatNode:
        assert self.heartbeat is not None, "heartbeat was not started"
        return self.heartbeat

    # -- daemons ---------------------------------------------------------------------------

    def start_daemon(self, name: str) -> None:
        if self.runs_heartbeat(name):
            self.heartbeat = start_heartbeat(self.hosts[name], self.ha_d)
        else:
            self.hacore.start()

    def start(self) -> Mixed:
        """Both daemons; the preferred node's second, so that the other one, up first, must
        wait for it instead of taking its group."""
        self.start_daemon(self.other(PREFERRED))
        self.start_daemon(PREFERRED)
        return self

    def power_off(self, name: str) -> None:
        """Every process of the node dies at once, then its cable is pulled."""
        if self.runs_heartbeat(name):
            self.hb().kill()  # its own PID namespace: every heartbeat process at once
        self.lab.power_off(self.hosts[name])

    def power_on(self, name: str) -> None:
        """Power back on: the VIP left on the interface is gone, as after a reboot. The daemon
        is started apart (``start_daemon``), as a boot would, once the machine is up."""
        self.lab.power_on(self.hosts[name])

    def stop(self, name: str) -> None:
        """Graceful stop (SIGTERM, as the service's stop sends); returns once it has exited."""
        if self.runs_heartbeat(name):
            self.hb().stop()
        else:
            assert self.hacore.stop() == 0, self.explain()

    def standby(self, name: str) -> None:
        """The node's own standby tool: ``hb_standby all`` or ``hactl standby all``. Both only
        ask; the move is awaited by the caller."""
        if self.runs_heartbeat(name):
            self.hb().standby("all")
        else:
            done = self.hacore.standby("all", wait=False)
            assert done.returncode == 0, done.stderr

    def takeover(self, name: str) -> None:
        """The node's own takeover tool: ``hb_takeover all`` or ``hactl takeover all``."""
        if self.runs_heartbeat(name):
            self.hb().takeover("all")
        else:
            done = self.hacore.takeover("all", wait=False)
            assert done.returncode == 0, done.stderr

    def tool(self, name: str) -> str:
        return "hb_standby" if self.runs_heartbeat(name) else "hactl standby"

    # -- observing -------------------------------------------------------------------------

    def watch(self) -> AddressWatch:
        return AddressWatch([self.pc1, self.pc2], VIP)

    def probe(self) -> Probe:
        return start_probe(self.client, VIP, duration=PROBE_SECONDS)

    def heartbeat_mark(self) -> int:
        return self.hb().log_mark()

    def wait_heartbeat_log(self, pattern: str, timeout: float, since: int = 0) -> None:
        try:
            self.hb().wait_for_log(pattern, timeout=timeout, since=since)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.explain()}") from None

    def wait_placed(self, holder: str, watch: AddressWatch, timeout: float) -> float:
        """The VIP is on ``holder`` alone, and both running daemons have settled on that:
        hacore sees ``holder`` as the only holder, Heartbeat is out of transition. Returns when
        the kernel had it so (``AddressWatch.wait_holders``)."""
        deadline = time.monotonic() + timeout
        try:
            since = watch.wait_holders({holder}, timeout)
            if self.hacore.running():
                state = "started" if holder == self.hacore_on else "stopped"

                def placed(group: dict[str, Any]) -> bool:
                    return bool(group["holders"] == [holder] and group["local_state"] == state)

                self.hacore.wait_group(
                    VIP_KEY, placed, _left(deadline), f"held by {holder} alone, {state} here"
                )
            if self.heartbeat is not None and self.heartbeat.running():
                self.heartbeat.wait_settled(_left(deadline))
                hb = self.heartbeat
                wait_for(
                    lambda: _stable(hb),
                    _left(deadline),
                    interval=0.1,
                    what=f"heartbeat on {hb.hostname} out of transition",
                )
            # Still so once both have settled: nothing moved in between.
            watch.wait_holders({holder}, _left(deadline))
        except (TimeoutError, LabError) as exc:  # LabError: heartbeat exited meanwhile
            raise AssertionError(f"{exc}\n{self.explain(watch)}") from None
        return since

    def explain(self, watch: AddressWatch | None = None) -> str:
        """Where the VIP was and the tail of both logs: for failure messages."""
        parts = [watch.describe()] if watch is not None else []
        parts += [f"--- hacore on {self.hacore_on} (tail)", *log_tail(self.hacore.log())]
        if self.heartbeat is not None:
            heartbeat_log = log_tail(self.heartbeat.log())
            parts += [f"--- heartbeat on {self.heartbeat_on} (tail)", *heartbeat_log]
        return "\n".join(parts)

    def assert_heartbeat_never_saw_both(self) -> None:
        """Heartbeat's own audit (AuditResources) never found the group on both nodes. Under
        loss it can run on a stale rsc_hold (the update lost, our ask_resources done first,
        the update retransmitted after), between two Heartbeat nodes too: the kernel's
        AddressWatch is the witness there."""
        if self.heartbeat is not None and not self.loss:
            assert BOTH_OWN not in self.heartbeat.log(), self.explain()


def _stable(hb: HeartbeatNode) -> bool:
    """Heartbeat answers ``cl_status rscstatus``, and not with ``transition``. (While it
    restarts itself, cl_status cannot sign on: not stable either.)"""
    try:
        return hb.rscstatus() != "transition"
    except LabCommandError:
        return False


def _left(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def _mixed(
    lab: Lab,
    tmp_path: Path,
    heartbeat_on: str,
    *,
    deadtime_ms: int = DEADTIME_MS,
    loss: float = 0,
) -> Mixed:
    """The reference scenario with Heartbeat on ``heartbeat_on`` and hacore on the other node;
    not started yet. ``loss`` percent of the frames from and to each node are dropped."""
    hosts = {name: lab.add_host(name) for name in ("pc1", "pc2")}
    client = lab.add_host("client")
    for host in hosts.values():
        lab.loss(host, loss)
    ha_d = write_heartbeat_config(
        tmp_path / "ha.d",
        nodes=["pc1", "pc2"],
        keepalive=KEEPALIVE_MS,
        deadtime=deadtime_ms,
        initdead=max(INITDEAD_MS, deadtime_ms),
        auth_key="mixed-secret",
        auth_method="sha1",
        haresources=[f"{PREFERRED} {VIP_KEY}"],
        auto_failback="on",
    )
    hacore_on = "pc2" if heartbeat_on == "pc1" else "pc1"
    ours = tmp_path / "hacore"
    shutil.copytree(ha_d, ours, symlinks=True)
    localize(ours, hacore_on)
    return Mixed(
        lab=lab,
        ha_d=ha_d,
        hosts=hosts,
        client=client,
        heartbeat_on=heartbeat_on,
        hacore=HacoreNode(hosts[hacore_on], ours),
        deadtime_s=deadtime_ms / 1000,
        loss=loss,
    )


# -- what the client saw -----------------------------------------------------------------------


def _replies_from(probe: Probe, host: Host) -> int:
    return sum(1 for reply in probe.result().replies if reply.mac == host.mac)


def _wait_answered_by(probe: Probe, host: Host, timeout: float, count: int = 10) -> None:
    """Wait for ``count`` more replies from ``host``'s MAC than it had given so far."""
    probe.wait_for_replies(_replies_from(probe, host) + count, mac=host.mac, timeout=timeout)


def _handover(result: ProbeResult, old: Host, new: Host, after: float = 0.0) -> float:
    """Seconds the VIP went unanswered when it passed from ``old`` to ``new`` (the first such
    change after wall-clock time ``after``): last reply from one to first reply from the other."""
    for a, b in itertools.pairwise(result.answerers()):
        if a.mac == old.mac and b.mac == new.mac and b.first >= after:
            return b.first - a.last
    raise AssertionError(f"the client never saw {VIP} pass from {old.name} to {new.name}")


def _stop_probe(probe: Probe) -> ProbeResult:
    probe.host.kill(probe.proc)
    return probe.result()


def _neighbour_is(client: Host, host: Host) -> bool:
    return client.neighbour_mac(VIP) == host.mac


def _serving(
    lab: Lab, tmp_path: Path, heartbeat_on: str, loss: float, *, deadtime_ms: int = DEADTIME_MS
) -> Mixed:
    """The cluster started and settled, pc1 serving the VIP."""
    c = _mixed(lab, tmp_path, heartbeat_on, deadtime_ms=deadtime_ms, loss=loss)
    with c.watch() as startup:
        c.start()
        c.wait_placed("pc1", startup, START_TIMEOUT)
    return c


def _probe_answered_by_pc1(c: Mixed) -> Probe:
    probe = c.probe()
    _wait_answered_by(probe, c.pc1, timeout=CLIENT_TIMEOUT)
    return probe


def _kind(c: Mixed, name: str) -> str:
    return "heartbeat" if c.runs_heartbeat(name) else "hacore"


# -- start-up ----------------------------------------------------------------------------------


@EVERY_CASE
def test_at_start_up_only_the_preferred_node_takes_the_vip(
    lab: Lab, tmp_path: Path, heartbeat_on: str, loss: float
) -> None:
    c = _mixed(lab, tmp_path, heartbeat_on, loss=loss)
    with c.watch() as watch:
        started = time.time()
        c.start()
        served = c.wait_placed("pc1", watch, START_TIMEOUT)
    print(f"\nstart-up ({heartbeat_on} runs heartbeat): VIP on pc1 {served - started:.3f} s")
    # pc2 never had it, not even for an instant; pc1 took it once and kept it.
    assert watch.intervals() == {"pc1": [(served, None)], "pc2": []}, c.explain(watch)
    rscstatus = c.hacore.hactl("resource", "status")
    assert rscstatus.stdout.strip() == ("local" if c.hacore_on == "pc1" else "none")
    c.assert_heartbeat_never_saw_both()


# -- unplanned failover and failback -----------------------------------------------------------


@EVERY_CASE
def test_power_off_fails_over_to_the_other_daemon_and_auto_failback_brings_the_vip_back(
    lab: Lab, tmp_path: Path, heartbeat_on: str, loss: float
) -> None:
    c = _serving(lab, tmp_path, heartbeat_on, loss)
    probe = _probe_answered_by_pc1(c)

    # pc1 loses power (kill -9 of every process, then the cable): pc2 declares it dead after
    # deadtime and takes the VIP. (The dead pc1 keeps the address on its interface until it
    # boots, so only pc2 is watched here.)
    with AddressWatch([c.pc2], VIP) as survivor:
        cut = time.time()
        c.power_off("pc1")
        try:
            taken = survivor.wait_holders({"pc2"}, c.deadtime_s + MOVE_TIMEOUT)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{c.explain()}") from None
    _wait_answered_by(probe, c.pc2, timeout=CLIENT_TIMEOUT)
    wait_for(lambda: _neighbour_is(c.client, c.pc2), CLIENT_TIMEOUT, what="the VIP at pc2's MAC")
    if c.runs_heartbeat("pc2"):
        c.wait_heartbeat_log(r"node pc1: is dead", MOVE_TIMEOUT)
    else:
        c.hacore.wait_node_state("pc1", "dead", MOVE_TIMEOUT)
    failover = _handover(probe.result(), c.pc1, c.pc2)
    print(
        f"\npc1 ({_kind(c, 'pc1')}) powered off: VIP on pc2 {taken - cut:.3f} s later, "
        f"unanswered {failover:.3f} s (deadtime {c.deadtime_s:g} s)"
    )
    assert taken - cut < c.deadtime_s + 5.0

    # pc1 boots and its daemon starts: auto_failback on gives it the VIP back, and the
    # address is never on both nodes while it moves.
    c.power_on("pc1")
    with c.watch() as back:
        booted = time.time()
        c.start_daemon("pc1")
        returned = c.wait_placed("pc1", back, START_TIMEOUT + MOVE_TIMEOUT)
        _wait_answered_by(probe, c.pc1, timeout=CLIENT_TIMEOUT)
        wait_for(lambda: _neighbour_is(c.client, c.pc1), CLIENT_TIMEOUT, what="pc1's MAC")
    result = _stop_probe(probe)
    assert back.overlaps() == [], c.explain(back)
    assert back.intervals()["pc2"][-1][1] is not None, c.explain(back)  # released by pc2
    assert len(back.intervals()["pc1"]) == 1, c.explain(back)  # taken once, and kept
    failback = _handover(result, c.pc2, c.pc1, after=booted)
    print(f"failback: VIP on pc1 {returned - booted:.3f} s after boot, unanswered {failback:.3f} s")
    c.assert_heartbeat_never_saw_both()


# -- planned moves -----------------------------------------------------------------------------


@EVERY_CASE
def test_hb_standby_and_hactl_standby_move_the_vip_and_it_is_never_on_both_nodes(
    lab: Lab, tmp_path: Path, heartbeat_on: str, loss: float
) -> None:
    c = _serving(lab, tmp_path, heartbeat_on, loss)
    probe = _probe_answered_by_pc1(c)

    # Two independent witnesses: the kernel's ordered notifications, and a 5 ms sampler.
    sampler = AddressSampler([c.pc1, c.pc2], VIP, period=0.005)
    with c.watch() as watch, sampler:
        # pc1 goes standby with its own tool; then pc2 does with its own, and the VIP is back.
        moves: list[tuple[str, str, float]] = []
        for giver in ("pc1", "pc2"):
            taker = c.other(giver)
            mark = c.heartbeat_mark()
            asked = time.time()
            c.standby(giver)
            c.wait_placed(taker, watch, MOVE_TIMEOUT)
            # Heartbeat finished the three-phase handshake from its side, whichever side it was.
            done = (
                r"Other node completed standby takeover"
                if c.runs_heartbeat(giver)
                else r"Standby resource acquisition done"
            )
            c.wait_heartbeat_log(done, MOVE_TIMEOUT, since=mark)
            _wait_answered_by(probe, c.hosts[taker], timeout=CLIENT_TIMEOUT)
            moves.append((giver, taker, asked))
    result = _stop_probe(probe)

    assert watch.overlaps() == [], c.explain(watch)
    assert sampler.result().together() == [], c.explain(watch)
    held = watch.intervals()
    assert len(held["pc1"]) == 2 and len(held["pc2"]) == 1, c.explain(watch)
    print()
    for giver, taker, asked in moves:
        gap = _handover(result, c.hosts[giver], c.hosts[taker], after=asked)
        print(f"{c.tool(giver)} on {giver}: VIP to {taker}, unanswered {gap:.3f} s")
    assert "ignored.  Other side is in flux" not in c.hb().log(), c.explain(watch)
    c.assert_heartbeat_never_saw_both()


@EVERY_CASE
def test_the_takeover_tool_of_the_other_node_takes_the_vip_and_it_is_never_on_both_nodes(
    lab: Lab, tmp_path: Path, heartbeat_on: str, loss: float
) -> None:
    # `hactl takeover` on an hacore pc2, or `hb_takeover` on a Heartbeat pc2 (which asks pc1 to
    # run its standby, rc.d/hb_takeover): either way pc1 gives the VIP through the standby
    # handshake, as step 4 of the guide offers.
    c = _serving(lab, tmp_path, heartbeat_on, loss)
    mark = c.heartbeat_mark()
    with c.watch() as watch:
        asked = time.time()
        c.takeover("pc2")
        taken = c.wait_placed("pc2", watch, MOVE_TIMEOUT)
        done = (
            r"Other node completed standby takeover"
            if c.runs_heartbeat("pc1")
            else r"Standby resource acquisition done"
        )
        c.wait_heartbeat_log(done, MOVE_TIMEOUT, since=mark)
    print(f"\ntakeover on pc2: VIP there {taken - asked:.3f} s after the request")
    assert watch.overlaps() == [], c.explain(watch)
    assert watch.intervals()["pc2"] == [(taken, None)], c.explain(watch)
    rscstatus = c.hacore.hactl("resource", "status")
    assert rscstatus.stdout.strip() == ("none" if c.hacore_on == "pc1" else "foreign")
    c.assert_heartbeat_never_saw_both()


@EVERY_CASE
def test_a_graceful_stop_of_the_holder_hands_the_vip_over_long_before_deadtime(
    lab: Lab, tmp_path: Path, heartbeat_on: str, loss: float
) -> None:
    c = _serving(lab, tmp_path, heartbeat_on, loss, deadtime_ms=STOP_DEADTIME_MS)
    probe = _probe_answered_by_pc1(c)

    mark = c.heartbeat_mark()
    with c.watch() as watch:
        stopped = time.time()
        c.stop("pc1")
        try:
            taken = watch.wait_holders({"pc2"}, c.deadtime_s + MOVE_TIMEOUT)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{c.explain()}") from None
        _wait_answered_by(probe, c.pc2, timeout=CLIENT_TIMEOUT)
    result = _stop_probe(probe)

    gap = _handover(result, c.pc1, c.pc2, after=stopped)
    print(
        f"\n{_kind(c, 'pc1')} on pc1 stopped: VIP on pc2 {taken - stopped:.3f} s later, "
        f"unanswered {gap:.3f} s (deadtime {c.deadtime_s:g} s)"
    )
    assert taken - stopped < AT_ONCE_S, c.explain(watch)
    assert watch.overlaps() == [], c.explain(watch)
    assert VIP not in c.pc1.addresses()  # released, not left behind
    if c.runs_heartbeat("pc2"):
        # Heartbeat took over on hacore's goodbye (t=shutdone), not on its silence.
        c.wait_heartbeat_log(r"Received shutdown notice from 'pc1'", MOVE_TIMEOUT, since=mark)
    else:
        c.hacore.wait_node_state("pc1", "dead", MOVE_TIMEOUT)
        c.wait_placed("pc2", watch, MOVE_TIMEOUT)
        # Heartbeat's statuses after its goodbye are its last ones, not a return.
        assert "returning after partition" not in c.hacore.log(), c.explain(watch)


# -- partitions --------------------------------------------------------------------------------


# Known to fail in about 2 runs of 7 (issue 6 stays open for it): with Heartbeat on pc1, after
# the heal both sides' standby requests cross (hacore, holding pc1's group, asks pc1 to take it
# while Heartbeat asks for its foreign set), Heartbeat logs "Ignored standby message 'other'
# ... in state 2" and "Shutdown delayed until current resource activity finishes", and its
# restart after the partition does not come within the bound. Reported on every run (XFAIL or
# XPASS), not hidden.
_CROSSED_STANDBY = pytest.mark.xfail(
    reason="issue 6: Heartbeat on pc1 may defer its restart after the heal while standby "
    "requests cross",
    strict=False,
)


@CLEAN
def test_after_a_partition_heals_heartbeat_restarts_itself_and_pc1_alone_keeps_the_vip(
    lab: Lab, tmp_path: Path, heartbeat_on: str, loss: float, request: pytest.FixtureRequest
) -> None:
    # Two nodes without STONITH cannot avoid two copies while they cannot see each other. When
    # the partition heals, Heartbeat gives everything up and restarts itself ("Cluster node X
    # returning after partition"); hacore does not restart: the preferred node's copy is kept
    # and the other one stopped. In a mixed cluster both happen: the VIP ends on pc1 alone.
    if heartbeat_on == "pc1":
        request.applymarker(_CROSSED_STANDBY)
    c = _serving(lab, tmp_path, heartbeat_on, loss)
    assert c.hacore.proc is not None
    hacore_pid = c.hacore.proc.pid
    mark = c.heartbeat_mark()
    with c.watch() as watch:
        lab.partition(c.pc1, c.pc2)
        # Each side declares the other dead; pc2 starts a second copy.
        c.wait_heartbeat_log(rf"node {c.hacore_on}: is dead", c.deadtime_s + MOVE_TIMEOUT, mark)
        c.hacore.wait_node_state(c.heartbeat_on, "dead", c.deadtime_s + MOVE_TIMEOUT)
        try:
            watch.wait_holders({"pc1", "pc2"}, MOVE_TIMEOUT)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{c.explain()}") from None
        healed = time.time()
        lab.heal(c.pc1, c.pc2)
        c.wait_heartbeat_log(rf"Cluster node {c.hacore_on} returning after partition", 10, mark)
        c.wait_heartbeat_log(r"Performing heartbeat restart exec", MOVE_TIMEOUT, mark)
        single = c.wait_placed("pc1", watch, START_TIMEOUT + MOVE_TIMEOUT)
    print(f"\npartition healed: the VIP on pc1 alone {single - healed:.3f} s later")
    assert f"node {c.heartbeat_on} returning after partition" in c.hacore.log(), c.explain(watch)
    assert c.hacore.proc.pid == hacore_pid and c.hacore.running()  # hacore did not restart
    assert watch.holders_now() == {"pc1"}, c.explain(watch)


# -- the rolling migration ---------------------------------------------------------------------


@pytest.mark.netns
@pytest.mark.heartbeat
def test_the_rolling_migration_of_the_guide_leaves_the_vip_unanswered_only_during_moves(
    lab: Lab, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    report = migrate(lab, tmp_path, say=print)
    print("\n" + report.render())
    record_property("vip_unanswered_s", round(report.unanswered, 3))
    # Heartbeat on both, hacore on pc2, then on both: the VIP went pc1 → pc2 → pc1, never on
    # both nodes, and it was silent only while it moved (hb_standby, then auto_failback).
    assert report.answerers == ("pc1", "pc2", "pc1"), report.render()
    assert report.overlaps == (), report.render()
    assert {silence.step for silence in report.silences} <= set(MOVE_STEPS), report.render()
    assert all(silence.seconds < 5.0 for silence in report.silences), report.render()


# -- the guide cannot go stale -----------------------------------------------------------------

# `hactl` and what follows it: subcommands, options, arguments (up to a path or punctuation).
_HACTL = re.compile(r"\bhactl((?: [a-z][a-z-]*| --?[a-z][a-z-]*)+)")


def test_every_hactl_command_and_option_the_migration_guide_names_exists() -> None:
    import click

    from hacore.cli import main

    named = _HACTL.findall(GUIDE.read_text())
    assert len(named) > 10
    for words in named:
        command: click.Command = main
        for word in words.split():
            if word.startswith("-"):
                options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
                assert word in options, f"docs: `hactl{words}`: {word} is not an option"
            elif isinstance(command, click.Group) and word in command.commands:
                command = command.commands[word]
        assert command is not main, f"docs: `hactl{words}` names no command"
