"""The services of the reference scenario end to end, with real daemons in namespaces: Apache
serving HTTPS through the virtual IP across a failover and a failback, restarted in place when
it dies and moved when it keeps dying; ping-node connectivity moving the group (Heartbeat's
ipfail); notifiers hearing every event of a failover, in order, even beside one that hangs.

Measured figures are printed (``pytest -s``); the assertions bound them generously, so a slow,
busy two-core machine passes too.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w

# The plugins are editable installs found by an import hook, which mypy does not follow.
from hacore_apache.site import (  # type: ignore[import-not-found,unused-ignore]
    ApacheSite,
    write_site,
)

from hacore.config import load
from hacore.lab.netns import Host, Lab, wait_for
from hacore.lab.nodes import (
    HacoreNode,
    wait_all_active,
    wait_placed,
    write_cluster,
    write_toml_cluster,
)
from hacore.lab.watch import AddressWatch

pytestmark = pytest.mark.netns

VIP = "198.51.100.55"
VIP_KEY = f"IPaddr::{VIP}/24/eth0"
ROUTER = "198.51.100.254"  # the ping node
KEEPALIVE_MS = 200
DEADTIME_MS = 1500
DEADTIME_S = DEADTIME_MS / 1000
# Long, so that a slow start of pc1 on a loaded machine never lets pc2 take pc1's group.
INITDEAD_MS = 10_000
START_TIMEOUT = 30.0  # both daemons up and the group placed
MOVE_TIMEOUT = 15.0  # a move or a resolution, beyond any deadtime it waits for
CLIENT_TIMEOUT = 30.0  # the client follows the VIP (a lost GARP costs it an ARP timeout)
CLIENT_SECONDS = 150.0  # outlives the test; each test kills its client when done
FETCH_INTERVAL = 0.02
RESTART_THRESHOLD = 3  # failures restarted in place before the group moves (the default)
APACHE_MONITOR = "500ms"
HTTPD = Path("/usr/sbin/apache2")
# Fast rounds; the dampening still spans two of them, so one lost echo moves nothing.
PING_SETTINGS = {"attempts": 2, "timeout": "400ms", "dampen": "500ms", "interval": "200ms"}
# Scores are read by the daemon every second; a changed one reaches placement within this.
SCORE_TIMEOUT = 10.0
# How long "nothing moves" is watched for after both nodes lost the ping node.
SETTLE_SECONDS = 3.0


# -- programs run inside lab hosts (the standard library only) ---------------------------------

# GET the URL every INTERVAL seconds for DURATION seconds, one JSON line per request: when it
# was sent and done, the HTTP status, and the node the page names. Certificates are not
# verified (the sites are self-signed); no proxy, so a lab address never leaves the lab.
CLIENT_PROGRAM = r"""
import json, re, ssl, sys, time, urllib.error, urllib.request
url, interval, duration, output = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
opener = urllib.request.build_opener(
    urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
)
end = time.monotonic() + duration
with open(output, "a", buffering=1) as out:
    while time.monotonic() < end:
        sent = time.time()
        record = {"sent": sent, "status": None, "node": None, "error": None}
        try:
            with opener.open(url, timeout=0.5) as response:
                body = response.read(4096).decode("utf-8", "replace")
            found = re.search(r"Served by ([A-Za-z0-9_.-]+)", body)
            record.update(status=response.status, node=found and found.group(1))
        except urllib.error.HTTPError as error:
            record.update(status=error.code, error="HTTPError")
        except Exception as error:
            record.update(error=type(error).__name__)
        record["done"] = time.time()
        out.write(json.dumps(record) + "\n")
        time.sleep(max(0.0, interval - (time.time() - sent)))
"""

# A webhook receiver: every POST body as one line of OUTPUT, answered 200; OUTPUT.ready once
# it listens.
WEBHOOK_PROGRAM = r"""
import http.server, sys
address, port, output = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(output, "ab") as out:
            out.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, format, *args):
        pass
