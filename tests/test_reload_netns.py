"""Reload without failover, and maintenance mode, on two real daemons in namespaces.

pc1 holds a VIP (IPaddr2), pc2 a Dummy group. ``AddressWatch`` records from the kernel who
holds the VIP all along: a reload of timers, keys or the group list must never move it, and a
node in maintenance mode must neither recover it nor let the peer take it.
"""

from __future__ import annotations

import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hacore.lab.netns import Lab, wait_for
from hacore.lab.nodes import HacoreNode, wait_all_active, wait_placed, write_cluster
from hacore.lab.watch import AddressWatch
from hacore.plugins import AgentRegistry

pytestmark = pytest.mark.netns

VIP = "198.51.100.55"
VIP_KEY = f"IPaddr2::{VIP}/24/eth0"
DUMMY_KEY = "Dummy"  # its state file lives in each node's own HACORE_RSCTMP
NEW_VIP = "198.51.100.56"
NEW_KEY = f"IPaddr2::{NEW_VIP}/24/eth0"
KEEPALIVE_MS = 200
DEADTIME_MS = 1500
# Long, so that a slow start of one daemon on a loaded machine never lets the other take its
# group at start-up.
INITDEAD_MS = 10_000
START_TIMEOUT = 30.0
SETTLE_TIMEOUT = 15.0
NEW_SECRET = "rolled-over-secret"


@dataclass
class Cluster:
    lab: Lab
    pc1: HacoreNode
    pc2: HacoreNode

    @property
    def nodes(self) -> tuple[HacoreNode, HacoreNode]:
        return self.pc1, self.pc2

    def watch(self, address: str = VIP) -> AddressWatch:
        return AddressWatch([self.pc1.host, self.pc2.host], address)


def _cluster(lab: Lab, tmp_path: Path) -> Cluster:
    dirs = write_cluster(
        tmp_path,
        ["pc1", "pc2"],
        keepalive=KEEPALIVE_MS,
        deadtime=DEADTIME_MS,
        initdead=INITDEAD_MS,
        haresources=[f"pc1 {VIP_KEY}", f"pc2 {DUMMY_KEY}"],
    )
    pc1 = HacoreNode(lab.add_host("pc1"), dirs["pc1"])
    pc2 = HacoreNode(lab.add_host("pc2"), dirs["pc2"])
    return Cluster(lab, pc1, pc2)


def _start(c: Cluster) -> None:
    for node in c.nodes:
        node.start()
    wait_placed(c.nodes, c.pc1, VIP_KEY, START_TIMEOUT)
    wait_placed(c.nodes, c.pc2, DUMMY_KEY, START_TIMEOUT)


# -- editing a node's configuration -----------------------------------------------------------


def _set_directive(node: HacoreNode, name: str, value: str) -> None:
    ha_cf = node.config_dir / "ha.cf"
    text, count = re.subn(rf"(?m)^{name}\s.*$", f"{name} {value}", ha_cf.read_text())
    assert count == 1, f"{name} not in {ha_cf}"
    ha_cf.write_text(text)


def _append(node: HacoreNode, name: str, line: str) -> int:
    """Append ``line`` to the node's file ``name``; returns its line number."""
    path = node.config_dir / name
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, line]) + "\n")
    return len(lines) + 1


def _authkeys(node: HacoreNode, active: int, *keys: int) -> None:
    secrets = {1: "sha1 lab-secret", 2: f"sha256 {NEW_SECRET}"}
    path = node.config_dir / "authkeys"
    path.write_text(f"auth {active}\n" + "".join(f"{k} {secrets[k]}\n" for k in keys))
    path.chmod(0o600)


def _reload(node: HacoreNode) -> list[str]:
    done = node.hactl("config", "reload")
    assert done.returncode == 0, f"{node.name}: {done.stdout}{done.stderr}"
    return done.stdout.splitlines()


def _timers(status: dict[str, Any]) -> tuple[int, int]:
    return status["timers"]["keepalive_ms"], status["timers"]["deadtime_ms"]


def _no_death(c: Cluster) -> None:
    for node in c.nodes:
        status = node.status()
        assert status is not None, f"{node.name} does not answer"
        assert [n["state"] for n in status["nodes"]] == ["active"], status["nodes"]
        assert "is dead" not in node.log(), node.log()[-3000:]


def _rejected(node: HacoreNode) -> dict[str, int]:
    status = node.status()
    assert status is not None
    return dict(status["rejected"])


def _group_actions(node: HacoreNode, key: str) -> tuple[int, int]:
    """How often this node started and stopped group ``key``, from its log."""
    log = node.log()
    return log.count(f"starting group {key}\n"), log.count(f"stopping group {key}\n")


