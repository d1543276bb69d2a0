"""The chaos run: a three-node hacore cluster in namespaces driven through random faults.

One fault at a time, chosen by a seeded RNG: apply it, hold it, revert it, then wait for the
cluster to settle (every daemon answers and sees every node active, exactly one node holds the
VIP, and every daemon agrees which). Meanwhile three witnesses record:

- ``AddressWatch``: the kernel's own, ordered record of which namespace held the VIP;
- a status poller: every daemon's status over its control socket (the reply ``hactl status
  --json`` prints) every ``POLL_S``, for the rejected-datagram counters, peer states and the
  time each answer took;
- a client probing the VIP with ICMP every 10 ms (who answered, the longest silence).

The run ends with the invariants of issue 7, each with its worst observed value (see
``chaos.invariants``), and returns non-zero if one broke. A run is reproducible in its fault
sequence from its seed (the timing of a loaded machine is not).
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.invariants import FaultRecord, Verdict, judge_dual, judge_empty
from hacore.config import load
from hacore.control import ControlError, request
from hacore.lab.faults import Wire
from hacore.lab.netns import Host, Lab, LabError, wait_for
from hacore.lab.nodes import HacoreNode, wait_placed, write_toml_cluster
from hacore.lab.probe import Gap, Probe, start_probe
from hacore.lab.watch import AddressWatch
from hacore.paths import runtime_paths

NODES = ("pc1", "pc2", "pc3")
VIP = "198.51.100.99"
KEEPALIVE_MS = 200
DEADTIME_MS = 1500
DEADTIME_S = DEADTIME_MS / 1000
INITDEAD_MS = 10_000
START_TIMEOUT = 60.0
SETTLE_TIMEOUT = 30.0
# Settled means settled for this long: longer than deadtime plus a keepalive.
STABLE_S = (DEADTIME_MS + 2 * KEEPALIVE_MS) / 1000
POLL_S = 0.02
PROBE_INTERVAL = 0.01
# The group's start (Dummy, then IPaddr2) takes tens of ms; the allowance covers that and a
# loaded two-core machine's scheduling (the notifications, the daemon's own timers).
START_ALLOWANCE_S = 2.0
NO_HOLDER_BOUND_S = DEADTIME_S + START_ALLOWANCE_S
# A conflict, once visible, is resolved within this: a restarted daemon's start-up (imports,
# probe) plus one exchange of announcements and the loser's stop.
RESOLVE_BOUND_S = 8.0
# No new fault once less than this remains: the last one must have time to settle.
RESERVE_S = 12.0
# Faults that only disturb datagrams without losing any: no state may change during them.
DATAGRAM_FAULTS = ("delay", "duplicate", "reorder")
FAULT_KINDS = (
    "kill9",
    "power",
    "sigstop",
    "link",
    "partition",
    "oneway",
    "loss",
    *DATAGRAM_FAULTS,
    "standby",
    "takeover",
    "standby-restart",
)


@dataclass
class PollStats:
    """What the status poller saw (updated from its thread; read after it stopped)."""

    samples: int = 0
    unanswered: int = 0
    slowest_answer_s: float = 0.0
    # (node, daemon pid) -> verdict -> count: counters restart with the daemon.
    rejected: dict[tuple[str, int], dict[str, int]] = field(default_factory=dict)
    # Peer seen not active while only datagram-disturbing faults were in force.
    flaps_in_datagram_faults: list[str] = field(default_factory=list)

    def rejected_total(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for counts in self.rejected.values():
            total.update(counts)
        return total


class StatusPoller:
    """Ask every running daemon for its status every ``POLL_S`` in a background thread."""

    def __init__(self, nodes: dict[str, HacoreNode], current: Callable[[], str | None]) -> None:
        self.nodes = nodes
        self.current = current
        self.stats = PollStats()
        self.paused: set[str] = set()  # nodes deliberately down or frozen
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-poller", daemon=True)

    def start(self) -> StatusPoller:
        self._thread.start()
        return self

    def stop(self) -> PollStats:
        self._stop.set()
        self._thread.join(10)
        return self.stats

    def pause(self, name: str) -> None:
        with self._lock:
            self.paused.add(name)

    def resume(self, name: str) -> None:
        with self._lock:
            self.paused.discard(name)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, node in self.nodes.items():
                with self._lock:
                    if name in self.paused:
                        continue
                kind = self.current()
                asked = time.monotonic()
                try:
                    reply = request(node.socket, "status", timeout=2.0)
                except ControlError:
                    self.stats.unanswered += 1
                    continue
                took = time.monotonic() - asked
                status = reply.get("status")
                if not isinstance(status, dict):
                    continue
                self.stats.samples += 1
                self.stats.slowest_answer_s = max(self.stats.slowest_answer_s, took)
                key = (name, int(status.get("pid", 0)))
                self.stats.rejected[key] = dict(status.get("rejected", {}))
                if kind in DATAGRAM_FAULTS:
                    for peer in status.get("nodes", []):
                        if peer.get("state") != "active":
                            self.stats.flaps_in_datagram_faults.append(
                                f"{name} saw {peer.get('name')} {peer.get('state')} during {kind}"
                            )
            self._stop.wait(POLL_S)


@dataclass
class Chaos:
    lab: Lab
    nodes: dict[str, HacoreNode]
    client: Host
    key: str
    wires: dict[str, Wire]
    rng: random.Random
    log: Callable[[str], None]
    faults: list[FaultRecord] = field(default_factory=list)
    standby_checks: list[str] = field(default_factory=list)
    settle_failures: list[str] = field(default_factory=list)
    current: str | None = None
    poller: StatusPoller | None = None
    watch: AddressWatch | None = None

    # -- the cluster -------------------------------------------------------------------------

    def running(self) -> list[HacoreNode]:
        return [n for n in self.nodes.values() if n.running()]

    def kernel_holders(self) -> set[str]:
        assert self.watch is not None
        return self.watch.holders_now()

    def settled(self) -> str | None:
        """None when settled, else what is still wrong (for the failure report)."""
        holders = self.kernel_holders()
        if len(holders) != 1:
            return f"VIP held by {sorted(holders) or 'nobody'}"
        (holder,) = holders
        for node in self.nodes.values():
            status = node.status()
            if status is None:
                return f"{node.name} does not answer"
            for peer in status["nodes"]:
                if peer["state"] != "active":
                    return f"{node.name} sees {peer['name']} {peer['state']}"
            (group,) = (g for g in status["groups"] if g["key"] == self.key)
            if group["holders"] != [holder]:
                return f"{node.name} sees holders {group['holders']}, the kernel {holder}"
            if group["local_state"] != ("started" if node.name == holder else "stopped"):
                return f"{node.name}: group {group['local_state']}"
        return None

    def settle(self, fault: FaultRecord) -> None:
        """Wait until the cluster is settled and stays so for ``STABLE_S``: a consequence of
        this fault that comes late (a death declared deadtime after the last datagram heard)
        must land here, not in the next fault's time."""
        problem = "not checked"
        deadline = time.monotonic() + SETTLE_TIMEOUT
        stable_since: float | None = None
        while time.monotonic() < deadline:
            problem = self.settled() or ""
            now = time.monotonic()
            if problem:
                stable_since = None
            elif stable_since is None:
                stable_since = now
            elif now - stable_since >= STABLE_S:
                fault.settled = time.time()
                return
            time.sleep(0.05)
        text = f"{fault.describe()}: not settled {SETTLE_TIMEOUT:g} s after: {problem}"
        self.settle_failures.append(text)
        self.log(f"  !! {text}")
        self._repair()
        fault.settled = time.time()

    def _repair(self) -> None:
        """Bring a stuck cluster back (so one failure does not spoil the rest of the run)."""
        with contextlib.suppress(LabError):
            self.lab.clear_faults()
        for wire in self.wires.values():
            with contextlib.suppress(LabError):
                wire.clear()
        for node in self.nodes.values():
            if node.proc is not None and node.proc.poll() is None:
                node.host.kill(node.proc, signal.SIGCONT)
            if not node.running():
                node.start()
            node.hactl("standby", "none")
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: self.settled() is None, SETTLE_TIMEOUT, interval=0.1, what="repair")

    def holder(self) -> str | None:
        holders = self.kernel_holders()
        return next(iter(holders)) if len(holders) == 1 else None

    def pick(self, prefer_holder: float = 0.5) -> HacoreNode:
        holder = self.holder()
        if holder is not None and self.rng.random() < prefer_holder:
            return self.nodes[holder]
        return self.nodes[self.rng.choice(NODES)]

    def _hold(self, low: float, high: float) -> float:
        seconds = self.rng.uniform(low, high)
        time.sleep(seconds)  # the fault lasts this long: that is the experiment, not a wait
        return seconds

    def _restart(self, node: HacoreNode) -> None:
        node.start()
        assert self.poller is not None
        self.poller.resume(node.name)

    # -- faults ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _fault(
        self, kind: str, targets: tuple[str, ...], detail: str = ""
    ) -> Iterator[FaultRecord]:
        record = FaultRecord(len(self.faults) + 1, kind, targets, detail, time.time())
        self.faults.append(record)
        self.log(f"{record.describe()} at +{record.applied - self.faults[0].applied:.1f} s")
        self.current = kind
        try:
            yield record
        finally:
            if record.reverted is None:
                record.reverted = time.time()
            self.current = None

    def step(self, kind: str) -> None:
        assert self.poller is not None
        if kind == "kill9":
            node = self.pick()
            seconds = self.rng.uniform(0.2, 3.0)
            with self._fault(kind, (node.name,), f"down {seconds:.1f} s") as f:
                self.poller.pause(node.name)
                node.kill()
                time.sleep(seconds)  # the daemon stays dead this long
                f.reverted = time.time()
                self._restart(node)
        elif kind == "power":
            node = self.pick()
            seconds = self.rng.uniform(1.0, 4.0)
            with self._fault(kind, (node.name,), f"off {seconds:.1f} s") as f:
                self.poller.pause(node.name)
                self.lab.power_off(node.host)
                # A machine without power holds no address: drop the VIP it had, now. Its
                # agents' state files live in a tmpfs (/run) that a reboot clears: so here.
                if VIP in node.host.addresses():
                    node.host.remove_address(f"{VIP}/24")
                shutil.rmtree(runtime_paths(node.config_dir).rsctmp, ignore_errors=True)
                time.sleep(seconds)
                self.lab.power_on(node.host)
                f.reverted = time.time()
                self._restart(node)
        elif kind == "sigstop":
            node = self.pick()
            seconds = self.rng.uniform(0.5, 3.5)
            assert node.proc is not None
            with self._fault(kind, (node.name,), f"frozen {seconds:.1f} s"):
                self.poller.pause(node.name)
                node.host.kill(node.proc, signal.SIGSTOP)
                try:
                    time.sleep(seconds)
                finally:
                    node.host.kill(node.proc, signal.SIGCONT)
                    self.poller.resume(node.name)
        elif kind == "link":
            node = self.pick()
            with self._fault(kind, (node.name,)) as f:
                self.lab.link_down(node.host)
                f.detail = f"down {self._hold(1.0, 4.0):.1f} s"
                self.lab.link_up(node.host)
        elif kind == "partition":
            a, b = self.rng.sample(NODES, 2)
            with self._fault(kind, (a, b)) as f:
                self.lab.partition(self.nodes[a].host, self.nodes[b].host)
                f.detail = f"{self._hold(1.0, 4.0):.1f} s"
                self.lab.heal(self.nodes[a].host, self.nodes[b].host)
        elif kind == "oneway":
            src, dst = self.rng.sample(NODES, 2)
            with self._fault(kind, (src, dst)) as f:
                self.lab.block(self.nodes[src].host, self.nodes[dst].host)
                f.detail = f"{src}→{dst} cut {self._hold(1.0, 4.0):.1f} s"
                self.lab.unblock(self.nodes[src].host, self.nodes[dst].host)
        elif kind == "loss":
            node = self.pick()
            percent = self.rng.choice((10, 20, 30))
            with self._fault(kind, (node.name,), f"{percent} %") as f:
                self.lab.loss(node.host, percent)
                f.detail += f" for {self._hold(3.0, 8.0):.1f} s"
                self.lab.loss(node.host, 0)
        elif kind in DATAGRAM_FAULTS:
            settings: dict[str, float] = {
                "delay": {"delay_ms": self.rng.uniform(20, 50), "jitter_ms": 10.0},
                "duplicate": {"duplicate": self.rng.uniform(20, 60)},
                "reorder": {"reorder": self.rng.uniform(20, 40), "hold_ms": 500.0},
            }[kind]
            text = ", ".join(f"{k}={v:.0f}" for k, v in settings.items())
            with self._fault(kind, NODES, text) as f:
                for wire in self.wires.values():
                    wire.set(**settings)
                f.detail += f" for {self._hold(3.0, 6.0):.1f} s"
                for wire in self.wires.values():
                    wire.clear()
        elif kind in ("standby", "takeover"):
            # Standby mostly where the group is, takeover mostly where it is not.
            node = self.pick(prefer_holder=0.8 if kind == "standby" else 0.2)
            with self._fault(kind, (node.name,)) as f:
                move = node.standby if kind == "standby" else node.takeover
                done = move("all", wait=False)
                f.detail = f"exit {done.returncode}"
                self._hold(2.0, 4.0)
                node.hactl(kind, "none")
        elif kind == "standby-restart":
            node = self.pick()
            with self._fault(kind, (node.name,)) as f:
                node.standby("all", wait=False)
                self.poller.pause(node.name)
                node.stop()
                self._restart(node)
                try:
                    status = node.wait_status(lambda s: True, START_TIMEOUT, "answering")
                    scope = status["local"]["standby"]
                except (TimeoutError, RuntimeError) as err:
                    scope = f"no answer ({err})"
                f.detail = f"standby after restart: {scope}"
                if scope != "all":
                    self.standby_checks.append(f"{f.describe()}: standby 'all' became {scope}")
                node.hactl("standby", "none")
        else:
            raise ValueError(f"unknown fault {kind}")