server = http.server.HTTPServer((address, port), Handler)
open(output + ".ready", "w").close()
server.serve_forever()
"""
WEBHOOK_PORT = 8080

# An exec notifier: its HACORE_* environment as one JSON line of argv[1].
RECORDER_PROGRAM = (
    "import json, os, sys\n"
    "event = {k: v for k, v in os.environ.items() if k.startswith('HACORE_')}\n"
    "with open(sys.argv[1], 'a') as out:\n"
    "    out.write(json.dumps(event) + '\\n')\n"
)


# -- helpers shared by the tests ---------------------------------------------------------------


def _write_toml(path: Path, document: Mapping[str, Any]) -> None:
    with path.open("wb") as file:
        tomli_w.dump(document, file)


def _read_lines(path: Path) -> list[dict[str, Any]]:
    """The complete JSON lines of ``path`` (a line being written is left for next time)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


# -- an apache cluster -------------------------------------------------------------------------


@pytest.fixture
def site_root(lab: Lab) -> Iterator[Path]:
    """A directory for the nodes' apache sites that www-data may enter (pytest's tmp_path is
    0700). Removed once the lab, and with it every apache, is gone."""
    if not HTTPD.exists():
        pytest.fail("these tests run Debian's apache2: apt-get install apache2", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="hacore-services-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        try:
            lab.close()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@dataclass
class ApacheCluster:
    pc1: HacoreNode
    pc2: HacoreNode
    client: Host
    sites: dict[str, ApacheSite]
    key: str

    @property
    def nodes(self) -> tuple[HacoreNode, HacoreNode]:
        return self.pc1, self.pc2

    def start(self) -> ApacheCluster:
        for node in self.nodes:
            node.start()
        return self

    def watch(self) -> AddressWatch:
        return AddressWatch([self.pc1.host, self.pc2.host], VIP)


def _apache_cluster(
    lab: Lab, base: Path, site_root: Path, *, monitor_interval: str | None = None
) -> ApacheCluster:
    """pc1 and pc2, each with its own apache site (one certificate, made for the VIP), and a
    cluster.toml per node: one group `IPaddr::VIP/24/eth0` + `apache` preferring pc1, the apache
    resource naming that node's own site. Not started yet."""
    pc1, pc2, client = lab.add_host("pc1"), lab.add_host("pc2"), lab.add_host("client")
    first = write_site(site_root / "pc1", "pc1", address=VIP)
    sites = {
        "pc1": first,
        "pc2": write_site(
            site_root / "pc2", "pc2", address=VIP, certificate=(first.cert, first.key)
        ),
    }

    def groups(node: str) -> list[dict[str, Any]]:
        apache: dict[str, Any] = {"agent": "apache", "params": sites[node].agent_params()}
        if monitor_interval is not None:
            apache["monitor_interval"] = monitor_interval
        ipaddr = {"agent": "IPaddr", "args": [f"{VIP}/24/eth0"]}
        return [{"node": "pc1", "resource": [ipaddr, apache]}]

    dirs = write_toml_cluster(
        base,
        ["pc1", "pc2"],
        groups,
        keepalive=KEEPALIVE_MS,
        deadtime=DEADTIME_MS,
        initdead=INITDEAD_MS,
        auto_failback="on",
    )
    (key,) = (group.key for group in load(dirs["pc1"]).config.groups)
    assert key == VIP_KEY  # the group is named by its first resource on every node
    return ApacheCluster(
        HacoreNode(pc1, dirs["pc1"]), HacoreNode(pc2, dirs["pc2"]), client, sites, key
    )


def _page(client: Host) -> str | None:
    """The node named by the page at https://VIP/ now (one curl from the client), or None."""
    argv = ["curl", "-sk", "--noproxy", "*", "--max-time", "2", f"https://{VIP}/"]
    done = client.exec(argv, check=False, timeout=10)
    found = re.search(r"Served by ([A-Za-z0-9_.-]+)", done.stdout)
    return found.group(1) if done.returncode == 0 and found else None


def _wait_serving(client: Host, node: str, timeout: float) -> float:
    """Wait until https://VIP/ is served by ``node``; returns when (wall clock)."""
    wait_for(lambda: _page(client) == node, timeout, interval=0.05, what=f"{node}'s page")
    return time.time()


@dataclass(frozen=True)
class Fetch:
    sent: float
    done: float
    status: int | None
    node: str | None  # the node the page named, None for a failed request

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.node is not None


class HttpsClient:
    """CLIENT_PROGRAM in the client host, fetching https://VIP/ every 20 ms."""

    def __init__(self, host: Host, output: Path) -> None:
        self.host = host
        self.output = output
        argv = [sys.executable, "-c", CLIENT_PROGRAM, f"https://{VIP}/"]
        argv += [str(FETCH_INTERVAL), str(CLIENT_SECONDS), str(output)]
        self.proc = host.run(argv)

    def fetches(self) -> list[Fetch]:
        return [
            Fetch(line["sent"], line["done"], line["status"], line["node"])
            for line in _read_lines(self.output)
        ]

    def wait_page(self, node: str, timeout: float, *, after: float = 0.0, count: int = 1) -> Fetch:
        """The first of ``count`` pages from ``node`` sent after ``after`` (wall clock)."""

        def found() -> Fetch | None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the HTTPS client exited with {self.proc.returncode}")
            pages = [f for f in self.fetches() if f.ok and f.node == node and f.sent >= after]
            return pages[0] if len(pages) >= count else None

        return wait_for(found, timeout, interval=0.05, what=f"{count} page(s) from {node}")

    def stop(self) -> list[Fetch]:
        self.host.kill(self.proc)
        return self.fetches()


def _gap_before(fetches: Sequence[Fetch], answer: Fetch) -> float:
    """Seconds without a successful response before ``answer``: from the previous one's end."""
    previous = [f.done for f in fetches if f.ok and f.done < answer.done]
    return answer.done - max(previous) if previous else 0.0


def _longest_gap(fetches: Sequence[Fetch]) -> float:
    done = [f.done for f in fetches if f.ok]
    return max((b - a for a, b in itertools.pairwise(done)), default=0.0)


def _servers(fetches: Sequence[Fetch]) -> list[str]:
    """The nodes that served, in order, each run of pages from one node counted once."""
    runs: list[str] = []
    for fetch in fetches:
        if fetch.ok and fetch.node is not None and (not runs or runs[-1] != fetch.node):
            runs.append(fetch.node)
    return runs


# -- HTTPS through the VIP ---------------------------------------------------------------------


def test_https_through_the_vip_is_served_by_pc1_then_pc2_after_power_off_then_pc1_again(
    lab: Lab, tmp_path: Path, site_root: Path
) -> None:
    c = _apache_cluster(lab, tmp_path, site_root).start()
    pc1, pc2 = c.pc1, c.pc2
    wait_placed(c.nodes, pc1, c.key, START_TIMEOUT)

    client = HttpsClient(c.client, tmp_path / "fetches.jsonl")
    client.wait_page("pc1", CLIENT_TIMEOUT, count=25)

    powered_off = time.time()
    lab.power_off(pc1.host)
    failed_over = client.wait_page(
        "pc2", DEADTIME_S + MOVE_TIMEOUT + CLIENT_TIMEOUT, after=powered_off
    )
    wait_placed((pc2,), pc2, c.key, MOVE_TIMEOUT)
    client.wait_page("pc2", CLIENT_TIMEOUT, after=powered_off, count=25)

    # pc1 comes back (a reboot cleared the VIP from its interface; its apache died with it) and
    # its daemon starts: with auto_failback on, the group comes home.
    lab.power_on(pc1.host)
    returned = time.time()
    pc1.start()
    wait_all_active([pc1, pc2], START_TIMEOUT)
    wait_placed(c.nodes, pc1, c.key, MOVE_TIMEOUT)
    failed_back = client.wait_page("pc1", CLIENT_TIMEOUT, after=returned)
    client.wait_page("pc1", CLIENT_TIMEOUT, after=returned, count=25)
    fetches = client.stop()

    assert _servers(fetches) == ["pc1", "pc2", "pc1"], _servers(fetches)
    # Nobody ever answered with an error page (403: www-data cannot read the site, ...).
    assert {f.status for f in fetches} <= {200, None}
    failover, failback = _gap_before(fetches, failed_over), _gap_before(fetches, failed_back)
    failed = sum(1 for f in fetches if not f.ok)
    print(
        f"\nHTTPS via the VIP: {len(fetches)} requests, {failed} failed; failover after "
        f"power-off: no answer for {failover:.3f} s (deadtime {DEADTIME_S} s), first page "
        f"from pc2 {failed_over.done - powered_off:.3f} s after it; failback: no answer for "
        f"{failback:.3f} s; longest gap without a successful response {_longest_gap(fetches):.3f} s"
    )
    assert failover < DEADTIME_S + 8.0
    assert failback < 5.0


# -- apache restarted in place, then moved -----------------------------------------------------


def _master(site: ApacheSite) -> int | None:
    """The running apache master of ``site`` (its pid file, checked against /proc), or None."""
    try:
        pid = int(site.pid_file.read_text().split()[0])
        exe = os.readlink(f"/proc/{pid}/exe")
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return None
    return pid if exe == str(HTTPD) and str(site.config).encode() in cmdline else None


def _crash(pid: int) -> None:
    """SIGKILL an apache master and its children (its process group: httpd calls setsid)."""
    with contextlib.suppress(ProcessLookupError):  # it died meanwhile: nothing to do
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)


