"""keepalived 2.2.7 as a node of a namespace lab: its configuration and its process.

Both nodes start in ``state BACKUP`` and the higher priority wins (preempt on, as Heartbeat's
``auto_failback on``). VRRPv2 rounds a fractional ``advert_int`` to whole seconds, so sub-second
adverts use ``vrrp_version 3``. The planned move that keepalived offers without a restart is a
priority change: a ``vrrp_track_file`` whose value, times a negative weight, lowers the
node's priority below its peer's (see ``KeepalivedNode.set_standby``).

Each node has its own pid files (``-p``/``-r``/``-c``) so that several keepalived processes run on
one machine, logs to its console (``-l -D -G``: no syslog), and runs in the foreground (``-n``)
inside its lab host, whose PID namespace ``Lab.power_off`` kills at once.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hacore.lab.netns import Host, LabError, wait_for

__all__ = [
    "KEEPALIVED",
    "KeepalivedNode",
    "VrrpTimers",
    "master_down_s",
    "write_keepalived_config",
]

KEEPALIVED = "keepalived"
VIRTUAL_ROUTER_ID = 55
# A value in the track file times this weight is added to the priority: 100 → 150 - 100 = 50,
# below the backup's 100, so the peer preempts.
STANDBY_WEIGHT = -1
STANDBY_VALUE = 100
START_TIMEOUT = 10.0


@dataclass(frozen=True)
class VrrpTimers:
    """The VRRP settings of one timing profile."""

    version: int  # 2 or 3
    advert_s: float  # 1.0 (v2), 0.1 or 0.01 (v3, its minimum)

    def describe(self) -> str:
        return f"VRRPv{self.version} advert {self.advert_s:g} s"


def master_down_s(timers: VrrpTimers, priority: int) -> float:
    """When a backup of ``priority`` declares the master dead: 3 adverts plus the skew time
    (RFC 3768 / RFC 5798). This is keepalived's "deadtime"."""
    return 3 * timers.advert_s + (256 - priority) * timers.advert_s / 256


def write_keepalived_config(
    path: Path,
    *,
    router_id: str,
    priority: int,
    timers: VrrpTimers,
    vip: str,
    track_file: Path,
    iface: str = "eth0",
) -> Path:
    """One node's keepalived.conf: a single VRRP instance holding ``vip`` (``address/prefix``)."""
    if timers.version == 2 and timers.advert_s != int(timers.advert_s):
        raise LabError(f"VRRPv2 adverts are whole seconds, not {timers.advert_s}: use version 3")
    track_file.write_text("0\n")
    path.write_text(
        f"""\
# Written by bench.keepalived.
global_defs {{
    router_id {router_id}
    vrrp_version {timers.version}
    enable_script_security
}}

vrrp_track_file standby {{
    file "{track_file}"
    weight {STANDBY_WEIGHT}
}}

vrrp_instance VI_1 {{
    state BACKUP
    interface {iface}
    virtual_router_id {VIRTUAL_ROUTER_ID}
    priority {priority}
    advert_int {timers.advert_s:g}
    virtual_ipaddress {{
        {vip} dev {iface}
    }}
    track_file {{
        standby
    }}
}}
"""
    )
    return path


@dataclass
class KeepalivedNode:
    """One keepalived in a lab host; ``start`` again after ``Lab.power_on`` to reboot it."""

    host: Host
    config: Path
    track_file: Path
    state_dir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.state_dir / "keepalived.log"

    def start(self) -> KeepalivedNode:
        if shutil.which(KEEPALIVED) is None:
            raise LabError("keepalived not found: install it (apt-get install keepalived)")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        pids = {flag: self.state_dir / f"{name}.pid" for flag, name in
                (("-p", "keepalived"), ("-r", "vrrp"), ("-c", "checkers"))}  # fmt: skip
        for pid_file in pids.values():
            pid_file.unlink(missing_ok=True)
        argv = [KEEPALIVED, "-n", "-l", "-D", "-G", "-P", "-f", str(self.config)]
        for flag, pid_file in pids.items():
            argv += [flag, str(pid_file)]
        with self.log_path.open("ab") as log:
            self.proc = self.host.run(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._vrrp_running, START_TIMEOUT, what=f"keepalived on {self.host.name}")
        return self

    def _vrrp_running(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise LabError(
                f"keepalived on {self.host.name} exited with {self.proc.returncode}:\n"
                + self.log_path.read_text(errors="replace")[-2000:]
            )
        return (self.state_dir / "vrrp.pid").exists()

    def set_standby(self, standby: bool) -> None:
        """Lower this node's priority below its peer's (True) or restore it (False).

        keepalived watches the file with inotify and re-evaluates the priority at once.
        """
        self.track_file.write_text(f"{STANDBY_VALUE if standby else 0}\n")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
