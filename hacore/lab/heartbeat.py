"""Run the real Debian Heartbeat 3.0.6 as a node of a namespace lab.

Heartbeat has no options for its paths and takes its node name from ``uname -n``, so each node
gets namespaces of its own (the recipe, proven on Debian 12):

* network: the lab host's (``Host.run`` enters it);
* UTS: hostname = the node name, or heartbeat stops with "Current node [...] not in configuration!";
* mount (private propagation, nothing leaks to the machine); each node has its own
  ``/etc/ha.d``          bind mount of the lab's configuration directory (shared by the nodes and
                         by hacore, exactly as a real /etc/ha.d: ha.cf, authkeys, haresources and
                         the package's harc, rc.d/, resource.d/, shellfuncs);
  ``/var/lib/heartbeat`` bind mount of a per-node directory (uuid, generation number survive a
                         restart of the node, as on a real disk);
  ``/var/log``           bind mount of a per-node copy of /var/log's directories (no files):
                         ha.cf's logfile and debugfile land there;
  ``/run``               a fresh tmpfs with /run/heartbeat{,/ccm,/crm,/dopd} and /run/crm owned by
                         hacluster:haclient, and /run/resource-agents (IPaddr's state);
* PID: a shell is PID 1 and runs heartbeat as its child, so heartbeat lives as on a real machine
  (not as an init, whose signal rules differ), the shell reaps orphans of resource scripts, and
  SIGKILL to PID 1 from outside kills every process of the node at once: a power cut. The shell
  stays while any other process of the node lives, so heartbeat's restart after a partition
  (it re-execs itself without ``-f`` and daemonises) keeps running inside the node.

``unshare --mount --uts --pid --fork --mount-proc --kill-child --propagation private`` makes those
namespaces; the shell below does the mounts. Heartbeat (``-f``, foreground) calls setsid(), so
killing the process group of ``unshare`` would not reach it: the PID namespace does.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hacore.lab.netns import (
    KILL_TIMEOUT,
    Host,
    LabCommandError,
    LabError,
    _children,
    _require_tool,
    wait_for,
)

__all__ = [
    "HEARTBEAT",
    "HeartbeatNode",
    "start_heartbeat",
    "write_heartbeat_config",
]

HEARTBEAT = Path("/usr/libexec/heartbeat/heartbeat")
# The package's administration scripts (hb_standby, hb_takeover, ...): HA_NOARCHBIN.
HB_TOOLS = Path("/usr/share/heartbeat")
# hb_standby and friends only write a message into heartbeat's FIFO; cl_status asks its API.
TOOL_TIMEOUT = 30.0
PACKAGE_HA_D = Path("/etc/ha.d")
PACKAGE_VAR_LIB = Path("/var/lib/heartbeat")
# What the heartbeat package itself installs in /etc/ha.d; heartbeat runs harc and the
# resource.d scripts from there even with no resources configured.
SUPPORT_FILES = ("harc", "rc.d", "resource.d", "shellfuncs")
NODE_LOG_DIR = "/var/log"
LOGFILE = "/var/log/ha-log"
DEBUGFILE = "/var/log/ha-debug"
# Under a node's state directory: its /var/lib/heartbeat.
_VAR_LIB = "var-lib-heartbeat"
# Logged once the configuration is accepted and the media are open.
READY_LINE = "Local status now set to: 'up'"
# Logged once the start-up resource dance is over (see HeartbeatNode.wait_settled).
SETTLED_LINE = "Initial resource acquisition complete"

_RECIPE = r"""
set -eu
hostname "$HB_HOSTNAME"
mount --bind "$HB_HA_D" /etc/ha.d
mount --bind "$HB_VAR_LIB" /var/lib/heartbeat
mount --bind "$HB_LOG_DIR" /var/log
mount -t tmpfs -o mode=0755 hacore-lab-run /run
mkdir -p /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/dopd /run/crm \
    /run/resource-agents /run/lock
