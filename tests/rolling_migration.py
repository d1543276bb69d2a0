"""The rolling migration of docs/migrating-from-heartbeat.md, scripted in a namespace lab.

Two Heartbeat 3.0.6 nodes, pc1 and pc2, serve 198.51.100.55 (haresources ``pc1 IPaddr::...``,
auto_failback on) to a client that pings it every 5 ms throughout. Then, as the guide says:

1. stop Heartbeat on pc2;
2. start hacore on pc2 from the same /etc/ha.d, keeping the node's UUID; pc2 rejoins;
3. move the resources to pc2: ``hb_standby`` on pc1;
4. stop Heartbeat on pc1;
5. start hacore on pc1: auto_failback brings the VIP back to pc1.

The report lists the steps with their durations, every silence of the VIP (no reply for longer
than ``SILENCE_S``) with the step it fell in, and the total time the VIP did not answer.
``tests/test_heartbeat_mixed.py`` runs it and checks that the VIP was silent only during the
two moves. As root, run it alone with ``.venv/bin/python -m tests.rolling_migration``.
"""

from __future__ import annotations

import itertools
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hacore.lab.heartbeat import HeartbeatNode, start_heartbeat, write_heartbeat_config
from hacore.lab.netns import Host, Lab, LabCommandError, LabError, wait_for
from hacore.lab.nodes import HacoreNode, localize
from hacore.lab.probe import Probe, ProbeResult, start_probe
from hacore.lab.watch import AddressWatch, Overlap
from hacore.paths import runtime_paths

__all__ = [
    "MOVE_STEPS",
    "STEPS",
    "MigrationError",
    "MigrationReport",
    "Silence",
    "Step",
    "log_tail",
    "main",
    "migrate",
]

VIP = "198.51.100.55"
VIP_KEY = f"IPaddr::{VIP}/24/eth0"
NODES = ("pc1", "pc2")
KEEPALIVE_MS = 200
DEADTIME_MS = 2000
INITDEAD_MS = 10_000
START_TIMEOUT = 45.0  # Heartbeat's start-up exchange alone takes ~10 s
MOVE_TIMEOUT = 25.0
CLIENT_TIMEOUT = 30.0
PROBE_INTERVAL = 0.005
PROBE_SECONDS = 600.0  # outlives the migration; killed when it is done
# No reply for longer than this is a silence (ten probes in a row: not a lost packet).
SILENCE_S = 0.05

SERVE = "heartbeat on pc1 and pc2 serves the VIP"
STOP_HEARTBEAT_PC2 = "stop heartbeat on pc2"
START_HACORE_PC2 = "start hacore on pc2 (same /etc/ha.d); pc2 rejoins"
MOVE_TO_PC2 = "move the resources to pc2: hb_standby on pc1"
STOP_HEARTBEAT_PC1 = "stop heartbeat on pc1"
START_HACORE_PC1 = "start hacore on pc1; auto_failback brings the VIP back"
STEPS = (
    STOP_HEARTBEAT_PC2,
    START_HACORE_PC2,
    MOVE_TO_PC2,
    STOP_HEARTBEAT_PC1,
    START_HACORE_PC1,
)
# The planned moves: the only steps during which the VIP may go unanswered.
MOVE_STEPS = (MOVE_TO_PC2, START_HACORE_PC1)
# What a node's /var/lib/heartbeat holds that makes it the same node to its peers.
IDENTITY_FILES = ("hb_uuid", "hb_generation")
LOG_TAIL = 40  # lines of each log in an error message
# Log lines that say nothing about resources, left out of error messages: Heartbeat's start-up
# advice, its per-status harc runs, and the gaps it sees (and fills) under loss.
_NOISE = re.compile(
    r"Core dumps could be lost|Consider setting|rc\.d/status status|lost packet\(s\) for"
    r"|No pkts missing from"
)


class MigrationError(RuntimeError):
    """A step did not reach its outcome; the message names it and carries the logs' tails."""


@dataclass(frozen=True)
class Step:
    name: str
    started: float  # wall-clock seconds
    ended: float

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass(frozen=True)
class Silence:
    """No reply from the VIP from ``start`` (the last reply) to ``end`` (the next one)."""

    start: float
    end: float
    step: str  # the step during which it began

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class MigrationReport:
    steps: tuple[Step, ...]
    silences: tuple[Silence, ...]
    answerers: tuple[str, ...]  # the nodes that answered for the VIP, in order
    overlaps: tuple[Overlap, ...]  # the VIP on both nodes at once (empty: never)
    sent: int
    lost: int
    # The total time the VIP did not answer, in seconds: every gap between two replies longer
    # than two probe intervals, less the one interval a reply is expected to take anyway.
    unanswered: float

    def silent_during(self, step: str) -> float:
        return sum(s.seconds for s in self.silences if s.step == step)

    def render(self) -> str:
        width = max(len(step.name) for step in self.steps)
        lines = [f"rolling migration heartbeat 3.0.6 -> hacore, VIP {VIP}:"]
        lines.append(f"  {'step':<{width}}  {'took':>8}  {'VIP silent':>10}")
        for step in self.steps:
            silent = self.silent_during(step.name)
            lines.append(f"  {step.name:<{width}}  {step.seconds:7.3f}s  {silent:9.3f}s")
        both = "never" if not self.overlaps else f"{len(self.overlaps)} time(s)"
        lines.append(f"VIP answered by: {' -> '.join(self.answerers)}; on both nodes: {both}")
        lines.append(
            f"total time the VIP did not answer: {self.unanswered:.3f} s "
            f"(probed every {PROBE_INTERVAL * 1000:.0f} ms; {len(self.silences)} silence(s) "
            f"over {SILENCE_S * 1000:.0f} ms; {self.lost} of {self.sent} probes lost)"
        )
        return "\n".join(lines)


