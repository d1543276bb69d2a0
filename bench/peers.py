"""Two-node clusters of each system in a namespace lab, behind one interface.

A ``Pair`` is the reference scenario for one system: nodes ``pc1`` (preferred holder of the
VIP) and ``pc2``, and a ``client`` that probes the VIP. hacore runs ``hactl run`` from a
Heartbeat ha.cf with ``pc1 IPaddr::VIP/24/eth0``; Heartbeat 3.0.6 runs the same files through
``hacore.lab.heartbeat``; keepalived runs one VRRP instance (``bench.keepalived``). Every system
fails back automatically (``auto_failback on``; keepalived's preempt).

``power_off`` kills every process of the node at once and only then takes its link down;
``boot`` clears the VIP from the dead node's interface (``Lab.power_on``) and starts the daemon
again, as a reboot would.
"""

from __future__ import annotations

import abc
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from bench.keepalived import KeepalivedNode, write_keepalived_config
from bench.profiles import BACKUP_PRIORITY, MASTER_PRIORITY, HbTimers, Profile
from hacore.lab.heartbeat import HEARTBEAT, HeartbeatNode, start_heartbeat, write_heartbeat_config
from hacore.lab.netns import Host, Lab, LabError, wait_for
from hacore.lab.nodes import HacoreNode, write_cluster

__all__ = [
    "NODES",
    "VIP",
    "HacorePair",
    "HeartbeatPair",
    "KeepalivedPair",
    "Pair",
    "daemon_pids",
    "is_hacore_daemon",
    "make_pair",
]

VIP = "198.51.100.55"
VIP_CIDR = f"{VIP}/24"
VIP_KEY = f"IPaddr::{VIP_CIDR}/eth0"
NODES = ("pc1", "pc2")
AUTH_KEY = "bench-secret"
START_TIMEOUT = 60.0  # Heartbeat alone needs ~12 s before it acquires resources
HB_TOOLS = Path("/usr/share/heartbeat")
COMMAND_TIMEOUT = 60.0
# Heartbeat's log lines about moving resources; settled once none has appeared for this long.
_HB_ACTIVITY = re.compile(r"standby|resource|acquisition|transition|takeover|is dead", re.I)
HB_QUIET_S = 3.0