chown "$HB_OWNER" /run/heartbeat /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/dopd \
    /run/crm
chmod 0750 /run/heartbeat /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/dopd /run/crm
chmod 1755 /run/resource-agents
chmod 1777 /run/lock
# Heartbeat mlocks itself ("realtime"); where the limit cannot be raised it logs an error and
# carries on, which is fine for a lab.
ulimit -l unlimited 2>/dev/null || :
"$HB_BINARY" -f &
wait || :
# After a partition heartbeat restarts itself by exec'ing itself again without -f: the new
# image daemonises, and its parent, our child, exits. PID 1 must outlive it, or the kernel kills
# the whole namespace, restarted daemon included: so stay while any process of the node other
# than this shell still runs (a zombie, reparented here and never reaped, does not count).
# Bounded by the node itself: it ends once heartbeat has exited for good, and the lab's kill
# of PID 1 ends it at once.
others() {
    for dir in /proc/[0-9]*; do
        [ "${dir#/proc/}" != 1 ] || continue
        while read -r key value _; do
            if [ "$key" = State: ]; then
                [ "$value" = Z ] || return 0
                break
            fi
        done < "$dir/status" 2>/dev/null || :
    done
    return 1
}
while others; do
    sleep 0.2
done
"""


def _parse_ms(value: str | int) -> int:
    """A heartbeat time (cl_get_msec): an int is milliseconds; text is seconds unless ms/us."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"(\d*\.?\d+)(ms|us|usec)?", value.strip().lower())
    if match is None:
        raise LabError(f"{value!r} is not a heartbeat time (write 2, 1.5 or 500ms)")
    number = float(match.group(1))
    unit = match.group(2)
    if unit == "ms":
        return int(number)
    if unit in {"us", "usec"}:
        return int(number / 1000)
    return int(number * 1000)


def _time(value: str | int) -> str:
    return f"{value}ms" if isinstance(value, int) else value


def write_heartbeat_config(
    directory: Path,
    *,
    nodes: Sequence[str],
    keepalive: str | int,
    deadtime: str | int,
    initdead: str | int,
    auth_key: str,
    links: Sequence[str] = ("bcast eth0",),
    haresources: Sequence[str] | None = None,
    warntime: str | int | None = None,
    auth_method: str = "sha1",
    auto_failback: str = "on",
    udpport: int | None = None,
    extra: Sequence[str] = (),
    install_scripts: bool = True,
) -> Path:
    """Write ha.cf, authkeys (mode 600) and haresources for a lab cluster into ``directory``.

    Times are ints in milliseconds or text in heartbeat's own syntax (``"1"``, ``"100ms"``).
    ``links`` are media lines (``"bcast eth0"``, ``"ucast eth0 198.51.100.2"``); ``extra`` are
    further ha.cf lines (``"ping 198.51.100.254"``). With ``install_scripts`` the package's
    harc, rc.d, resource.d and shellfuncs are copied in, so the directory is a whole /etc/ha.d.
    Heartbeat's own timing rules are checked here, with a clearer message than heartbeat's.
    """
    keepalive_ms, deadtime_ms, initdead_ms = map(_parse_ms, (keepalive, deadtime, initdead))
    if deadtime_ms <= 2 * keepalive_ms:
        raise LabError(
            f"deadtime ({deadtime_ms} ms) must exceed twice keepalive ({keepalive_ms} ms)"
        )
    if initdead_ms < deadtime_ms:
        raise LabError(f"initdead ({initdead_ms} ms) must be at least deadtime ({deadtime_ms} ms)")
    if not nodes:
        raise LabError("a heartbeat cluster needs at least one node")
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by hacore.lab. Heartbeat and hacore both read this directory.",
        # Without these heartbeat expects its logging daemon and logs nowhere. /var/log is
        # private to each lab node (see start_heartbeat), so the nodes do not share a file.
        f"logfile {LOGFILE}",
        f"debugfile {DEBUGFILE}",
        "logfacility none",
    ]
    if udpport is not None:
        lines.append(f"udpport {udpport}")  # must precede the media lines
    lines += [
        f"keepalive {_time(keepalive)}",
        f"deadtime {_time(deadtime)}",
        f"initdead {_time(initdead)}",
    ]
    if warntime is not None:
        lines.append(f"warntime {_time(warntime)}")
    lines.append(f"auto_failback {auto_failback}")
    lines += list(links)
    lines += [f"node {node}" for node in nodes]
    lines += list(extra)
    (directory / "ha.cf").write_text("\n".join(lines) + "\n")
    authkeys = directory / "authkeys"
    # Created with mode 600 from the start (heartbeat refuses a group/other-readable file), and
    # forced to 600 if it existed already.
    fd = os.open(authkeys, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(f"auth 1\n1 {auth_method} {auth_key}\n")
    # Heartbeat refuses to start without haresources, even an empty one.
    resources = "".join(f"{line}\n" for line in haresources or ())
    (directory / "haresources").write_text(resources)
    if install_scripts:
        for name in SUPPORT_FILES:
            source, target = PACKAGE_HA_D / name, directory / name
            if source.is_dir():
                shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
            elif source.exists():
                shutil.copy2(source, target)
    return directory


def _config_value(ha_cf: Path, directive: str) -> str | None:
    value = None
    for raw in ha_cf.read_text().splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] == directive:
            value = words[1]
    return value


