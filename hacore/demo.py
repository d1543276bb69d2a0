"""``hactl demo``: a live two-node cluster in network namespaces on this machine.

It builds a lab (a bridge, two nodes), writes a Heartbeat-style /etc/ha.d for each node, starts
two hacore daemons, shows their status, cuts the power of one node, shows how long the other
took to declare it dead, brings it back and shows the restart being recognised. Everything it
creates lives in namespaces and a temporary directory, and is removed at the end, even on Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hacore.lab.netns import Lab, LabError
from hacore.lab.nodes import HacoreNode, wait_all_active, write_cluster
from hacore.statusview import format_status

Say = Callable[[str], None]
START_TIMEOUT = 30.0


class DemoError(Exception):
    """The demo cannot run here; the message says what to do."""


def _preflight() -> None:
    if os.geteuid() != 0:
        raise DemoError("hactl demo needs root (it builds network namespaces): run it with sudo")
    for tool, package in (("ip", "iproute2"), ("nft", "nftables"), ("unshare", "util-linux")):
        if shutil.which(tool) is None:
            raise DemoError(f"'{tool}' not found: apt-get install {package} (scripts/demo.sh does)")


def _entry(status: dict[str, Any], node: str) -> dict[str, Any]:
    for entry in status["nodes"]:
        if entry["name"] == node:
            return dict(entry)
    raise LookupError(f"{node} is not in the status")


def run_demo(say: Say, *, keepalive_ms: int = 100, deadtime_ms: int = 1000) -> float:
    """Run the demo, narrating through ``say``; returns the measured detection time (s)."""
    _preflight()
    t0 = time.monotonic()

    def step(text: str) -> None:
        say(f"[{time.monotonic() - t0:6.2f} s] {text}")

    with tempfile.TemporaryDirectory(prefix="hacore-demo-") as tmp, Lab() as lab:
        step("building the lab: a bridge and two nodes, pc1 and pc2 (198.51.100.0/24)")
        pc1, pc2 = lab.add_host("pc1"), lab.add_host("pc2")
        dirs = write_cluster(
            Path(tmp), ["pc1", "pc2"], keepalive=keepalive_ms, deadtime=deadtime_ms,
            initdead=max(deadtime_ms, 2000),
        )  # fmt: skip
        say(f"           ha.cf: keepalive {keepalive_ms}ms, deadtime {deadtime_ms}ms, bcast eth0")
        nodes = [HacoreNode(pc1, dirs["pc1"]).start(), HacoreNode(pc2, dirs["pc2"]).start()]
        step("starting hacore on both nodes: hactl run --config-dir <node dir>")
        wait_all_active(nodes, START_TIMEOUT)
        step("both nodes active; hactl status on pc2 says:")
        say(_indent(format_status(nodes[1].status() or {})))

        generation = _entry(nodes[1].status() or {}, "pc1")["generation"]
        step("cutting pc1's power: its daemon is killed (kill -9) and its link goes down")
        killed = time.monotonic()
        nodes[0].kill()
        lab.link_down(pc1)
        status = nodes[1].wait_node_state("pc1", "dead", deadtime_ms / 1000 + 10)
        entry = _entry(status, "pc1")
        detected = time.monotonic() - int(entry["state_age_ms"]) / 1000 - killed
        step(
            f"pc2 declared pc1 dead {detected * 1000:.0f} ms after the power cut "
            f"(deadtime {deadtime_ms} ms; silence at the verdict "
            f"{entry['last_heard_ms'] - entry['state_age_ms']} ms)"
        )
        say(_indent(format_status(status)))

        step("powering pc1 back on: link up, hactl run again")
        lab.link_up(pc1)
        nodes[0].start()
        wait_all_active(nodes, START_TIMEOUT)
        again = _entry(nodes[1].status() or {}, "pc1")["generation"]
        step(f"pc1 is active again; pc2 recognised a restart (generation {generation} -> {again})")
        step("cleaning up: daemons stopped, namespaces removed")
    say(f"demo finished in {time.monotonic() - t0:.1f} s")
    return detected


def _indent(text: str) -> str:
    return "\n".join("           " + line for line in text.splitlines())


def main(say: Say, **options: int) -> int:
    try:
        run_demo(say, **options)
    except (DemoError, LabError, TimeoutError, RuntimeError) as err:
        say(f"hactl demo: {err}")
        return 1
    return 0