def _all_started(group: dict[str, Any]) -> bool:
    return bool(
        group["local_state"] == "started"
        and all(r["state"] == "started" for r in group["resources"])
    )


def test_apache_killed_on_the_holder_is_restarted_in_place_and_moves_when_it_keeps_dying(
    lab: Lab, tmp_path: Path, site_root: Path
) -> None:
    c = _apache_cluster(lab, tmp_path, site_root, monitor_interval=APACHE_MONITOR).start()
    pc1, pc2 = c.pc1, c.pc2
    wait_placed(c.nodes, pc1, c.key, START_TIMEOUT)
    assert _page(c.client) == "pc1"
    first = _master(c.sites["pc1"])
    assert first is not None and _master(c.sites["pc2"]) is None

    # One crash: the monitor notices, the group restarts apache in place (and only apache: the
    # VIP, before it in the group, never leaves pc1).
    with c.watch() as watch:
        crashed = time.time()
        _crash(first)
        group = pc1.wait_group(
            c.key, lambda g: g["failcount"] >= 1 and _all_started(g), MOVE_TIMEOUT, "restarted"
        )
        served = _wait_serving(c.client, "pc1", CLIENT_TIMEOUT)
    assert group["failcount"] == 1 and group["holders"] == ["pc1"], group
    assert watch.intervals() == {"pc1": [(watch.started_at, None)], "pc2": []}, watch.describe()
    second = _master(c.sites["pc1"])
    assert second is not None and second != first
    wait_placed(c.nodes, pc1, c.key, MOVE_TIMEOUT)
    print(f"\napache killed: pc1 served again {served - crashed:.3f} s later (failcount 1)")

    done = pc1.hactl("resource", "cleanup", c.key)
    assert done.returncode == 0, done.stderr
    pc1.wait_group(c.key, lambda g: g["failcount"] == 0, 10, "failures forgotten")

    # Now it dies each time it comes back: restarted in place up to the threshold, then the
    # group moves. Only a master that the group has finished starting is killed, so each kill
    # is exactly one monitor failure (a start cut short would be a failure of its own).
    killed: list[int] = []
    started_killing = time.time()

    def moved_after_crashes() -> bool:
        theirs = pc2.group(c.key)
        if theirs is not None and theirs["local_state"] in ("starting", "started"):
            return True
        mine = pc1.group(c.key)
        pid = _master(c.sites["pc1"])
        if mine is not None and _all_started(mine) and pid is not None and pid not in killed:
            _crash(pid)
            killed.append(pid)
        return False

    wait_for(moved_after_crashes, 60, interval=0.05, what="the group to leave pc1")
    wait_placed(c.nodes, pc2, c.key, MOVE_TIMEOUT)
    served = _wait_serving(c.client, "pc2", CLIENT_TIMEOUT)
    left = pc1.group(c.key)
    assert left is not None and left["failed_here"], left
    print(
        f"apache killed {len(killed)} times in a row: pc2 serves {served - started_killing:.3f} s"
        f" after the first kill (pc1 failcount {left['failcount']})"
    )
    assert len(killed) == RESTART_THRESHOLD + 1, killed
    assert left["failcount"] == RESTART_THRESHOLD + 1, left
    assert _master(c.sites["pc1"]) is None  # stopped there, not left behind

    # auto_failback is on, but pc1 failed the group: it stays on pc2.
    with c.watch() as watch:
        time.sleep(SETTLE_SECONDS)
    assert watch.intervals() == {"pc1": [], "pc2": [(watch.started_at, None)]}, watch.describe()
    assert _page(c.client) == "pc2"


