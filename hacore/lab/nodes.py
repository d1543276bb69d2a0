"""hacore nodes in a lab: a configuration directory per node and a daemon per host.

Each node reads its own copy of the cluster's configuration, Heartbeat-style (``write_cluster``)
or hacore's own cluster.toml (``write_toml_cluster``): identical but for what pins the node's
name, and the log file, which lives in the node's directory so nothing is written outside the
lab's temporary tree.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from hacore.control import ControlError, request
from hacore.lab.heartbeat import write_heartbeat_config
from hacore.lab.netns import Host, wait_for
from hacore.paths import runtime_paths

STOP_TIMEOUT = 30.0
# Longer than `hactl ... --wait` waits itself, so its own message reports a move that hangs.
HACTL_TIMEOUT = 150.0


def localize(config_dir: Path, node: str) -> None:
    """Make a shared configuration this node's own: its name and its log file."""
    (config_dir / "nodeinfo").write_text(f"{node}\n")
    ha_cf = config_dir / "ha.cf"
    text = re.sub(r"(?m)^(logfile|debugfile)\s.*$", "", ha_cf.read_text())
    ha_cf.write_text(f"logfile {config_dir / 'hacore.log'}\n{text}")


def write_cluster(
    base: Path,
    nodes: Sequence[str],
    *,
    keepalive: str | int = 200,
    deadtime: str | int = 1500,
    initdead: str | int | None = None,
    links: Sequence[str] = ("bcast eth0",),
    auth_key: str = "lab-secret",
    auth_method: str = "sha1",
    haresources: Sequence[str] | None = None,
    extra: Sequence[str] = (),
    auto_failback: str = "on",
) -> dict[str, Path]:
    """One configuration directory per node under ``base``; returns node → directory."""
    shared = write_heartbeat_config(
        base / "shared",
        nodes=nodes,
        keepalive=keepalive,
        deadtime=deadtime,
        initdead=initdead if initdead is not None else deadtime,
        auth_key=auth_key,
        auth_method=auth_method,
        links=links,
        haresources=haresources,
        extra=extra,
        auto_failback=auto_failback,
        install_scripts=False,
    )
    dirs: dict[str, Path] = {}
    for node in nodes:
        target = base / node
        shutil.copytree(shared, target, dirs_exist_ok=True)
        (target / "authkeys").chmod(0o600)
        localize(target, node)
        dirs[node] = target
    return dirs


