"""A mixed cluster: one node runs the real Debian Heartbeat 3.0.6, the other hacore, both from
the same ha.cf and authkeys (sha1). Each must see the other active, and a dead one dead."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from hacore.lab.heartbeat import HeartbeatNode, start_heartbeat, write_heartbeat_config
from hacore.lab.netns import Lab
from hacore.lab.nodes import HacoreNode, localize

pytestmark = [pytest.mark.netns, pytest.mark.heartbeat]

KEEPALIVE_MS = 200
DEADTIME_MS = 2000
START_TIMEOUT = 30.0


def _mixed(lab: Lab, tmp_path: Path) -> tuple[HeartbeatNode, HacoreNode]:
    pc1, pc2 = lab.add_host("pc1"), lab.add_host("pc2")
    shared = write_heartbeat_config(
        tmp_path / "ha.d",
        nodes=["pc1", "pc2"],
        keepalive=KEEPALIVE_MS,
        deadtime=DEADTIME_MS,
        initdead=DEADTIME_MS,
        auth_key="interop-secret",
        auth_method="sha1",
    )
    ours = tmp_path / "hacore"
    shutil.copytree(shared, ours)
    localize(ours, "pc2")
    heartbeat = start_heartbeat(pc1, shared)
    hacore = HacoreNode(pc2, ours).start()
    hacore.wait_node_state("pc1", "active", START_TIMEOUT)
    heartbeat.wait_for_log(r"Status update for node pc2: status active", timeout=START_TIMEOUT)
    return heartbeat, hacore


def test_hacore_declares_a_killed_heartbeat_node_dead_within_deadtime(
    lab: Lab, tmp_path: Path
) -> None:
    heartbeat, hacore = _mixed(lab, tmp_path)
    killed_at = time.monotonic()
    heartbeat.kill()
    lab.link_down(heartbeat.host)
    hacore.wait_node_state("pc1", "dead", DEADTIME_MS / 1000 + 10)
    assert time.monotonic() - killed_at <= (DEADTIME_MS + 3 * KEEPALIVE_MS) / 1000 + 1.0
    status = hacore.status()
    assert status is not None
    # Heartbeat's datagrams were all accepted: nothing it sent counted as hostile.
    assert not status["rejected"], status["rejected"]


def test_heartbeat_declares_a_killed_hacore_node_dead(lab: Lab, tmp_path: Path) -> None:
    heartbeat, hacore = _mixed(lab, tmp_path)
    mark = heartbeat.log_mark()
    hacore.kill()
    lab.link_down(hacore.host)
    heartbeat.wait_for_log(r"node pc2: is dead", timeout=DEADTIME_MS / 1000 + 10, since=mark)
    assert heartbeat.running()