# -- ping nodes --------------------------------------------------------------------------------


@dataclass
class PingCluster:
    pc1: HacoreNode
    pc2: HacoreNode
    router: Host

    @property
    def nodes(self) -> tuple[HacoreNode, HacoreNode]:
        return self.pc1, self.pc2

    def watch(self) -> AddressWatch:
        return AddressWatch([self.pc1.host, self.pc2.host], VIP)


def _ping_cluster(lab: Lab, base: Path) -> PingCluster:
    """The reference scenario in Heartbeat's files, with `ping ROUTER` in ha.cf and fast rounds
    in each node's ping.toml; started, the group placed on pc1, both nodes reaching the router."""
    pc1, pc2 = lab.add_host("pc1"), lab.add_host("pc2")
    router = lab.add_host("router", address=ROUTER)
    dirs = write_cluster(
        base,
        ["pc1", "pc2"],
        keepalive=KEEPALIVE_MS,
        deadtime=DEADTIME_MS,
        initdead=INITDEAD_MS,
        haresources=[f"pc1 {VIP_KEY}"],
        extra=[f"ping {ROUTER}"],
    )
    for directory in dirs.values():
        _write_toml(directory / "ping.toml", PING_SETTINGS)
    c = PingCluster(HacoreNode(pc1, dirs["pc1"]), HacoreNode(pc2, dirs["pc2"]), router)
    for node in c.nodes:
        node.start()
    wait_placed(c.nodes, c.pc1, VIP_KEY, START_TIMEOUT)
    _wait_scores(c, {"pc1": 1, "pc2": 1})
    return c