def _wait_keepalives(c: Cluster, count: int = 10) -> None:
    """Let ``count`` keepalives of each node cross (by the peers' sequence numbers)."""
    seqs = {node.name: (node.status() or {})["local"]["seq"] for node in c.nodes}

    def crossed() -> bool:
        return all(
            (node.status() or {"local": {"seq": 0}})["local"]["seq"] >= seqs[node.name] + count
            for node in c.nodes
        )

    wait_for(crossed, SETTLE_TIMEOUT, what=f"{count} more keepalives from each node")


# -- reload -----------------------------------------------------------------------------------


def test_reloads_apply_timers_keys_and_groups_without_moving_anything(
    lab: Lab, tmp_path: Path
) -> None:
    c = _cluster(lab, tmp_path)
    pc1, pc2 = c.nodes
    with c.watch() as watch:
        _start(c)

        # (a) New timers on both nodes, one after the other: status shows them, nobody dies.
        for node in c.nodes:
            _set_directive(node, "keepalive", "100ms")
            _set_directive(node, "deadtime", "2500ms")
            (applied,) = _reload(node)
            assert applied.startswith("applied timers: timers: keepalive 200 -> 100 ms"), applied
            assert "deadtime 1500 -> 2500 ms" in applied, applied
            assert _timers(node.status() or {}) == (100, 2500)
        _wait_keepalives(c)
        _no_death(c)

        # (b) Key rollout without a flag day: key 2 added next to key 1 everywhere, then each
        # node signs with it in turn, then key 1 goes. Every datagram is signed with a key
        # its receiver lists at every step, so none is rejected: the expected count is zero.
        for step in ((1, 1, 2), (2, 1, 2), (2, 2)):
            for node in c.nodes:
                _authkeys(node, *step)
                assert _reload(node)[0].startswith("applied auth: authkeys: signing with key")
                _wait_keepalives(c, 5)
        _wait_keepalives(c)
        assert (_rejected(pc1), _rejected(pc2)) == ({}, {})
        _no_death(c)

        # (c) A new group starts on its preferred node; the old ones stay where they are. In
        # the same reload pc2 gets a notifier (notify.toml): the plugin restarts with it, and
        # it reports the new group's start.
        notified = tmp_path / "notified"
        (pc2.config_dir / "notify.toml").write_text(
            '[[notifier]]\nkind = "exec"\nevents = ["resource"]\ncommand = ["/bin/sh", "-c", '
            f"'echo \"$HACORE_GROUP $HACORE_ACTION\" >> {notified}']\n"
        )
        with c.watch(NEW_VIP) as new_watch:
            _append(pc1, "haresources", f"pc2 {NEW_KEY}")
            assert _reload(pc1) == [f"applied group added: {NEW_KEY}: preferred node pc2"]
            _append(pc2, "haresources", f"pc2 {NEW_KEY}")
            assert _reload(pc2) == [
                f"applied plugins: plugins: {pc2.config_dir / 'notify.toml'} changed: "
                "restarting the plugins",
                f"applied group added: {NEW_KEY}: preferred node pc2",
            ]
            new_watch.wait_holders({"pc2"}, SETTLE_TIMEOUT)
            wait_placed(c.nodes, pc2, NEW_KEY, SETTLE_TIMEOUT)
        assert new_watch.intervals()["pc1"] == [], new_watch.describe()
        wait_for(
            lambda: notified.exists() and f"{NEW_KEY} start\n" in notified.read_text(),
            SETTLE_TIMEOUT,
            what="the new notifier to report the new group's start",
        )

        # (d) A typo is refused with its file and line; the daemon keeps the old configuration.
        ha_cf = pc1.config_dir / "ha.cf"
        good = ha_cf.read_text()
        line = _append(pc1, "ha.cf", "keepaliv 2")
        done = pc1.hactl("config", "reload")
        assert done.returncode == 2, done
        assert f"{ha_cf}:{line}: " in done.stderr and "keepaliv" in done.stderr, done.stderr
        # A change that needs a restart is refused as a whole, in one line that says so.
        ha_cf.write_text(good)
        _append(pc1, "ha.cf", "node pc3")
        _set_directive(pc1, "deadtime", "3000ms")
        done = pc1.hactl("config", "reload")
        assert done.returncode == 2, done
        refusal = [ln for ln in done.stderr.splitlines() if "restart" in ln]
        assert len(refusal) == 1 and "node list" in refusal[0], done.stderr
        assert _timers(pc1.status() or {}) == (100, 2500)  # the deadtime change was not applied
        ha_cf.write_text(good)
        assert _reload(pc1) == ["nothing changed"]

        # (e) SIGHUP does what the command does: a refusal goes to the log, a change applies.
        good = (pc2.config_dir / "ha.cf").read_text()
        line = _append(pc2, "ha.cf", "keepaliv 2")
        assert pc2.proc is not None
        pc2.host.kill(pc2.proc, signal.SIGHUP)
        wait_for(
            lambda: f"reload refused: {pc2.config_dir / 'ha.cf'}:{line}: " in pc2.log(),
            SETTLE_TIMEOUT,
            what="pc2 logs the refused reload",
        )
        (pc2.config_dir / "ha.cf").write_text(good)
        _set_directive(pc2, "deadtime", "3000ms")
        pc2.host.kill(pc2.proc, signal.SIGHUP)
        pc2.wait_status(lambda s: _timers(s) == (100, 3000), SETTLE_TIMEOUT, "deadtime 3000 ms")
        wait_for(
            lambda: "reload: timers: timers: deadtime 2500 -> 3000 ms" in pc2.log(),
            SETTLE_TIMEOUT,
            what="pc2 logs the change (the log is written by its own thread)",
        )

        _wait_keepalives(c)
        wait_placed(c.nodes, pc1, VIP_KEY, SETTLE_TIMEOUT)
        wait_placed(c.nodes, pc2, DUMMY_KEY, SETTLE_TIMEOUT)
        _no_death(c)
    # The VIP never left pc1, and neither old group was stopped or started again anywhere.
    assert watch.intervals() == {"pc1": [(watch.intervals()["pc1"][0][0], None)], "pc2": []}, (
        watch.describe()
    )
    assert (_group_actions(pc1, VIP_KEY), _group_actions(pc2, VIP_KEY)) == ((1, 0), (0, 0))
    assert (_group_actions(pc1, DUMMY_KEY), _group_actions(pc2, DUMMY_KEY)) == ((0, 0), (1, 0))
    assert (_rejected(pc1), _rejected(pc2)) == ({}, {})


