"""``hactl demo``: a live two-node cluster with a virtual IP and Apache, in network namespaces.

It builds a lab (a bridge, nodes pc1 and pc2, a client, a ping node), writes a Heartbeat-style
/etc/ha.d for each node (the reference scenario: ``pc1 IPaddr::198.51.100.55/24/eth0 apache``,
a ping node, auto_failback on) and an Apache site with a self-signed certificate per node,
starts two hacore daemons, and lets the client fetch https://198.51.100.55/ every 20 ms and ping
it every 5 ms while it cuts pc1's power, then brings pc1 back. It prints who served the site,
how long the client went without an answer, and what ``hactl status`` says. Everything lives in
namespaces and a temporary directory and is removed at the end, even on Ctrl-C.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hacore.lab.fetcher import start_fetcher
from hacore.lab.netns import Host, Lab, LabError, wait_for
from hacore.lab.nodes import HacoreNode, wait_all_active, write_cluster
from hacore.lab.probe import ProbeResult, start_probe
from hacore.statusview import format_status

Say = Callable[[str], None]
START_TIMEOUT = 30.0
VIP = "198.51.100.55"
PING_NODE = "198.51.100.254"
APACHE = Path("/usr/sbin/apache2")


class DemoError(Exception):
    """The demo cannot run here; the message says what to do."""


def _preflight() -> None:
    if os.geteuid() != 0:
        raise DemoError("hactl demo needs root (it builds network namespaces): run it with sudo")
    tools = (
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("unshare", "util-linux"),
        ("openssl", "openssl"),
    )
    for tool, package in tools:
        if shutil.which(tool) is None:
            raise DemoError(f"'{tool}' not found: apt-get install {package} (scripts/demo.sh does)")
    if not APACHE.exists():
        raise DemoError(f"{APACHE} not found: apt-get install apache2 (scripts/demo.sh does)")
    if importlib.util.find_spec("hacore_apache") is None:  # the web server agent is a plugin
        raise DemoError("the apache agent is missing: pip install hacore-apache")


def _entry(status: dict[str, Any], node: str) -> dict[str, Any]:
    for entry in status["nodes"]:
        if entry["name"] == node:
            return dict(entry)
    raise LookupError(f"{node} is not in the status")


def _first_reply_after(result: ProbeResult, mac: str, after: float) -> float | None:
    times = [r.time for r in result.replies if r.mac == mac and r.time >= after]
    return min(times) if times else None


def _gap_around(result: ProbeResult, moment: float) -> float:
    """The longest stretch without any reply that contains ``moment`` (seconds)."""
    marks = sorted(r.time for r in result.replies)
    before = max((t for t in marks if t <= moment), default=moment)
    after = min((t for t in marks if t > moment), default=moment)
    return after - before


class _Demo:
    def __init__(self, say: Say, keepalive_ms: int, deadtime_ms: int) -> None:
        self.say = say
        self.keepalive_ms = keepalive_ms
        self.deadtime_ms = deadtime_ms
        self.t0 = time.monotonic()

    def step(self, text: str) -> None:
        self.say(f"[{time.monotonic() - self.t0:6.2f} s] {text}")

    def show(self, node: HacoreNode) -> None:
        status = node.status()
        if status is not None:
            self.say("\n".join("           " + line for line in format_status(status).splitlines()))

    def holder(self, hosts: list[Host]) -> str:
        return ", ".join(h.name for h in hosts if VIP in h.addresses()) or "nobody"

    def configure(self, tmp: Path) -> dict[str, Path]:
        # A plugin, not a dependency of the core: found at run time like every agent.
        write_site: Any = importlib.import_module("hacore_apache.site").write_site
        dirs = write_cluster(
            tmp, ["pc1", "pc2"], keepalive=self.keepalive_ms, deadtime=self.deadtime_ms,
            initdead=max(self.deadtime_ms, 2000), extra=[f"ping {PING_NODE}"],
        )  # fmt: skip
        cert: tuple[Path, Path] | None = None
        for node, directory in dirs.items():
            # Each machine has its own Apache; the group key (its first resource) is the same.
            site = write_site(tmp / f"www-{node}", node, certificate=cert)
            cert = cert or (site.cert, site.key)
            line = f"pc1 IPaddr::{VIP}/24/eth0 apache::{site.config}"
            (directory / "haresources").write_text(line + "\n")
            # The ping node answers at once in the lab: no need to wait to be sure.
            (directory / "ping.toml").write_text('dampen = "0s"\ninterval = "500ms"\n')
        return dirs

    def run(self, lab: Lab, tmp: Path) -> dict[str, float]:
        figures: dict[str, float] = {}
        self.step("building the lab: a bridge, nodes pc1 and pc2, a client, a ping node")
        pc1, pc2, client = lab.add_host("pc1"), lab.add_host("pc2"), lab.add_host("client")
        lab.add_host("router", address=PING_NODE)
        macs = {pc1.mac: "pc1", pc2.mac: "pc2"}
        tmp.chmod(0o755)  # Apache's children (www-data) must reach the sites below it
        dirs = self.configure(tmp)
        self.say(
            f"           /etc/ha.d: keepalive {self.keepalive_ms}ms, deadtime "
            f"{self.deadtime_ms}ms, bcast eth0, ping {PING_NODE}, auto_failback on"
        )
        self.say(f"           haresources: pc1 IPaddr::{VIP}/24/eth0 apache::<this node's site>")
        started = time.monotonic()
        nodes = [HacoreNode(pc1, dirs["pc1"]).start(), HacoreNode(pc2, dirs["pc2"]).start()]
        self.step("starting hacore on both nodes (hactl run --config-dir <node's ha.d>)")
        wait_all_active(nodes, START_TIMEOUT)
        web = start_fetcher(
            client, f"https://{VIP}/node.txt", tmp / "fetches.jsonl",
            duration=self.deadtime_ms / 1000 * 2 + 40,
        )  # fmt: skip
        web.wait_for("pc1", START_TIMEOUT)
        figures["startup_s"] = time.monotonic() - started
        self.step(f"https://{VIP}/ is served by pc1; hactl status on pc2:")
        self.show(nodes[1])

        probe = start_probe(client, VIP, duration=self.deadtime_ms / 1000 * 2 + 30)
        probe.wait_for_replies(10, mac=pc1.mac, timeout=10)
        self.step("the client fetches the site every 20 ms and pings the VIP every 5 ms")

        self.step("cutting pc1's power: every process of pc1 dies, then its link goes down")
        cut = time.time()
        lab.power_off(pc1)
        wait_for(
            lambda: _first_reply_after(probe.result(), pc2.mac, cut),
            self.deadtime_ms / 1000 + 15, what="pc2 to answer for the VIP",
        )  # fmt: skip
        result = probe.result()
        answered = _first_reply_after(result, pc2.mac, cut) or cut
        figures["failover_s"] = answered - cut
        served = web.wait_for("pc2", self.deadtime_ms / 1000 + 15, after=cut)
        figures["https_failover_s"] = served.done - cut
        status = nodes[1].status() or {}
        entry = _entry(status, "pc1")
        self.step(
            f"pc2 declared pc1 dead after {entry['last_heard_ms'] - entry['state_age_ms']} ms "
            f"of silence (deadtime {self.deadtime_ms} ms) and took the group: the client got "
            f"pc2's first ping reply {figures['failover_s'] * 1000:.0f} ms and its first page "
            f"{figures['https_failover_s'] * 1000:.0f} ms after the power cut"
        )
        self.show(nodes[1])

        self.step("powering pc1 back on and starting hacore: auto_failback returns the VIP")
        lab.power_on(pc1)
        back = time.time()
        nodes[0].start()
        wait_for(
            lambda: _first_reply_after(probe.result(), pc1.mac, back),
            START_TIMEOUT, what="pc1 to answer for the VIP again",
        )  # fmt: skip
        result = probe.result()
        returned = _first_reply_after(result, pc1.mac, back) or back
        figures["failback_gap_s"] = _gap_around(result, returned - 1e-6)
        page = web.wait_for("pc1", START_TIMEOUT, after=back)
        figures["https_failback_gap_s"] = web.longest_gap(back, page.done + 0.5)
        self.step(
            f"pc1 serves again; during the handover the client waited at most "
            f"{figures['failback_gap_s'] * 1000:.0f} ms for a ping reply and "
            f"{figures['https_failback_gap_s'] * 1000:.0f} ms for a page (never both nodes at "
            f"once: pc2 stopped Apache and released the address before pc1 took them)"
        )
        self.say(f"           who answered: {' -> '.join(macs.get(m, m) for m in result.macs())}")
        self.show(nodes[0])
        return figures


def run_demo(say: Say, *, keepalive_ms: int = 100, deadtime_ms: int = 1000) -> dict[str, float]:
    """Run the demo, narrating through ``say``; returns the measured figures (seconds)."""
    _preflight()
    demo = _Demo(say, keepalive_ms, deadtime_ms)
    with tempfile.TemporaryDirectory(prefix="hacore-demo-") as tmp, Lab() as lab:
        figures = demo.run(lab, Path(tmp))
        demo.step("cleaning up: daemons stopped, namespaces removed")
    say("")
    say("summary")
    say(f"  start-up until the site was served:  {figures['startup_s'] * 1000:7.0f} ms")
    say(
        f"  unplanned failover (power cut):      {figures['failover_s'] * 1000:7.0f} ms"
        f" ping, {figures['https_failover_s'] * 1000:.0f} ms https (deadtime {deadtime_ms} ms)"
    )
    say(f"  failback, VIP unanswered:            {figures['failback_gap_s'] * 1000:7.0f} ms"
        f" ping, {figures['https_failback_gap_s'] * 1000:.0f} ms https")  # fmt: skip
    say(f"demo finished in {time.monotonic() - demo.t0:.1f} s")
    return figures


def main(say: Say, **options: int) -> int:
    try:
        run_demo(say, **options)
    except (DemoError, LabError, TimeoutError, RuntimeError) as err:
        say(f"hactl demo: {err}")
        return 1
    return 0