def _wait_scores(c: PingCluster, scores: Mapping[str, int]) -> None:
    for node in c.nodes:
        want = scores[node.name]

        def scored(status: dict[str, Any], want: int = want) -> bool:
            return bool(status["score"] == want)

        node.wait_status(scored, SCORE_TIMEOUT, f"connectivity score {want}")


def test_the_group_moves_to_the_peer_when_only_the_holder_loses_the_ping_node(
    lab: Lab, tmp_path: Path
) -> None:
    c = _ping_cluster(lab, tmp_path)
    pc1, pc2 = c.pc1, c.pc2
    with c.watch() as watch:
        cut = time.time()
        lab.block(pc1.host, c.router)
        lab.block(c.router, pc1.host)
        moved = watch.wait_holders({"pc2"}, SCORE_TIMEOUT + MOVE_TIMEOUT)
        wait_placed(c.nodes, pc2, VIP_KEY, MOVE_TIMEOUT)
        _wait_scores(c, {"pc1": 0, "pc2": 1})
        # Not a membership change: pc1 is alive and a member, it only lost its way out.
        assert pc1.running()
        assert pc2.node_state("pc1") == "active" and pc1.node_state("pc2") == "active"

        repaired = time.time()
        lab.unblock(pc1.host, c.router)
        lab.unblock(c.router, pc1.host)
        back = watch.wait_holders({"pc1"}, SCORE_TIMEOUT + MOVE_TIMEOUT)
        wait_placed(c.nodes, pc1, VIP_KEY, MOVE_TIMEOUT)
    print(
        f"\nping node cut from pc1: VIP on pc2 {moved - cut:.3f} s later; back on pc1 "
        f"{back - repaired:.3f} s after the repair"
    )
    assert watch.overlaps() == [], watch.describe()
    held = watch.intervals()
    assert len(held["pc1"]) == 2 and len(held["pc2"]) == 1, watch.describe()
    assert "is dead" not in pc2.log()


