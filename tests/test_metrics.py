"""The Prometheus endpoint: its configuration, the metrics it makes of a status snapshot, its
reference in docs/metrics.md, and two daemons serving it in a namespace lab."""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from hacore.config import ConfigError, load
from hacore.config.errors import Severity
from hacore.config.hacf import read_hacf
from hacore.config.model import (
    Auth,
    AuthKey,
    AuthMethod,
    ClusterConfig,
    Group,
    Link,
    LinkKind,
    Resource,
)
from hacore.exporter import StatusCollector
from hacore.lab.netns import Host, Lab, wait_for
from hacore.lab.nodes import HacoreNode, localize, wait_all_active, write_cluster
from hacore.resources.binding import bind
from hacore.resources.group import GroupRuntime
from hacore.resources.runner import Runner
from hacore.resources.stats import OK, ActionStats

DOCS = Path(__file__).parent.parent / "docs" / "metrics.md"
HACF = "node pc1 pc2\nbcast eth0\nauto_failback on\n"
TOML = """\
[cluster]
nodes = ["pc1", "pc2"]
auto_failback = "on"

[[link]]
kind = "bcast"
interface = "eth0"

[auth]
active = 1

[[auth.key]]
index = 1
method = "sha256"
secret = "s3cret"
"""

# -- configuration

WRITE = "(write address:port, like 127.0.0.1:9694 or [::1]:9694)"
BRACKETS = "write an IPv6 address in brackets, then the port, like [::1]:9694"
NO_NAMES = "(write the address, not a host name)"


def _hacf(tmp_path: Path, line: str) -> tuple[str | None, list[tuple[int, str, Severity]]]:
    path = tmp_path / "ha.cf"
    path.write_text(HACF + line + "\n")
    result = read_hacf(path)
    return result.metrics_address, [
        (p.location.line, p.message, p.severity) for p in result.problems
    ]


@pytest.mark.parametrize(
    ("written", "address"),
    [
        ("127.0.0.1:9694", "127.0.0.1:9694"),
        ("0.0.0.0:9694", "0.0.0.0:9694"),
        ("[::1]:9694", "[::1]:9694"),
        ("[0:0::1]:9694", "[::1]:9694"),
    ],
)
def test_hacf_metrics_directive_sets_the_address_and_warns_heartbeat_refuses_it(
    tmp_path: Path, written: str, address: str
) -> None:
    assert _hacf(tmp_path, f"metrics {written}") == (
        address,
        [
            (
                4,
                "'metrics' is hacore's own directive: Heartbeat 3.0.6 refuses a ha.cf that has it",
                Severity.WARNING,
            )
        ],
    )


@pytest.mark.parametrize(
    ("written", "error"),
    [
        ("127.0.0.1", f"'127.0.0.1' has no port {WRITE}"),
        ("127.0.0.1:", f"'127.0.0.1:' has no port {WRITE}"),
        ("[::1]", f"'[::1]' has no port {WRITE}"),
        ("[::1:9694", f"'[::1:9694' has no ']' after the IPv6 address {WRITE}"),
        ("::1:9694", f"'::1:9694': {BRACKETS}"),
        ("localhost:9694", f"'localhost' is not an IPv4 address {NO_NAMES}"),
        ("[127.0.0.1]:9694", "'127.0.0.1' is not an IPv6 address"),
        ("127.0.0.1:99999", "'99999' is not a port number (1 to 65535)"),
        (":9694", "':9694' has no address (write 0.0.0.0:9694 for every address)"),
    ],
)  # fmt: skip
def test_hacf_metrics_directive_refuses_what_is_not_an_address_and_port(
    tmp_path: Path, written: str, error: str
) -> None:
    assert _hacf(tmp_path, f"metrics {written}") == (
        None,
        [(4, f"metrics: {error}", Severity.ERROR)],
    )


def test_metrics_are_off_unless_configured(tmp_path: Path) -> None:
    assert _hacf(tmp_path, "") == (None, [])
    path = tmp_path / "cluster.toml"
    path.write_text(TOML)
    path.chmod(0o600)
    assert load(path, node_name="pc1").config.metrics_address is None


def test_a_heartbeat_directory_carries_the_address_into_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "ha.cf").write_text(HACF + "metrics 198.51.100.1:9694\n")
    (tmp_path / "authkeys").write_text("auth 1\n1 sha1 secret\n")
    (tmp_path / "authkeys").chmod(0o600)
    loaded = load(tmp_path, node_name="pc1")
    assert loaded.config.metrics_address == "198.51.100.1:9694"


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cluster.toml"
    path.write_text(TOML + text)
    path.chmod(0o600)
    return path