# -- maintenance mode -------------------------------------------------------------------------


def test_maintenance_leaves_a_vip_removed_behind_its_back_alone_across_a_restart(
    lab: Lab, tmp_path: Path
) -> None:
    c = _cluster(lab, tmp_path)
    pc1, pc2 = c.nodes
    monitor = AgentRegistry().load("IPaddr2").metadata.action("monitor")
    assert monitor is not None and monitor.interval_ms
    interval_s = monitor.interval_ms / 1000
    state_file = pc1.config_dir / "state" / "maintenance.json"
    with c.watch() as watch:
        _start(c)
        done = pc1.hactl("maintenance", "on")
        assert done.returncode == 0, done.stderr
        status = pc1.wait_status(lambda s: s["local"]["maintenance"], 5, "in maintenance")
        assert state_file.exists()
        shown = pc1.hactl("status")
        assert "maintenance mode" in shown.stdout, shown.stdout

        # The VIP goes behind pc1's back: nobody restarts it, nobody takes it, for longer
        # than a monitor interval.
        pc1.host.exec(["ip", "address", "del", f"{VIP}/24", "dev", "eth0"])
        watch.wait_holders(set(), 5)
        # Watching for something that must not happen: a window longer than the interval.
        gone_at = time.time()
        wait_for(
            lambda: time.time() > gone_at + interval_s + 1.0,
            interval_s + 5,
            what="a monitor interval to pass",
        )
        assert watch.holders_now() == set(), watch.describe()
        status = pc1.status() or {}
        vip = next(g for g in status["groups"] if g["key"] == VIP_KEY)
        assert vip["holders"] == ["pc1"] and vip["failcount"] == 0, vip

        # A daemon restart: still in maintenance, and pc2 takes nothing while pc1 is away.
        assert pc1.stop() == 0
        pc1.start()
        pc1.wait_status(lambda s: s["local"]["maintenance"], START_TIMEOUT, "in maintenance")
        wait_all_active(c.nodes, START_TIMEOUT)
        pc2.wait_group(VIP_KEY, lambda g: g["holders"] == ["pc1"], SETTLE_TIMEOUT, "on pc1")
        assert watch.holders_now() == set(), watch.describe()

        # Off: the VIP is found missing and recovered in place, on pc1.
        done = pc1.hactl("maintenance", "off")
        assert done.returncode == 0, done.stderr
        watch.wait_holders({"pc1"}, SETTLE_TIMEOUT)
        wait_placed(c.nodes, pc1, VIP_KEY, SETTLE_TIMEOUT)
        wait_placed(c.nodes, pc2, DUMMY_KEY, SETTLE_TIMEOUT)
        assert not state_file.exists()
        assert not (pc1.status() or {})["local"]["maintenance"]
    assert watch.intervals()["pc2"] == [], watch.describe()
    assert _group_actions(pc2, DUMMY_KEY) == (1, 0)