def _cluster(lab: Lab, base: Path) -> tuple[dict[str, HacoreNode], Host, str]:
    def groups(_node: str) -> list[dict[str, Any]]:
        resources = [{"agent": "Dummy"}, {"agent": "IPaddr2", "args": [f"{VIP}/24/eth0"]}]
        return [{"node": NODES[0], "resource": resources}]

    dirs = write_toml_cluster(
        base,
        list(NODES),
        groups,
        keepalive=KEEPALIVE_MS,
        deadtime=DEADTIME_MS,
        initdead=INITDEAD_MS,
    )
    (key,) = (g.key for g in load(dirs[NODES[0]]).config.groups)
    nodes = {n: HacoreNode(lab.add_host(n), dirs[n]) for n in NODES}
    client = lab.add_host("client")
    return nodes, client, key


def _tracebacks(nodes: dict[str, HacoreNode]) -> list[str]:
    found = []
    for node in nodes.values():
        for path in (node.log_path, node.config_dir / "stderr.log"):
            with contextlib.suppress(FileNotFoundError):
                text = path.read_text(errors="replace")
                if "Traceback" in text:
                    at = text.index("Traceback")
                    found.append(f"{path}: {text[max(0, at - 300) : at + 1200]}")
    return found


def run(minutes: float, seed: int, log: Callable[[str], None], report: Path | None) -> int:
    """Run the chaos for ``minutes`` (all included); returns the exit status."""
    began = time.monotonic()
    deadline = began + minutes * 60
    rng = random.Random(seed)
    log(f"chaos: seed {seed}, {minutes:g} min, keepalive {KEEPALIVE_MS} ms, "
        f"deadtime {DEADTIME_MS} ms, nodes {', '.join(NODES)}")  # fmt: skip
    with Lab() as lab:
        nodes, client, key = _cluster(lab, lab.workdir / "cluster")
        wires = {n: Wire(lab, nodes[n].host, seed=seed + i).start() for i, n in enumerate(NODES)}
        chaos = Chaos(lab, nodes, client, key, wires, rng, log)
        for node in nodes.values():
            node.start()
        wait_placed(list(nodes.values()), nodes[NODES[0]], key, START_TIMEOUT)
        probe: Probe = start_probe(client, VIP, duration=minutes * 60 + 60, interval=PROBE_INTERVAL)
        chaos.poller = StatusPoller(nodes, lambda: chaos.current).start()
        watch = AddressWatch([n.host for n in nodes.values()], VIP).start()
        chaos.watch = watch
        started_wall = time.time()
        try:
            while time.monotonic() < deadline - RESERVE_S:
                kind = rng.choice(FAULT_KINDS)
                fault_count = len(chaos.faults)
                chaos.step(kind)
                chaos.settle(chaos.faults[fault_count])
        finally:
            end_wall = time.time()
            stats = chaos.poller.stop()
            exited = [f"{n.name} exited with {n.proc.returncode}" for n in nodes.values()
                      if n.proc is not None and n.proc.poll() is not None]  # fmt: skip
            timeline = watch.timeline()
            watch.stop()
            probe.host.kill(probe.proc)
            client_result = probe.result()
            for wire in wires.values():
                wire.close()
        verdicts = _verdicts(
            chaos, stats=stats, timeline=timeline, started=started_wall, end=end_wall, exited=exited
        )
        _print(
            log,
            chaos=chaos,
            stats=stats,
            verdicts=verdicts,
            client_gap=client_result.longest_gap(),
            began=began,
        )
        if report is not None:
            _write_report(
                report,
                seed=seed,
                minutes=minutes,
                chaos=chaos,
                stats=stats,
                verdicts=verdicts,
                timeline=timeline,
            )
    return 0 if all(v.ok for v in verdicts) else 1