def _toml_errors(path: Path) -> list[tuple[int, str]]:
    with pytest.raises(ConfigError) as e:
        load(path, node_name="pc1")
    return [(p.location.line, p.message) for p in e.value.problems if p.severity is Severity.ERROR]


def test_toml_metrics_table_sets_the_address(tmp_path: Path) -> None:
    path = _toml(tmp_path, '\n[metrics]\naddress = "[::1]:9694"\n')
    loaded = load(path, node_name="pc1")
    assert loaded.config.metrics_address == "[::1]:9694"
    assert loaded.warnings == ()


def test_toml_metrics_address_is_checked_at_its_line(tmp_path: Path) -> None:
    path = _toml(tmp_path, '\n[metrics]\naddress = "localhost:9694"\n')
    assert _toml_errors(path) == [
        (
            18,
            f"'address' in [metrics]: 'localhost' is not an IPv4 address {NO_NAMES}",
        )
    ]


def test_toml_metrics_table_without_address_is_an_error(tmp_path: Path) -> None:
    path = _toml(tmp_path, "\n[metrics]\nport = 9694\n")
    assert _toml_errors(path) == [
        (18, "unknown key 'port' in [metrics]"),
        (17, "[metrics] has no 'address' (address = \"127.0.0.1:9694\")"),
    ]


# -- action timings


def _dummy_group(tmp_path: Path, **params: str) -> GroupRuntime:
    state = str(tmp_path / "dummy.state")
    config = ClusterConfig(
        nodes=("pc1",),
        local_node="pc1",
        links=(Link(LinkKind.BCAST, "eth0"),),
        auth=Auth(1, (AuthKey(1, AuthMethod.SHA256, b"k"),)),
        groups=(Group("pc1", (Resource("Dummy", params=(("state", state), *params.items())),)),),
    )
    (bound,), problems = bind(config)
    assert problems == ()
    return GroupRuntime(bound, Runner(), stats=ActionStats())


def _run(group: GroupRuntime, scenario: Coroutine[Any, Any, object]) -> None:
    """Run ``scenario`` on a loop of its own, then close the group's worker loops."""
    try:
        asyncio.run(scenario)
    finally:
        workers = list(group.runner._workers.values())
        group.runner.close()  # stops the loops; closing them is left to the process's end
        for worker in workers:
            worker._thread.join(5)
            worker._loop.close()


def _summary(group: GroupRuntime) -> dict[str, dict[str, Any]]:
    assert group._stats is not None
    return {e["action"]: e for e in group._stats.summary()}


def test_group_actions_are_timed_per_agent_and_action(tmp_path: Path) -> None:
    group = _dummy_group(tmp_path, op_sleep="0.06")

    async def scenario() -> None:
        await group.start()
        await group.check()
        await group.stop()

    _run(group, scenario())
    actions = _summary(group)
    assert sorted(actions) == ["monitor", "start", "stop"]
    start = actions["start"]
    assert (start["agent"], start["count"], start["failures"]) == ("Dummy", 1, {})
    assert start["sum_s"] >= 0.06
    # Slept 0.06 s: nothing in the buckets up to 0.05 s, all of it by +Inf.
    assert [n for bound, n in start["buckets"] if bound <= 0.05] == [0, 0]
    assert start["buckets"][-1] == [120.0, 1]


def test_failed_actions_count_by_result(tmp_path: Path) -> None:
    refused = _dummy_group(tmp_path, fail_start="true")
    _run(refused, refused.start())
    assert _summary(refused)["start"]["failures"] == {"err_generic": 1}
    assert _summary(refused)["stop"]["failures"] == {}

    vanished = _dummy_group(tmp_path)

    async def stopped_behind_our_back() -> None:
        await vanished.start()
        (tmp_path / "dummy.state").unlink()
        await vanished.check()

    _run(vanished, stopped_behind_our_back())
    assert _summary(vanished)["monitor"]["failures"] == {"not_running": 1}


# -- the collector, on a fixed snapshot


def _actions() -> list[dict[str, Any]]:
    stats = ActionStats()
    stats.record("IPaddr", "start", 0.3, OK)
    stats.record("IPaddr", "start", 0.004, OK)
    stats.record("IPaddr", "start", 200.0, "timeout")
    stats.record("IPaddr", "monitor", 0.02, "not_running")
    return stats.summary()