def test_nothing_moves_when_both_nodes_lose_the_ping_node(lab: Lab, tmp_path: Path) -> None:
    c = _ping_cluster(lab, tmp_path)
    with c.watch() as watch:
        cut = time.time()
        lab.link_down(c.router)
        _wait_scores(c, {"pc1": 0, "pc2": 0})
        lost = time.time()
        time.sleep(SETTLE_SECONDS)
    print(
        f"\nping node lost by both: both scores 0 {lost - cut:.3f} s after the cut; "
        f"VIP record: {watch.describe()}"
    )
    # Neither node reaches more ping nodes than the other: no reason to move, not even briefly.
    held = watch.intervals()
    assert held == {"pc1": [(watch.started_at, None)], "pc2": []}, (
        f"the group moved although both nodes lost the ping node: {watch.describe()}"
    )
    wait_placed(c.nodes, c.pc1, VIP_KEY, MOVE_TIMEOUT)


# -- notifiers ---------------------------------------------------------------------------------


@dataclass
class NotifyCluster:
    pc1: HacoreNode
    pc2: HacoreNode
    script_log: Path
    webhook_log: Path

    @property
    def nodes(self) -> tuple[HacoreNode, HacoreNode]:
        return self.pc1, self.pc2

    def watch_pc2(self) -> AddressWatch:
        """pc2 alone: a powered-off pc1 keeps the VIP on its (dead) interface."""
        return AddressWatch([self.pc2.host], VIP)

    def script_events(self) -> list[dict[str, Any]]:
        """What the exec notifier received, as the webhook's fields (lower case, no prefix)."""
        return [
            {key.removeprefix("HACORE_").lower(): value for key, value in event.items()}
            for event in _read_lines(self.script_log)
        ]

    def webhook_events(self) -> list[dict[str, Any]]:
        return _read_lines(self.webhook_log)


def _notify_cluster(lab: Lab, base: Path, *, hanging: bool = False) -> NotifyCluster:
    """The reference scenario (`pc1 IPaddr::VIP Dummy`, Heartbeat's files), with an exec and a
    webhook notifier on pc2 (the webhook server runs in the client host) and, if ``hanging``, a
    third notifier that never finishes within the test. Started, the group placed on pc1."""
    pc1, pc2, client = lab.add_host("pc1"), lab.add_host("pc2"), lab.add_host("client")
    dirs = write_cluster(
        base,
        ["pc1", "pc2"],
        keepalive=KEEPALIVE_MS,
        deadtime=DEADTIME_MS,
        initdead=INITDEAD_MS,
        haresources=[f"pc1 {VIP_KEY} Dummy"],
    )
    c = NotifyCluster(
        HacoreNode(pc1, dirs["pc1"]),
        HacoreNode(pc2, dirs["pc2"]),
        base / "script-events.jsonl",
        base / "webhook-events.jsonl",
    )
    server = [sys.executable, "-c", WEBHOOK_PROGRAM, client.address, str(WEBHOOK_PORT)]
    client.run([*server, str(c.webhook_log)])
    ready = Path(f"{c.webhook_log}.ready")
    wait_for(ready.exists, 10, interval=0.05, what="the webhook server to listen")
    notifiers: list[dict[str, Any]] = [
        {
            "kind": "exec",
            "name": "script",
            "command": [sys.executable, "-c", RECORDER_PROGRAM, str(c.script_log)],
            "timeout": "10s",
        },
        {
            "kind": "webhook",
            "name": "hook",
            "url": f"http://{client.address}:{WEBHOOK_PORT}/hacore",
            "timeout": "5s",
        },
    ]
    if hanging:
        # Its timeout outlives the test: every event it is given waits behind the first.
        notifiers.append(
            {"kind": "exec", "name": "hangs", "command": ["/bin/sleep", "600"], "timeout": "300s"}
        )
    _write_toml(dirs["pc2"] / "notify.toml", {"notifier": notifiers})
    for node in c.nodes:
        node.start()
    wait_placed(c.nodes, c.pc1, VIP_KEY, START_TIMEOUT)
    return c