# -- the lab -----------------------------------------------------------------------------------


class _Migration:
    def __init__(self, lab: Lab, workdir: Path, say: Callable[[str], None]) -> None:
        self.lab = lab
        self.workdir = workdir
        self.say = say
        self.hosts = {name: lab.add_host(name) for name in NODES}
        self.client = lab.add_host("client")
        # The cluster's /etc/ha.d, the same files on both nodes from start to end.
        self.ha_d = write_heartbeat_config(
            workdir / "etc-ha.d",
            nodes=list(NODES),
            keepalive=KEEPALIVE_MS,
            deadtime=DEADTIME_MS,
            initdead=INITDEAD_MS,
            auth_key="migration-secret",
            auth_method="sha1",
            haresources=[f"pc1 {VIP_KEY}"],
            auto_failback="on",
        )
        self.heartbeat: dict[str, HeartbeatNode] = {}
        self.hacore: dict[str, HacoreNode] = {}
        self.watch: AddressWatch | None = None
        self.steps: list[Step] = []
        self.t0 = time.monotonic()

    @contextmanager
    def step(self, name: str, *, record: bool = True) -> Iterator[None]:
        self.say(f"[{time.monotonic() - self.t0:7.2f} s] {name}")
        started = time.time()
        try:
            yield
        except MigrationError:
            raise
        except (LabError, TimeoutError, RuntimeError) as exc:
            raise MigrationError(f"{name}: {exc}\n{self.explain()}") from exc
        if record:
            self.steps.append(Step(name, started, time.time()))

    def explain(self) -> str:
        """Where the VIP was and the tail of every daemon's log."""
        parts = [self.watch.describe()] if self.watch is not None else []
        for name, hb in self.heartbeat.items():
            parts += [f"--- heartbeat on {name} (tail)", *log_tail(hb.log())]
        for name, node in self.hacore.items():
            parts += [f"--- hacore on {name} (tail)", *log_tail(node.log())]
        return "\n".join(parts)

    def start_hacore(self, name: str) -> HacoreNode:
        """``hactl run`` on ``name`` from a copy of the cluster's /etc/ha.d (the lab's nodes
        share one machine: the copy pins the node name and its log file), with the identity
        the node had under Heartbeat (the guide: copy hb_uuid and hb_generation)."""
        config = self.workdir / f"hacore-{name}"
        shutil.copytree(self.ha_d, config, symlinks=True)
        localize(config, name)
        state = runtime_paths(config).state_dir
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        for file in IDENTITY_FILES:
            source = self.heartbeat[name].var_lib / file
            if source.exists():
                shutil.copy2(source, state / file)
        node = HacoreNode(self.hosts[name], config).start()
        self.hacore[name] = node
        return node


def log_tail(log: str) -> list[str]:
    """The last lines of a daemon's log that matter to resources: for error messages."""
    return [line for line in log.splitlines() if not _NOISE.search(line)][-LOG_TAIL:]