def _netns_pids(host: Host) -> list[int]:
    done = subprocess.run(
        ["ip", "netns", "pids", host.netns],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return [int(word) for word in done.stdout.split()] if done.returncode == 0 else []


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def daemon_pids(host: Host, match: Callable[[int], bool]) -> list[int]:
    """The processes living in ``host`` (pids of the root PID namespace) that ``match``."""
    return [pid for pid in _netns_pids(host) if match(pid)]


def is_hacore_daemon(pid: int) -> bool:
    """``python -m hacore run ...`` itself (not the ``nsenter`` that started it, whose command
    line holds the same words)."""
    argv = _argv(pid)
    return Path(_exe(pid)).name.startswith("python") and "hacore" in argv and "run" in argv


class Pair(abc.ABC):
    """pc1, pc2 and a client in ``lab``, running ``system`` at ``profile``'s timings."""

    system: ClassVar[str]
    pid_namespace: ClassVar[bool] = True

    def __init__(self, lab: Lab, profile: Profile) -> None:
        self.lab = lab
        self.profile = profile
        self.workdir = lab.workdir / self.system
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.hosts = {name: lab.add_host(name, pid_namespace=self.pid_namespace) for name in NODES}
        self.client = lab.add_host("client")
        # Powered-off nodes keep the VIP on their downed interface: they hold nothing.
        self.off: set[str] = set()

    # -- what each system does differently ------------------------------------------------

    @abc.abstractmethod
    def start_node(self, name: str) -> None:
        """Start the daemon of node ``name`` (its host is up)."""

    @abc.abstractmethod
    def settled(self, holder: str) -> bool:
        """Has the cluster finished moving the VIP to ``holder`` (beyond the address itself)?"""

    @abc.abstractmethod
    def move(self, name: str, give: bool) -> None:
        """A planned move on node ``name``: give its VIP away (standby) or take it (takeover).
        Returns once the move is asked for (or done, where the tool waits)."""

    @abc.abstractmethod
    def is_daemon(self, pid: int) -> bool:
        """Is ``pid`` a process of this system's daemon (not a helper the lab runs)?"""

    def cleanup_node(self, name: str) -> None:  # noqa: B027  # optional hook
        """Forget a node's daemon after its power-off."""

    @abc.abstractmethod
    def log(self, name: str) -> str:
        """The daemon log of node ``name`` so far."""

    # What a node logs when it decides its peer is gone and takes over.
    takeover_line: ClassVar[str] = r"node pc1: is dead"

    # -- shared ---------------------------------------------------------------------------

    @property
    def timers(self) -> HbTimers:
        return self.profile.hacore if self.system == "hacore" else self.profile.heartbeat

    def start(self) -> None:
        for name in NODES:
            self.start_node(name)
        self.wait_holder("pc1", START_TIMEOUT)

    def holders(self) -> set[str]:
        return {
            name
            for name, host in self.hosts.items()
            if name not in self.off and VIP in host.addresses()
        }

    def wait_holder(self, name: str, timeout: float) -> None:
        """Wait until ``name`` alone holds the VIP and the cluster agrees."""

        def done() -> bool:
            return self.holders() == {name} and self.settled(name)

        wait_for(done, timeout, interval=0.05, what=f"{self.system}: VIP held by {name} alone")

    def power_off(self, name: str) -> None:
        self.lab.power_off(self.hosts[name])
        self.off.add(name)
        self.cleanup_node(name)

    def power_on(self, name: str) -> None:
        """Plug the node back in, its VIP gone as after a reboot; its daemon not started yet."""
        self.lab.power_on(self.hosts[name])
        self.off.discard(name)

    def boot(self, name: str) -> None:
        self.power_on(name)
        self.start_node(name)

    def daemon_pids(self, name: str) -> list[int]:
        return daemon_pids(self.hosts[name], self.is_daemon)

    def deadtime_s(self) -> float:
        return self.profile.deadtime_s(self.system)

    def settings(self) -> str:
        return self.profile.settings(self.system)


class HacorePair(Pair):
    system = "hacore"

    def __init__(self, lab: Lab, profile: Profile) -> None:
        super().__init__(lab, profile)
        timers = self.timers
        dirs = write_cluster(
            self.workdir,
            list(NODES),
            keepalive=timers.keepalive_ms,
            deadtime=timers.deadtime_ms,
            initdead=timers.initdead_ms,
            auth_key=AUTH_KEY,
            haresources=[f"pc1 {VIP_KEY}"],
            auto_failback="on",
        )
        self.nodes = {name: HacoreNode(self.hosts[name], dirs[name]) for name in NODES}

    def start_node(self, name: str) -> None:
        self.nodes[name].start()

    def settled(self, holder: str) -> bool:
        for name, node in self.nodes.items():
            if not node.running():
                continue
            group = node.group(VIP_KEY)
            if group is None or group["holders"] != [holder]:
                return False
            if group["local_state"] != ("started" if name == holder else "stopped"):
                return False
        return True

    def move(self, name: str, give: bool) -> None:
        node = self.nodes[name]
        done = node.standby("all") if give else node.takeover("all")
        if done.returncode != 0:
            raise LabError(f"hactl {'standby' if give else 'takeover'} failed: {done.stderr}")

    def is_daemon(self, pid: int) -> bool:
        return is_hacore_daemon(pid)

    def log(self, name: str) -> str:
        return self.nodes[name].log()


class HeartbeatPair(Pair):
    system = "heartbeat"
    # start_heartbeat makes the node's PID namespace itself (with its UTS and mount ones).
    pid_namespace = False

    def __init__(self, lab: Lab, profile: Profile) -> None:
        super().__init__(lab, profile)
        timers = self.timers
        self.ha_d = write_heartbeat_config(
            self.workdir / "ha.d",
            nodes=list(NODES),
            keepalive=timers.keepalive_ms,
            deadtime=timers.deadtime_ms,
            initdead=timers.initdead_ms,
            auth_key=AUTH_KEY,
            haresources=[f"pc1 {VIP_KEY}"],
            auto_failback="on",
        )
        self.nodes: dict[str, HeartbeatNode] = {}
        self._activity: dict[str, tuple[int, float]] = {}

    def start_node(self, name: str) -> None:
        self.nodes[name] = start_heartbeat(self.hosts[name], self.ha_d)
        self._activity.pop(name, None)

    def settled(self, holder: str) -> bool:
        """Heartbeat has finished its start-up and resource dance, and has been quiet since.

        Heartbeat takes resources only after its start-up dance, and after a failback it goes
        on exchanging standby messages for a few seconds once the VIP has moved. A node killed
        before that is over is declared dead about 2 s late ("Cancelling pending standby
        operation"), which is no fair measure of its failover: wait for quiet.
        """
        now = time.monotonic()
        for name, node in self.nodes.items():
            log = node.log()
            if not node.running() or "Initial resource acquisition complete" not in log:
                return False
            activity = len(_HB_ACTIVITY.findall(log))
            if self._activity.get(name, (-1, 0.0))[0] != activity:
                self._activity[name] = (activity, now)
            if now - self._activity[name][1] < HB_QUIET_S:
                return False
        return True

    def power_off(self, name: str) -> None:
        # The node's own PID namespace first (every heartbeat process at once), then the cable.
        self.nodes[name].kill()
        super().power_off(name)

    def cleanup_node(self, name: str) -> None:
        del self.nodes[name]

    def move(self, name: str, give: bool) -> None:
        node = self.nodes[name]
        tool = HB_TOOLS / ("hb_standby" if give else "hb_takeover")
        argv = ["nsenter", f"--target={node.init_pid}", "--mount", "--uts", "--net", "--pid"]
        argv += ["--", str(tool), "all"]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
        if done.returncode != 0:
            raise LabError(f"{tool.name} failed ({done.returncode}): {done.stderr.strip()}")

    def is_daemon(self, pid: int) -> bool:
        return _exe(pid) == str(HEARTBEAT)

    def log(self, name: str) -> str:
        return self.nodes[name].log()


class KeepalivedPair(Pair):
    system = "keepalived"

    def __init__(self, lab: Lab, profile: Profile) -> None:
        super().__init__(lab, profile)
        self.nodes: dict[str, KeepalivedNode] = {}
        for name, priority in zip(NODES, (MASTER_PRIORITY, BACKUP_PRIORITY), strict=True):
            state = self.workdir / name
            state.mkdir(parents=True, exist_ok=True)
            config = write_keepalived_config(
                state / "keepalived.conf",
                router_id=name,
                priority=priority,
                timers=profile.keepalived,
                vip=VIP_CIDR,
                track_file=state / "standby",
            )
            self.nodes[name] = KeepalivedNode(self.hosts[name], config, state / "standby", state)

    def start_node(self, name: str) -> None:
        self.nodes[name].start()

    def settled(self, holder: str) -> bool:
        return True

    def move(self, name: str, give: bool) -> None:
        self.nodes[name].set_standby(give)

    def is_daemon(self, pid: int) -> bool:
        return Path(_exe(pid)).name == "keepalived"

    def log(self, name: str) -> str:
        return self.nodes[name].log()

    takeover_line = r"Entering MASTER STATE"


_PAIRS: dict[str, type[Pair]] = {
    "hacore": HacorePair,
    "heartbeat": HeartbeatPair,
    "keepalived": KeepalivedPair,
}


def make_pair(system: str, lab: Lab, profile: Profile) -> Pair:
    return _PAIRS[system](lab, profile)