def _verdicts(
    chaos: Chaos,
    *,
    stats: PollStats,
    timeline: list[tuple[float, frozenset[str]]],
    started: float,
    end: float,
    exited: list[str],
) -> list[Verdict]:
    raw, excess, _dual_lines = judge_dual(timeline, chaos.faults, end, RESOLVE_BOUND_S)
    empty, _empty_lines = judge_empty(timeline, chaos.faults, end, started, NO_HOLDER_BOUND_S)
    rejected = stats.rejected_total()
    flaps = stats.flaps_in_datagram_faults
    tracebacks = _tracebacks(chaos.nodes)
    return [
        raw,
        excess,
        empty,
        Verdict(
            "3. rejected datagrams changed no state (no peer left 'active' during "
            "delay/duplicate/reorder)",
            len(flaps),
            0,
            "",
            not flaps,
            f"rejected {sum(rejected.values())} ({dict(rejected)})"
            + (f"; {flaps[0]}" if flaps else ""),
        ),
        Verdict(
            "4. no traceback in any daemon log, no daemon exited by itself",
            len(tracebacks) + len(exited),
            0,
            "",
            not tracebacks and not exited,
            "; ".join(exited + [t[:400] for t in tracebacks[:2]]),
        ),
        Verdict(
            "5. standby survives a daemon restart",
            len(chaos.standby_checks),
            0,
            " broken",
            not chaos.standby_checks,
            f"{sum(1 for f in chaos.faults if f.kind == 'standby-restart')} checks; "
            + "; ".join(chaos.standby_checks),
        ),
        Verdict(
            "the cluster settled after every fault",
            len(chaos.settle_failures),
            0,
            " failures",
            not chaos.settle_failures,
            "; ".join(chaos.settle_failures[:3]),
        ),
    ]