def write_toml_cluster(
    base: Path,
    nodes: Sequence[str],
    groups: Callable[[str], Sequence[Mapping[str, Any]]],
    *,
    keepalive: str | int = 200,
    deadtime: str | int = 1500,
    initdead: str | int | None = None,
    auto_failback: str = "on",
    secret: str = "lab",
) -> dict[str, Path]:
    """One directory per node under ``base`` holding its cluster.toml; returns node → directory.

    The files differ only in ``local_node``, the log file (``hacore.log`` in the node's
    directory) and ``groups(node)``: the ``[[group]]`` tables as that node writes them (a
    resource's parameters may name files of its own node). One broadcast link on eth0; the key
    (sha256, ``secret``) is inline, so each file is created private (like authkeys, a
    cluster.toml with a secret is refused when group or others may read it). Times are ints in
    milliseconds or text as cluster.toml takes it (``"10s"``, ``"500ms"``).
    """
    dirs: dict[str, Path] = {}
    for node in nodes:
        directory = base / node
        directory.mkdir(parents=True)
        document = {
            "cluster": {"nodes": list(nodes), "local_node": node, "auto_failback": auto_failback},
            "timers": {
                "keepalive": _toml_time(keepalive),
                "deadtime": _toml_time(deadtime),
                "initdead": _toml_time(initdead if initdead is not None else deadtime),
            },
            "link": [{"kind": "bcast", "interface": "eth0"}],
            "auth": {"active": 1, "key": [{"index": 1, "method": "sha256", "secret": secret}]},
            "logging": {"file": str(directory / "hacore.log")},
            "group": list(groups(node)),
        }
        fd = os.open(directory / "cluster.toml", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            tomli_w.dump(document, file)
        dirs[node] = directory
    return dirs


def _toml_time(value: str | int) -> str:
    return f"{value}ms" if isinstance(value, int) else value


@dataclass
class HacoreNode:
    """One hacore daemon (``python -m hacore run``) in a lab host."""

    host: Host
    config_dir: Path
    extra_args: Sequence[str] = ()
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def socket(self) -> Path:
        return runtime_paths(self.config_dir).socket

    @property
    def log_path(self) -> Path:
        return self.config_dir / "hacore.log"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> HacoreNode:
        stderr = (self.config_dir / "stderr.log").open("ab")
        self.proc = self.host.run(
            [
                sys.executable,
                "-m",
                "hacore",
                "run",
                "--config-dir",
                str(self.config_dir),
                *self.extra_args,
            ],
            stdout=stderr,
            stderr=stderr,
        )
        stderr.close()
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """``kill -9`` of the daemon: no goodbye."""
        if self.proc is not None:
            self.host.kill(self.proc, signal.SIGKILL)

    def stop(self) -> int | None:
        """SIGTERM, as ``systemctl stop`` sends; returns the exit status."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=STOP_TIMEOUT)

    def status(self) -> dict[str, Any] | None:
        """The daemon's status, or None while it does not answer."""
        try:
            reply = request(self.socket, "status", timeout=2.0)
        except ControlError:
            return None
        status = reply.get("status")
        return status if reply.get("ok") and isinstance(status, dict) else None

    def node_state(self, node: str) -> str | None:
        status = self.status()
        if status is None:
            return None
        if status["local"]["name"] == node:
            return str(status["local"]["state"])
        for entry in status["nodes"]:
            if entry["name"] == node:
                return str(entry["state"])
        return None

    def wait_status(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name}: daemon exited with {self.proc.returncode}:\n{self.log()[-3000:]}"
                )
            status = self.status()
            return status if status is not None and predicate(status) else None

        result: dict[str, Any] = wait_for(check, timeout, what=f"{self.name}: {what}")
        return result

    def wait_node_state(self, node: str, state: str, timeout: float) -> dict[str, Any]:
        def matches(status: dict[str, Any]) -> bool:
            if status["local"]["name"] == node:
                return bool(status["local"]["state"] == state)
            return any(n["name"] == node and n["state"] == state for n in status["nodes"])

        return self.wait_status(matches, timeout, f"node {node} {state}")

    # -- resource groups ----------------------------------------------------------------------

    def hactl(self, *args: str, timeout: float = HACTL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """``hactl ARGS --config-dir <this node's>``, run from the calling process (the control
        socket is a file: it is reached from any network namespace). Never raises on exit status."""
        argv = [sys.executable, "-m", "hacore", *args, "--config-dir", str(self.config_dir)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def standby(self, scope: str = "all", *, wait: bool = True) -> subprocess.CompletedProcess[str]:
        """``hactl standby SCOPE [--wait]`` on this node (hb_standby)."""
        return self.hactl("standby", scope, *(["--wait"] if wait else []))

    def takeover(
        self, scope: str = "all", *, wait: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``hactl takeover SCOPE [--wait]`` on this node (hb_takeover)."""
        return self.hactl("takeover", scope, *(["--wait"] if wait else []))

    def group(self, key: str) -> dict[str, Any] | None:
        """This daemon's status of one resource group, or None (not answering, no such group)."""
        status = self.status()
        for group in (status or {}).get("groups", []):
            if group.get("key") == key:
                return group  # type: ignore[no-any-return]
        return None

    def holders(self, key: str) -> list[str] | None:
        """The nodes that hold ``key`` as this daemon sees the cluster, or None."""
        group = self.group(key)
        return None if group is None else list(group["holders"])

    def wait_group(
        self, key: str, predicate: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        """Wait until this daemon's status of group ``key`` satisfies ``predicate``."""

        def matches(status: dict[str, Any]) -> bool:
            return any(g.get("key") == key and predicate(g) for g in status.get("groups", []))

        status = self.wait_status(matches, timeout, f"{key}: {what}")
        return next(g for g in status["groups"] if g.get("key") == key)


def wait_all_active(nodes: Sequence[HacoreNode], timeout: float) -> None:
    names = [n.name for n in nodes]
    deadline = time.monotonic() + timeout
    for node in nodes:
        for other in names:
            node.wait_node_state(other, "active", max(0.1, deadline - time.monotonic()))


def wait_placed(nodes: Sequence[HacoreNode], holder: HacoreNode, key: str, timeout: float) -> None:
    """Wait until every daemon of ``nodes`` sees ``holder`` alone holding group ``key``, started
    there and stopped on each of the others; ``timeout`` bounds the whole wait."""
    deadline = time.monotonic() + timeout
    for node in nodes:
        state = "started" if node is holder else "stopped"

        def placed(group: dict[str, Any], state: str = state) -> bool:
            return bool(group["holders"] == [holder.name] and group["local_state"] == state)

        remaining = max(0.1, deadline - time.monotonic())
        node.wait_group(key, placed, remaining, f"held by {holder.name} alone, {state} here")