def _owner() -> str:
    # hacluster:haclient when the package created them, else root (the directories must exist).
    try:
        uid = pwd.getpwnam("hacluster").pw_uid
        gid = grp.getgrnam("haclient").gr_gid
    except KeyError:
        return "0:0"
    return f"{uid}:{gid}"


def _empty_copy(tree: Path, target: Path) -> None:
    """The directory tree of ``tree`` (owners, modes) without any file: a fresh machine's."""
    for source_dir, _dirs, _files in os.walk(tree):
        source = Path(source_dir)
        made = target / source.relative_to(tree)
        made.mkdir(parents=True, exist_ok=True)
        info = source.stat()
        os.chown(made, info.st_uid, info.st_gid)
        os.chmod(made, info.st_mode & 0o7777)


@dataclass
class HeartbeatNode:
    """A running heartbeat node; ``proc`` is the ``unshare`` holding its namespaces."""

    host: Host
    hostname: str
    proc: subprocess.Popen[bytes]
    state_dir: Path
    log_path: Path
    debug_log_path: Path
    output_path: Path
    init_pid: int

    def running(self) -> bool:
        return self.proc.poll() is None

    @property
    def var_lib(self) -> Path:
        """The node's /var/lib/heartbeat seen from outside: hb_uuid, hb_generation, hostcache."""
        return self.state_dir / _VAR_LIB

    def master_pid(self) -> int | None:
        """The heartbeat master control process (as seen from the root PID namespace)."""
        for pid in _children(self.init_pid):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/exe") == str(HEARTBEAT):
                    return pid
        return None

    def kill(self) -> None:
        """Power cut: SIGKILL to the node's PID 1, so every process of the node dies at once.

        Returns when they are all gone (unshare exits once its child, PID 1, is reaped, which
        the kernel does only after the rest of the namespace has died).
        """
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.init_pid, signal.SIGKILL)
        self.host.kill(self.proc, signal.SIGKILL)

    def wait_settled(self, timeout: float = 30.0) -> None:
        """Wait until heartbeat has finished its initial resource acquisition.

        Heartbeat spends a fixed ~10 s after start-up before it (or its peer) takes resources,
        whatever the timings. Until then peer deaths are noticed late and a SIGTERM is
        "delayed until current resource activity finishes", sometimes for good.
        """
        self.wait_for_log(re.escape(SETTLED_LINE), timeout=timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop: SIGTERM to the master, which releases its resources and exits.

        On timeout the node is killed and ``TimeoutError`` raised. Stop a node that has
        settled (``wait_settled``): heartbeat can hold a shutdown requested earlier forever.
        """
        master = self.master_pid()
        if master is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(master, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TimeoutError(
                f"heartbeat on {self.hostname} did not stop within {timeout:g} s"
            ) from None

    def log(self) -> str:
        """The node's ha.cf ``logfile`` so far ("" before heartbeat has written it)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_mark(self) -> int:
        """The log's current length: pass it as ``since`` to wait only for new lines."""
        return len(self.log())

    def wait_for_log(
        self, pattern: str | re.Pattern[str], *, timeout: float, since: int = 0
    ) -> re.Match[str]:
        """Wait (bounded) until the log, from offset ``since``, matches ``pattern``."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern

        def found() -> re.Match[str] | None:
            exited = self.proc.poll() is not None
            match = regex.search(self.log(), since)
            if match is None and exited:
                raise LabError(
                    f"heartbeat on {self.hostname} exited ({self.proc.returncode}) before "
                    f"logging /{regex.pattern}/:\n{self.describe()}"
                )
            return match

        return wait_for(
            found, timeout, interval=0.02, what=f"{self.hostname} to log /{regex.pattern}/"
        )

    def run_tool(
        self, argv: Sequence[str | Path], *, timeout: float = TOOL_TIMEOUT, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a command on this node as its administrator would: inside its mount, UTS,
        network and PID namespaces (``/usr/share/heartbeat/hb_standby all``, ``cl_status
        rscstatus``), so it sees the node's /etc/ha.d, /var/lib/heartbeat (the FIFO) and /run.

        Bounded: after ``timeout`` the command and whatever it started are killed and
        ``TimeoutError`` is raised. A non-zero exit raises ``LabCommandError`` when ``check``.
        """
        if not self.running():
            raise LabError(f"heartbeat on {self.hostname} is not running: cannot run {argv[0]}")
        _require_tool("nsenter", "util-linux")
        command = ["nsenter", f"--target={self.init_pid}", "--mount", "--uts", "--net", "--pid"]
        command += ["--", *map(str, argv)]
        # A process group of its own: nsenter forks into the PID namespace, and a timeout must
        # reach that child (and what it ran) too, not only nsenter.
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=KILL_TIMEOUT)
            raise TimeoutError(
                f"`{' '.join(map(str, argv))}` on {self.hostname} did not finish within "
                f"{timeout:g} s"
            ) from None
        if check and proc.returncode != 0:
            raise LabCommandError(command, proc.returncode, stdout, stderr)
        return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)

    def standby(self, scope: str = "all") -> None:
        """``hb_standby SCOPE`` on this node: it only asks, so this returns before anything
        moves (watch the address, or the log's "Standby resource acquisition done")."""
        self.run_tool([HB_TOOLS / "hb_standby", scope])

    def takeover(self, scope: str = "all") -> None:
        """``hb_takeover SCOPE`` on this node; like ``standby``, it returns at once."""
        self.run_tool([HB_TOOLS / "hb_takeover", scope])

    def rscstatus(self) -> str:
        """``cl_status rscstatus``: what this node holds (none, local, foreign, all) or
        ``transition`` while resources move."""
        return self.run_tool(["cl_status", "rscstatus"]).stdout.strip()

    def describe(self) -> str:
        """The tail of the log and of heartbeat's own output, for error messages."""
        tail = "\n".join(self.log().splitlines()[-15:])
        try:
            output = self.output_path.read_text(errors="replace").strip()
        except FileNotFoundError:
            output = ""
        return f"--- {self.log_path} (tail)\n{tail}\n--- output\n{output}"