def _commands(host: Host) -> list[list[str]]:
    """The command lines of the processes running in ``host``'s network namespace now."""
    done = subprocess.run(
        ["ip", "netns", "pids", host.netns], capture_output=True, text=True, timeout=10, check=True
    )
    commands = []
    for pid in done.stdout.split():
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        commands.append([word.decode(errors="replace") for word in raw.split(b"\0") if word])
    return commands


def _summary(event: Mapping[str, Any]) -> tuple[str, ...]:
    """An event in a few words, comparable across the exec and webhook notifiers."""
    if event["event"] == "node":
        return ("node", event["node"], event["old_state"], event["new_state"])
    return (
        "resource",
        event["node"],
        event.get("resource") or "-",
        event["action"],
        event["result"],
    )


def _matches(summary: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """``pattern`` is a summary in which "*" stands for any word."""
    return len(summary) == len(pattern) and all(
        want in ("*", got) for got, want in zip(summary, pattern, strict=True)
    )


def _find(summaries: Sequence[tuple[str, ...]], pattern: tuple[str, ...]) -> int | None:
    """The index of the first summary matching ``pattern``, or None."""
    return next((i for i, s in enumerate(summaries) if _matches(s, pattern)), None)


def _wait_event(c: NotifyCluster, wanted: tuple[str, ...], timeout: float) -> None:
    """Both notifiers have received an event matching ``wanted`` (see ``_matches``)."""

    def received() -> bool:
        return all(
            _find([_summary(e) for e in events], wanted) is not None
            for events in (c.script_events(), c.webhook_events())
        )

    try:
        wait_for(received, timeout, interval=0.05, what=f"both notifiers to receive {wanted}")
    except TimeoutError as exc:
        script, hook = map(_summary, c.script_events()), map(_summary, c.webhook_events())
        raise TimeoutError(f"{exc}; script: {list(script)}; webhook: {list(hook)}") from None


# pc1 seen active: from "init" or "up", as the first keepalives happen to arrive, or from
# "dead" when it returns.
PC1_ACTIVE = ("node", "pc1", "*", "active")
FAILOVER = [
    ("node", "pc1", "active", "dead"),
    ("resource", "pc2", VIP_KEY, "start", "SUCCESS"),
    ("resource", "pc2", "Dummy", "start", "SUCCESS"),
    ("resource", "pc2", "-", "failover", "SUCCESS"),
]
FAILBACK = [
    ("resource", "pc2", "Dummy", "stop", "SUCCESS"),
    ("resource", "pc2", VIP_KEY, "stop", "SUCCESS"),
    ("resource", "pc2", "-", "release", "SUCCESS"),
]


def test_script_and_webhook_notifiers_receive_every_event_of_a_failover_in_order(
    lab: Lab, tmp_path: Path
) -> None:
    c = _notify_cluster(lab, tmp_path)
    pc1, pc2 = c.pc1, c.pc2
    _wait_event(c, PC1_ACTIVE, MOVE_TIMEOUT)

    with c.watch_pc2() as watch:
        powered_off = time.time()
        lab.power_off(pc1.host)
        taken = watch.wait_holders({"pc2"}, DEADTIME_S + MOVE_TIMEOUT)
    wait_placed((pc2,), pc2, VIP_KEY, MOVE_TIMEOUT)
    _wait_event(c, FAILOVER[-1], MOVE_TIMEOUT)
    heard = time.time()

    lab.power_on(pc1.host)
    pc1.start()
    wait_all_active([pc1, pc2], START_TIMEOUT)
    wait_placed(c.nodes, pc1, VIP_KEY, MOVE_TIMEOUT)
    _wait_event(c, FAILBACK[-1], MOVE_TIMEOUT)

    script, hook = c.script_events(), c.webhook_events()
    # Both heard the same events, numbered from 1 without a gap, in the same order.
    assert [_summary(e) for e in script] == [_summary(e) for e in hook]
    assert [int(e["sequence"]) for e in script] == list(range(1, len(script) + 1))
    assert [int(e["sequence"]) for e in hook] == list(range(1, len(hook) + 1))
    assert all(e["local_node"] == "pc2" for e in hook)
    summaries = [_summary(e) for e in hook]
    died = _find(summaries, ("node", "pc1", "*", "dead"))
    assert died is not None, summaries
    # The failover, event by event: pc1 dead, the group's resources started in order, the
    # group failed over; nothing else in between.
    assert summaries[died : died + len(FAILOVER)] == FAILOVER, summaries[died:]
    assert hook[died + len(FAILOVER) - 1]["detail"] == "from pc1 (dead)"
    # pc1 returns: it is seen again, then pc2 stops the group in reverse order and releases it.
    after = summaries[died + len(FAILOVER) :]
    seen = _find(after, PC1_ACTIVE)
    assert seen is not None, after
    released = [s for s in after if s[0] == "resource"]
    assert released == FAILBACK, after
    assert seen < after.index(FAILBACK[0]), after
    print(
        f"\nnotifiers on pc2: {len(hook)} events each; VIP on pc2 {taken - powered_off:.3f} s "
        f"after power-off, failover event in both {heard - powered_off:.3f} s after it"
    )
    for event in hook:
        print(f"  {event['sequence']:>3} {' '.join(_summary(event))}")


def test_a_hanging_notifier_delays_neither_the_failover_nor_the_other_notifiers(
    lab: Lab, tmp_path: Path
) -> None:
    c = _notify_cluster(lab, tmp_path, hanging=True)
    pc2 = c.pc2
    _wait_event(c, PC1_ACTIVE, MOVE_TIMEOUT)
    assert ["/bin/sleep", "600"] in _commands(pc2.host), "the hanging notifier is not running"

    with c.watch_pc2() as watch:
        powered_off = time.time()
        lab.power_off(c.pc1.host)
        taken = watch.wait_holders({"pc2"}, DEADTIME_S + MOVE_TIMEOUT)
    wait_placed((pc2,), pc2, VIP_KEY, MOVE_TIMEOUT)
    _wait_event(c, FAILOVER[-1], MOVE_TIMEOUT)
    heard = time.time()

    summaries = [_summary(e) for e in c.webhook_events()]
    died = _find(summaries, ("node", "pc1", "*", "dead"))
    assert died is not None, summaries
    assert summaries[died : died + len(FAILOVER)] == FAILOVER, summaries[died:]
    script = [_summary(e) for e in c.script_events()]
    assert script[: died + len(FAILOVER)] == summaries[: died + len(FAILOVER)], script
    # Still hanging on its first event: it was stuck through the whole failover.
    assert ["/bin/sleep", "600"] in _commands(pc2.host)
    print(
        f"\nwith a hanging notifier: VIP on pc2 {taken - powered_off:.3f} s after power-off "
        f"(deadtime {DEADTIME_S} s); the failover event reached the other notifiers "
        f"{heard - powered_off:.3f} s after power-off"
    )
    assert taken - powered_off < DEADTIME_S + 3.0
    assert heard - taken < 5.0
