"""systemd integration: the unit file verifies, and a daemon under a real notify socket says
READY once the cluster is up and feeds the watchdog from its keepalive timer."""

from __future__ import annotations

import contextlib
import itertools
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from hacore.cli import main
from hacore.lab.netns import Lab, wait_for
from hacore.lab.nodes import HacoreNode, wait_all_active, write_cluster
from hacore.systemd import Notifier


def test_install_unit_writes_a_unit_that_systemd_analyze_accepts(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["install-unit", "--dest", str(tmp_path), "-c", "/etc/ha.d"])
    assert result.exit_code == 0, result.output
    unit = (tmp_path / "hacore.service").read_text()
    assert "Type=notify" in unit and "WatchdogSec=" in unit
    assert "@HACTL@" not in unit and " run --config-dir /etc/ha.d" in unit
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "hacore.service")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr


def test_without_a_notify_socket_the_notifier_does_nothing() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    notifier.ready("up")  # must not raise


@pytest.mark.netns
def test_a_daemon_under_systemd_says_ready_and_feeds_the_watchdog(lab: Lab, tmp_path: Path) -> None:
    hosts = [lab.add_host("pc1"), lab.add_host("pc2")]
    dirs = write_cluster(tmp_path, ["pc1", "pc2"], keepalive=100, deadtime=1000)
    listen = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    listen.bind(str(path))
    listen.settimeout(0.2)
    messages: list[tuple[float, str]] = []
    try:
        # pc1 as systemd would start it: NOTIFY_SOCKET and a 1 s watchdog.
        hosts[0].run(
            [sys.executable, "-m", "hacore", "run", "--config-dir", str(dirs["pc1"])],
            env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"},
        )
        pc2 = HacoreNode(hosts[1], dirs["pc2"]).start()
        wait_all_active([HacoreNode(hosts[0], dirs["pc1"]), pc2], 20)

        def heard() -> bool:
            with contextlib.suppress(TimeoutError):
                messages.append((time.monotonic(), listen.recv(4096).decode()))
            ready = any("READY=1" in m for _, m in messages)
            dogs = [t for t, m in messages if "WATCHDOG=1" in m]
            return ready and len(dogs) >= 4

        wait_for(heard, 15, interval=0, what="READY=1 and the watchdog fed")
        dogs = [t for t, m in messages if "WATCHDOG=1" in m]
        # Fed at a quarter of WatchdogSec, from the keepalive timer: never half a period late.
        assert max(b - a for a, b in itertools.pairwise(dogs)) < 0.5
        ready = next(m for _, m in messages if "READY=1" in m)
        assert "STATUS=active" in ready
    finally:
        listen.close()