def start_heartbeat(
    host: Host,
    ha_d: Path,
    *,
    hostname: str | None = None,
    ready_timeout: float = 15.0,
) -> HeartbeatNode:
    """Start ``heartbeat -f`` as node ``hostname`` (default: the host's name) in ``host``.

    ``ha_d`` becomes the node's /etc/ha.d (see ``write_heartbeat_config``). Returns once
    heartbeat logs that its local status is up, so a configuration it refuses is an immediate
    ``LabError`` carrying its log. Starting the same node again reuses its /var/lib/heartbeat, as
    a rebooted machine would.
    """
    if not HEARTBEAT.exists():
        raise LabError(f"{HEARTBEAT} not found: install heartbeat (apt-get install heartbeat)")
    _require_tool("unshare", "util-linux")
    ha_d = ha_d.resolve()
    name = (hostname or host.name).lower()
    missing = [
        f for f in ("ha.cf", "authkeys", "haresources", *SUPPORT_FILES) if not (ha_d / f).exists()
    ]
    if missing:
        raise LabError(f"{ha_d} lacks {', '.join(missing)}: write it with write_heartbeat_config()")
    for directive in ("logfile", "debugfile"):
        path = _config_value(ha_d / "ha.cf", directive)
        if path is None or not path.startswith(NODE_LOG_DIR + "/"):
            raise LabError(
                f"{ha_d / 'ha.cf'}: set `{directive}` to a file under {NODE_LOG_DIR}/ (private "
                "to each lab node), or heartbeat's log cannot be read"
            )
    logfile = _config_value(ha_d / "ha.cf", "logfile")
    debugfile = _config_value(ha_d / "ha.cf", "debugfile")
    assert logfile is not None and debugfile is not None  # checked just above

    state = host.lab.workdir / f"heartbeat-{host.name}"
    var_lib, log_dir = state / _VAR_LIB, state / "log"
    if not PACKAGE_VAR_LIB.is_dir():
        raise LabError(
            f"{PACKAGE_VAR_LIB} is missing: install heartbeat (apt-get install heartbeat)"
        )
    if not var_lib.exists():
        _empty_copy(PACKAGE_VAR_LIB, var_lib)
    # A fresh /var/log per start keeps log waits unambiguous; its subdirectories exist, as on a
    # real machine, because resource scripts (apache's, say) expect /var/log/<daemon>/.
    shutil.rmtree(log_dir, ignore_errors=True)
    _empty_copy(Path(NODE_LOG_DIR), log_dir)
    output_path = state / "output"
    with output_path.open("wb") as output:
        proc = host.run(
            [
                *["unshare", "--mount", "--uts", "--pid", "--fork", "--mount-proc", "--kill-child"],
                *["--propagation", "private", "--"],
                *("/bin/sh", "-c", _RECIPE),
            ],
            env={
                "HB_HOSTNAME": name,
                "HB_HA_D": str(ha_d),
                "HB_VAR_LIB": str(var_lib),
                "HB_LOG_DIR": str(log_dir),
                "HB_OWNER": _owner(),
                "HB_BINARY": str(HEARTBEAT),
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    def init() -> int | None:
        if proc.poll() is not None:
            raise LabError(
                f"heartbeat's namespaces for {name} exited with {proc.returncode}: "
                + output_path.read_text(errors="replace").strip()
            )
        children = _children(proc.pid)
        return children[0] if children else None

    init_pid = wait_for(init, KILL_TIMEOUT, what=f"the PID namespace of heartbeat on {name}")
    node = HeartbeatNode(
        host=host,
        hostname=name,
        proc=proc,
        state_dir=state,
        log_path=log_dir / Path(logfile).relative_to(NODE_LOG_DIR),
        debug_log_path=log_dir / Path(debugfile).relative_to(NODE_LOG_DIR),
        output_path=output_path,
        init_pid=init_pid,
    )
    started = time.monotonic()
    try:
        node.wait_for_log(re.escape(READY_LINE), timeout=ready_timeout)
    except TimeoutError:
        node.kill()
        raise LabError(
            f"heartbeat on {name} did not come up within {time.monotonic() - started:.1f} s:\n"
            + node.describe()
        ) from None
    except LabError:
        node.kill()
        raise
    return node