def _print(
    log: Callable[[str], None],
    *,
    chaos: Chaos,
    stats: PollStats,
    verdicts: list[Verdict],
    client_gap: Gap,
    began: float,
) -> None:
    kinds = Counter(f.kind for f in chaos.faults)
    near = [f.describe() for f in chaos.faults if f.active(client_gap.start - 5, client_gap.end)]
    origin = chaos.faults[0].applied if chaos.faults else client_gap.start
    log("")
    log(f"{len(chaos.faults)} faults in {time.monotonic() - began:.0f} s: "
        + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))  # fmt: skip
    log(f"status polls {stats.samples} (unanswered {stats.unanswered} while a daemon was "
        f"restarting), slowest answer {stats.slowest_answer_s * 1000:.0f} ms; client: longest "
        f"silence of the VIP {client_gap.seconds:.3f} s from +{client_gap.start - origin:.1f} s "
        f"(near {', '.join(near) or 'no fault'}; information, not an invariant: the client "
        "follows the VIP by ARP)")  # fmt: skip
    for verdict in verdicts:
        log(verdict.line())


def _write_report(
    path: Path,
    *,
    seed: int,
    minutes: float,
    chaos: Chaos,
    stats: PollStats,
    verdicts: list[Verdict],
    timeline: list[tuple[float, frozenset[str]]],
) -> None:
    data = {
        "seed": seed,
        "minutes": minutes,
        "faults": [
            {
                "step": f.step,
                "kind": f.kind,
                "targets": f.targets,
                "detail": f.detail,
                "applied": f.applied,
                "reverted": f.reverted,
                "settled": f.settled,
            }
            for f in chaos.faults
        ],
        "verdicts": [
            {"name": v.name, "worst": v.worst, "bound": v.bound, "ok": v.ok, "detail": v.detail}
            for v in verdicts
        ],
        "rejected": dict(stats.rejected_total()),
        "timeline": [(t, sorted(h)) for t, h in timeline],
    }
    path.write_text(json.dumps(data, indent=1))