SNAPSHOT: dict[str, Any] = {
    "version": "0.1.0",
    "pid": 4242,
    "uptime_s": 42.5,
    "cluster": "web",
    "config": "/etc/ha.d",
    "local": {
        "name": "pc1",
        "state": "active",
        "generation": 7,
        "seq": 99,
        "standby": "none",
        "ready": True,
    },
    "timers": {"keepalive_ms": 200, "deadtime_ms": 1500, "warntime_ms": 750, "initdead_ms": 1500},
    "links": ["eth0", "eth1"],
    "nodes": [
        {
            "name": "pc2",
            "state": "active",
            "generation": 3,
            "last_heard_ms": 150,
            "deadtime_ms": 1500,
            "state_age_ms": 60_000,
            "late_heartbeats": 2,
            "links": [
                {"name": "eth0", "state": "up", "last_heard_ms": 150},
                {"name": "eth1", "state": "dead", "last_heard_ms": 9000},
            ],
        },
        {
            "name": "pc3",
            "state": "dead",
            "generation": None,
            "last_heard_ms": None,
            "deadtime_ms": None,
            "state_age_ms": 1500,
            "late_heartbeats": 0,
            "links": [
                {"name": "eth0", "state": "dead", "last_heard_ms": None},
                {"name": "eth1", "state": "dead", "last_heard_ms": None},
            ],
        },
    ],
    "rejected": {"bad_auth": 3, "replay": 1},
    "loopback": 10,
    "groups": [
        {
            "key": "IPaddr::198.51.100.55/24/eth0",
            "preferred": "pc1",
            "holders": ["pc1"],
            "desired": "pc1",
            "local_state": "started",
            "failcount": 1,
            "failed_here": False,
            "failovers": 2,
            "takeovers": 1,
            "resources": [],
        },
        {
            "key": "Dummy",
            "preferred": "pc2",
            "holders": ["pc2"],
            "desired": "pc2",
            "local_state": "stopped",
            "failcount": 0,
            "failed_here": False,
            "failovers": 0,
            "takeovers": 0,
            "resources": [],
        },
    ],
    "rscstatus": "local",
    "score": 0,
    "received": {"status": 500},
    "notifiers": {},
    "actions": _actions(),
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _registry(snapshot: dict[str, Any] | None = SNAPSHOT) -> tuple[CollectorRegistry, FakeClock]:
    clock = FakeClock()
    collector = StatusCollector(clock)
    if snapshot is not None:
        collector.update(snapshot)
    registry = CollectorRegistry()
    registry.register(collector)
    return registry, clock


def value(name: str, **labels: str) -> float | None:
    return _registry()[0].get_sample_value(name, labels)


def test_nothing_is_exported_before_the_first_snapshot() -> None:
    registry, _ = _registry(None)
    assert list(registry.collect()) == []


def test_the_daemon_says_who_it_is_how_long_it_has_run_and_its_generation() -> None:
    assert value("hacore_info", cluster="web", node="pc1", version="0.1.0") == 1
    assert value("hacore_uptime_seconds") == 42.5
    assert value("hacore_generation") == 7


def test_the_local_state_is_one_for_the_state_it_is_in_and_zero_for_the_others() -> None:
    states = {s: value("hacore_local_state", state=s) for s in ("init", "up", "active", "dead")}
    assert states == {"init": 0, "up": 0, "active": 1, "dead": 0}


def test_status_age_grows_until_the_next_snapshot() -> None:
    registry, clock = _registry()
    assert registry.get_sample_value("hacore_status_age_seconds") == 0
    clock.now += 7.5
    assert registry.get_sample_value("hacore_status_age_seconds") == 7.5


def test_each_peer_has_a_state_series_per_state() -> None:
    assert value("hacore_node_state", node="pc2", state="active") == 1
    assert value("hacore_node_state", node="pc2", state="dead") == 0
    assert value("hacore_node_state", node="pc3", state="dead") == 1
    assert value("hacore_node_state", node="pc3", state="init") == 0
    assert value("hacore_node_state", node="pc1", state="active") is None  # local: its own metric


def test_last_heard_ages_are_seconds_and_absent_until_first_heard() -> None:
    assert value("hacore_node_last_heard_age_seconds", node="pc2") == 0.15
    assert value("hacore_node_last_heard_age_seconds", node="pc3") is None
    assert value("hacore_link_last_heard_age_seconds", node="pc2", link="eth1") == 9.0
    assert value("hacore_link_last_heard_age_seconds", node="pc3", link="eth0") is None


def test_link_up_per_peer_and_link() -> None:
    assert value("hacore_link_up", node="pc2", link="eth0") == 1
    assert value("hacore_link_up", node="pc2", link="eth1") == 0
    assert value("hacore_link_up", node="pc3", link="eth0") == 0


def test_late_heartbeats_are_counted_per_peer() -> None:
    assert value("hacore_node_late_heartbeats_total", node="pc2") == 2
    assert value("hacore_node_late_heartbeats_total", node="pc3") == 0


def test_rejected_datagrams_count_by_reason_and_every_reason_starts_at_zero() -> None:
    assert value("hacore_rejected_datagrams_total", reason="bad_auth") == 3
    assert value("hacore_rejected_datagrams_total", reason="replay") == 1
    assert value("hacore_rejected_datagrams_total", reason="stale_time") == 0
    assert value("hacore_rejected_datagrams_total", reason="loopback") is None
    assert value("hacore_rejected_datagrams_total", reason="ok") is None


def test_group_holder_is_one_for_holders_and_zero_for_every_other_node() -> None:
    ip = "IPaddr::198.51.100.55/24/eth0"
    holders = {n: value("hacore_group_holder", group=ip, node=n) for n in ("pc1", "pc2", "pc3")}
    assert holders == {"pc1": 1, "pc2": 0, "pc3": 0}
    assert value("hacore_group_holder", group="Dummy", node="pc2") == 1
    assert value("hacore_group_holder", group="Dummy", node="pc1") == 0


def test_group_local_state_failcount_and_moves() -> None:
    ip = "IPaddr::198.51.100.55/24/eth0"
    assert value("hacore_group_local_state", group=ip, state="started") == 1
    assert value("hacore_group_local_state", group=ip, state="stopped") == 0
    assert value("hacore_group_local_state", group="Dummy", state="stopped") == 1
    assert value("hacore_group_failcount", group=ip) == 1
    assert value("hacore_group_failovers_total", group=ip) == 2
    assert value("hacore_group_takeovers_total", group=ip) == 1
    assert value("hacore_group_failovers_total", group="Dummy") == 0


def test_action_durations_are_a_histogram_per_agent_and_action() -> None:
    start = {"agent": "IPaddr", "action": "start"}
    assert value("hacore_resource_action_duration_seconds_count", **start) == 3
    assert value("hacore_resource_action_duration_seconds_sum", **start) == pytest.approx(200.304)
    bucket = "hacore_resource_action_duration_seconds_bucket"
    assert value(bucket, **start, le="0.01") == 1
    assert value(bucket, **start, le="0.25") == 1
    assert value(bucket, **start, le="0.5") == 2
    assert value(bucket, **start, le="120.0") == 2
    assert value(bucket, **start, le="+Inf") == 3


def test_action_failures_count_by_agent_action_and_result() -> None:
    failures = "hacore_resource_action_failures_total"
    assert value(failures, agent="IPaddr", action="start", result="timeout") == 1
    assert value(failures, agent="IPaddr", action="monitor", result="not_running") == 1
    assert value(failures, agent="IPaddr", action="start", result="not_running") is None


# -- the reference


def _exported() -> dict[str, str]:
    """Every metric the collector exports, by its name on the wire, with its HELP text."""
    suffix = {"counter": "_total"}
    registry, _ = _registry()
    return {m.name + suffix.get(m.type, ""): m.documentation for m in registry.collect()}


def test_every_metric_has_help_text_and_the_hacore_prefix() -> None:
    for name, documentation in _exported().items():
        assert name.startswith("hacore_"), name
        assert len(documentation) > 10, name


def test_every_exported_metric_is_documented_and_nothing_else() -> None:
    documented = set(re.findall(r"(?m)^\| `(hacore_\w+)` \|", DOCS.read_text()))
    assert documented == set(_exported())


# -- two daemons in a lab

PORT = 9694
KEEPALIVE_MS, DEADTIME_MS, START_TIMEOUT = 200, 1500, 20.0

# Three datagrams signed with a key the cluster does not have: three bad_auth rejections.
_FORGE = """
import socket, sys, time
from hacore.config.model import Auth, AuthKey, AuthMethod
from hacore.membership.envelope import seal
from hacore.membership.wire import Message
wrong = Auth(1, (AuthKey(1, AuthMethod.SHA1, b"not-the-key"),))
message = Message.of(("t", "status"), ("st", "dead"), ("src", "pc2"), ("seq", "1"),
                     ("hg", "1"), ("ts", "%x" % int(time.time())))
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    for _ in range(3):
        sock.sendto(seal(message, wrong), (sys.argv[1], 694))
"""


Scraped = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(client: Host, address: str) -> Scraped:
    """GET /metrics from ``client`` (a lab host, never the machine's own namespace)."""
    done = client.exec(["curl", "-sS", "--max-time", "5", f"http://{address}:{PORT}/metrics"])
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(done.stdout)
        for s in family.samples
    }