def _left(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def _wait_out_of_transition(node: HeartbeatNode, timeout: float) -> None:
    def stable() -> bool:
        try:
            return node.rscstatus() != "transition"
        except LabCommandError:  # cl_status cannot sign on while heartbeat (re)starts
            return False

    wait_for(
        stable,
        timeout,
        interval=0.1,
        what=f"heartbeat on {node.hostname} out of transition",
    )


def _wait_hacore_sees(node: HacoreNode, holder: str, timeout: float) -> None:
    state = "started" if node.name == holder else "stopped"

    def placed(group: dict[str, Any]) -> bool:
        return bool(group["holders"] == [holder] and group["local_state"] == state)

    node.wait_group(VIP_KEY, placed, timeout, f"held by {holder} alone, {state} here")


def _wait_answered_by(probe: Probe, host: Host, timeout: float, count: int = 10) -> None:
    had = sum(1 for reply in probe.result().replies if reply.mac == host.mac)
    probe.wait_for_replies(had + count, mac=host.mac, timeout=timeout)


def _silences(result: ProbeResult, steps: tuple[Step, ...]) -> tuple[Silence, ...]:
    times = sorted(reply.time for reply in result.replies)
    found: list[Silence] = []
    for a, b in itertools.pairwise(times):
        if b - a > SILENCE_S:
            during = [step.name for step in steps if step.started <= a]
            found.append(Silence(a, b, during[-1] if during else SERVE))
    return tuple(found)


def _unanswered(result: ProbeResult) -> float:
    times = sorted(reply.time for reply in result.replies)
    gaps = (b - a for a, b in itertools.pairwise(times))
    return sum(gap - PROBE_INTERVAL for gap in gaps if gap > 2 * PROBE_INTERVAL)


def migrate(lab: Lab, workdir: Path, *, say: Callable[[str], None] = print) -> MigrationReport:
    """Run the guide's rolling migration in ``lab`` (which must have no hosts yet)."""
    m = _Migration(lab, workdir, say)
    pc1, pc2 = m.hosts["pc1"], m.hosts["pc2"]

    with m.step(SERVE, record=False):
        deadline = time.monotonic() + START_TIMEOUT
        for name in NODES:
            m.heartbeat[name] = start_heartbeat(m.hosts[name], m.ha_d)
        for name in NODES:
            m.heartbeat[name].wait_settled(_left(deadline))
        wait_for(lambda: VIP in pc1.addresses(), _left(deadline), what=f"pc1 to hold {VIP}")
        for hb in m.heartbeat.values():
            _wait_out_of_transition(hb, _left(deadline))
        probe = start_probe(m.client, VIP, duration=PROBE_SECONDS, interval=PROBE_INTERVAL)
        _wait_answered_by(probe, pc1, CLIENT_TIMEOUT)

    with AddressWatch([pc1, pc2], VIP) as watch:
        m.watch = watch
        with m.step(STOP_HEARTBEAT_PC2):
            mark = m.heartbeat["pc1"].log_mark()
            m.heartbeat["pc2"].stop()
            m.heartbeat["pc1"].wait_for_log(
                r"Received shutdown notice from 'pc2'", timeout=MOVE_TIMEOUT, since=mark
            )

        with m.step(START_HACORE_PC2):
            mark = m.heartbeat["pc1"].log_mark()
            hacore2 = m.start_hacore("pc2")
            deadline = time.monotonic() + START_TIMEOUT
            hacore2.wait_node_state("pc1", "active", _left(deadline))
            m.heartbeat["pc1"].wait_for_log(
                r"Status update for node pc2: status active", timeout=_left(deadline), since=mark
            )
            _wait_hacore_sees(hacore2, "pc1", _left(deadline))
            _wait_out_of_transition(m.heartbeat["pc1"], _left(deadline))
            if "changed its uuid" in m.heartbeat["pc1"].log()[mark:]:
                raise MigrationError(f"pc2 did not keep its UUID:\n{m.explain()}")
            if watch.holders_now() != {"pc1"}:
                raise MigrationError(f"the VIP moved when pc2 rejoined:\n{m.explain()}")

        with m.step(MOVE_TO_PC2):
            mark = m.heartbeat["pc1"].log_mark()
            m.heartbeat["pc1"].standby("all")
            deadline = time.monotonic() + MOVE_TIMEOUT
            watch.wait_holders({"pc2"}, _left(deadline))
            m.heartbeat["pc1"].wait_for_log(
                r"Other node completed standby takeover", timeout=_left(deadline), since=mark
            )
            _wait_hacore_sees(hacore2, "pc2", _left(deadline))
            _wait_out_of_transition(m.heartbeat["pc1"], _left(deadline))
            _wait_answered_by(probe, pc2, CLIENT_TIMEOUT)

        with m.step(STOP_HEARTBEAT_PC1):
            m.heartbeat["pc1"].stop()
            hacore2.wait_node_state("pc1", "dead", MOVE_TIMEOUT)

        with m.step(START_HACORE_PC1):
            hacore1 = m.start_hacore("pc1")
            deadline = time.monotonic() + START_TIMEOUT
            watch.wait_holders({"pc1"}, _left(deadline))
            for node in (hacore1, hacore2):
                _wait_hacore_sees(node, "pc1", _left(deadline))
            _wait_answered_by(probe, pc1, CLIENT_TIMEOUT)

    probe.host.kill(probe.proc)
    result = probe.result()
    names = {host.mac: host.name for host in m.hosts.values()}
    steps = tuple(m.steps)
    return MigrationReport(
        steps=steps,
        silences=_silences(result, steps),
        answerers=tuple(names.get(run.mac, run.mac) for run in result.answerers()),
        overlaps=tuple(watch.overlaps()),
        sent=result.sent,
        lost=result.lost,
        unanswered=_unanswered(result),
    )


def main() -> int:
    try:
        with Lab() as lab:
            report = migrate(lab, lab.workdir / "migration")
    except (LabError, MigrationError) as exc:
        print(f"rolling migration failed: {exc}", file=sys.stderr)
        return 1
    print(report.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
