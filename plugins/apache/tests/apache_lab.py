"""What the real tests need besides hacore.lab: an event loop inside a node's namespace (where
the agent runs, so the apache it starts lives there: ``hacore.lab.nsloop``), connections opened
from a namespace, and a clean-up that kills an apache instance by the pids it owns.

The namespaces themselves come from ``hacore.lab.Lab`` (prefix ``hcap-<4 hex>``): a switch, the
nodes and a client, documentation addresses only, and a teardown that deletes them whatever
happens.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hacore.lab import Host, Lab, wait_for
from hacore.lab.nsloop import NamespaceLoop, in_namespace

from hacore_apache import processes
from hacore_apache.site import ApacheSite, write_site

HTTPD = Path("/usr/sbin/apache2")
# How long one agent action on a node's event loop may take before the test fails.
LOOP_TIMEOUT = 90.0

SiteFactory = Callable[..., ApacheSite]


def missing_tools() -> str | None:
    """Why the real tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    for tool, package in (("ip", "iproute2"), ("curl", "curl"), ("openssl", "openssl")):
        if shutil.which(tool) is None:
            return f"needs {tool} (apt-get install {package})"
    if not HTTPD.exists():
        return "needs apache2 (apt-get install apache2)"
    return None


def open_connection(netns: str, host: str, port: int) -> socket.socket:
    """A TCP connection to ``host:port`` made from namespace ``netns``."""
    return in_namespace(netns, lambda: socket.create_connection((host, port), timeout=5))


def instance_pids(site: ApacheSite) -> tuple[int, ...]:
    """Every live process of the site's apache: the master in its pid file and its group."""
    return processes.inspect(site.pid_file, HTTPD, site.config).all


def kill_instance(site: ApacheSite, pid: int | None = None) -> None:
    """SIGKILL every process of the site's apache (the pid file's master, or ``pid``, and the
    process group it leads), by pid: for teardown after a failed test."""
    found = (
        processes.inspect_pid(pid, HTTPD, site.config)
        if pid is not None
        else processes.inspect(site.pid_file, HTTPD, site.config)
    )
    processes.signal_all(found.all, signal.SIGKILL)
    wait_for(lambda: not any(processes.alive(p) for p in found.all), 5, what="apache to die")


class SiteRegistry:
    """Sites written in a directory that apache's children (www-data) can enter: pytest's
    tmp_path is under /tmp/pytest-of-root, which is mode 0700."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hcap-site-"))
        self.root.chmod(0o755)
        self.written: list[ApacheSite] = []

    def write(self, node: str, **options: Any) -> ApacheSite:
        site = write_site(self.root / node, node, **options)
        self.written.append(site)
        return site

    def kill_all(self) -> None:
        """Kill every apache of these sites, by the pids of its pid file and process group."""
        for site in self.written:
            kill_instance(site)

    def remove(self) -> None:
        self.kill_all()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class ApacheLab:
    lab: Lab
    node: Host  # n1, where the agent runs
    client: Host
    loops: list[NamespaceLoop] = field(default_factory=list)

    def loop(self, host: Host) -> NamespaceLoop:
        """An event loop in ``host``'s namespace, closed at teardown."""
        loop = NamespaceLoop(host.netns, run_timeout=LOOP_TIMEOUT)
        self.loops.append(loop)
        return loop