def _sample(scraped: Scraped, name: str, **labels: str) -> float | None:
    return scraped.get((name, frozenset(labels.items())))


@pytest.mark.netns
def test_two_daemons_serve_their_metrics_to_a_client_in_the_lab(lab: Lab, tmp_path: Path) -> None:
    hosts = [lab.add_host("pc1"), lab.add_host("pc2")]
    client = lab.add_host("client")
    dirs = write_cluster(
        tmp_path / "cluster", ["pc1", "pc2"], keepalive=KEEPALIVE_MS, deadtime=DEADTIME_MS,
        haresources=["pc1 Dummy"],
    )  # fmt: skip
    for host in hosts:  # one ha.cf serves both nodes; each listens on its own address
        with (dirs[host.name] / "ha.cf").open("a") as hacf:
            hacf.write(f"metrics {host.address}:{PORT}\n")
    a, b = (HacoreNode(h, dirs[h.name]).start() for h in hosts)
    wait_all_active([a, b], START_TIMEOUT)
    for node in (a, b):
        node.wait_status(
            lambda s: s["groups"][0]["holders"] == ["pc1"], START_TIMEOUT, "Dummy held by pc1"
        )
    client.exec([sys.executable, "-c", _FORGE, a.host.address])
    a.wait_status(lambda s: s["rejected"].get("bad_auth") == 3, 5, "the forgeries counted")

    def scrape_as_of_now(node: HacoreNode) -> Scraped:
        """The metrics once the snapshot (refreshed every second) is as new as the status now."""
        status = node.status()
        assert status is not None
        now = status["uptime_s"]

        def check() -> Scraped | None:
            scraped = _scrape(client, node.host.address)
            return scraped if (_sample(scraped, "hacore_uptime_seconds") or 0) >= now else None

        found: Scraped = wait_for(check, 5, what=f"{node.name}: a fresh snapshot")
        return found

    on_a, on_b = scrape_as_of_now(a), scrape_as_of_now(b)
    assert _sample(on_a, "hacore_rejected_datagrams_total", reason="bad_auth") == 3
    assert _sample(on_b, "hacore_rejected_datagrams_total", reason="bad_auth") == 0
    for scraped, peer in ((on_a, "pc2"), (on_b, "pc1")):
        assert _sample(scraped, "hacore_local_state", state="active") == 1
        assert _sample(scraped, "hacore_node_state", node=peer, state="active") == 1
        assert _sample(scraped, "hacore_node_state", node=peer, state="dead") == 0
        assert _sample(scraped, "hacore_link_up", node=peer, link="eth0") == 1
        assert _sample(scraped, "hacore_group_holder", group="Dummy", node="pc1") == 1
        assert _sample(scraped, "hacore_group_holder", group="Dummy", node="pc2") == 0
        assert (_sample(scraped, "hacore_status_age_seconds") or 0) < 2.5
    assert _sample(on_a, "hacore_group_local_state", group="Dummy", state="started") == 1
    assert _sample(on_b, "hacore_group_local_state", group="Dummy", state="stopped") == 1
    start = {"agent": "Dummy", "action": "start"}
    assert _sample(on_a, "hacore_resource_action_duration_seconds_count", **start) == 1
    assert _sample(on_b, "hacore_resource_action_duration_seconds_count", **start) is None

    # A node whose metrics address is not its own does not start: one line, exit status 2.
    wrong = tmp_path / "wrong"
    shutil.copytree(dirs["pc1"], wrong, ignore=shutil.ignore_patterns("state", "*.log"))
    (wrong / "ha.cf").write_text(
        (wrong / "ha.cf").read_text().replace(a.host.address, b.host.address)
    )
    localize(wrong, "pc1")  # its own log file
    done = client.exec(
        [sys.executable, "-m", "hacore", "run", "--config-dir", str(wrong)], check=False, timeout=30
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"{wrong}: metrics {b.host.address}:{PORT}: cannot listen there (Cannot assign "
        "requested address); free the port or change the metrics address"
    )
    assert a.running() and b.running()
