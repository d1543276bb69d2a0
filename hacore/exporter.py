"""The Prometheus endpoint: ``metrics <address:port>`` in ha.cf, ``[metrics] address`` in
cluster.toml, off without it. docs/metrics.md lists every metric (a test keeps it complete).
Imported only when the endpoint is configured: prometheus_client costs a daemon ~1.5 MB.

The HTTP server is prometheus_client's, in threads of its own, and it never touches the daemon's
live state. The daemon hands the collector a snapshot from its event loop every ``REFRESH_S``:
the dict ``hactl status --json`` prints, plus the action timings (``Daemon.metrics_snapshot``).
A scrape turns whichever snapshot is current into metrics. Swapping one reference is atomic, so
there is no lock, and a scrape cannot delay a keepalive. A snapshot that stops being refreshed
shows as a growing ``hacore_status_age_seconds``: the daemon's event loop is stuck.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector

from hacore.config.values import parse_listen_address
from hacore.membership.events import NodeState
from hacore.membership.wire import Verdict
from hacore.metrics import MetricsError
from hacore.resources.group import GroupState

__all__ = ["MetricsEndpoint", "StatusCollector"]

# Every reason a datagram can be refused, so each counter exists from the start (a rate needs
# its zero). Our own datagrams looping back are not refused, only ignored.
_REASONS = tuple(v.value for v in Verdict if v not in (Verdict.OK, Verdict.LOOPBACK))

Snapshot = dict[str, Any]


def _state_set(
    family: GaugeMetricFamily, labels: list[str], states: Iterable[str], current: str
) -> None:
    """A state as one 0/1 series per possible value, so a query need not know the value."""
    for state in map(str, states):
        family.add_metric([*labels, state], 1.0 if state == current else 0.0)


class StatusCollector:
    """Metrics from the latest snapshot; ``update`` on the loop, ``collect`` in a scrape."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._current: tuple[Snapshot, float] | None = None

    def update(self, snapshot: Snapshot) -> None:
        """Publish a snapshot. The caller must not change it afterwards."""
        self._current = (snapshot, self._clock())

    def collect(self) -> Iterator[Metric]:
        current = self._current  # one read: a scrape sees one snapshot throughout
        if current is None:
            return
        snapshot, taken = current
        age = GaugeMetricFamily(
            "hacore_status_age_seconds",
            "Seconds since the daemon last refreshed these metrics (about 1; more means its "
            "event loop is stuck)",
        )
        age.add_metric([], max(0.0, self._clock() - taken))
        yield age
        yield from _daemon(snapshot)
        yield from _membership(snapshot)
        yield from _groups(snapshot)
        yield from _actions(snapshot.get("actions", []))


def _daemon(s: Snapshot) -> Iterator[Metric]:
    local = s["local"]
    info = GaugeMetricFamily(
        "hacore_info",
        "Always 1; labels say which daemon this is",
        labels=["cluster", "node", "version"],
    )
    info.add_metric([s["cluster"], local["name"], s["version"]], 1.0)
    uptime = GaugeMetricFamily("hacore_uptime_seconds", "Seconds since the daemon started")
    uptime.add_metric([], float(s["uptime_s"]))
    generation = GaugeMetricFamily(
        "hacore_generation", "This node's generation (it grows at every daemon start)"
    )
    generation.add_metric([], float(local["generation"]))
    state = GaugeMetricFamily(
        "hacore_local_state",
        "This node's membership state: 1 for the state it is in, 0 for the others",
        labels=["state"],
    )
    _state_set(state, [], NodeState, local["state"])
    yield from (info, uptime, generation, state)


def _membership(s: Snapshot) -> Iterator[Metric]:
    node_state = GaugeMetricFamily(
        "hacore_node_state",
        "Each peer's state as this node sees it: 1 for the state it is in, 0 for the others",
        labels=["node", "state"],
    )
    heard = GaugeMetricFamily(
        "hacore_node_last_heard_age_seconds",
        "Seconds since the last packet from the peer (absent until first heard)",
        labels=["node"],
    )
    late = CounterMetricFamily(
        "hacore_node_late_heartbeats",
        "Statuses from the peer that came later than warntime",
        labels=["node"],
    )
    link_up = GaugeMetricFamily(
        "hacore_link_up",
        "1 while the peer is heard on the link, 0 once silent for deadtime",
        labels=["node", "link"],
    )
    link_heard = GaugeMetricFamily(
        "hacore_link_last_heard_age_seconds",
        "Seconds since the last packet from the peer on the link (absent until first heard)",
        labels=["node", "link"],
    )
    for node in s["nodes"]:
        name = node["name"]
        _state_set(node_state, [name], NodeState, node["state"])
        if node["last_heard_ms"] is not None:
            heard.add_metric([name], node["last_heard_ms"] / 1000)
        late.add_metric([name], float(node.get("late_heartbeats", 0)))
        for link in node["links"]:
            link_up.add_metric([name, link["name"]], 1.0 if link["state"] == "up" else 0.0)
            if link["last_heard_ms"] is not None:
                link_heard.add_metric([name, link["name"]], link["last_heard_ms"] / 1000)
    rejected = CounterMetricFamily(
        "hacore_rejected_datagrams",
        "Datagrams refused, by reason (bad_auth, replay, stale_time...)",
        labels=["reason"],
    )
    counts: dict[str, int] = {**dict.fromkeys(_REASONS, 0), **s["rejected"]}
    for reason, count in sorted(counts.items()):
        rejected.add_metric([reason], float(count))
    yield from (node_state, heard, late, link_up, link_heard, rejected)


def _groups(s: Snapshot) -> Iterator[Metric]:
    nodes = [s["local"]["name"], *(n["name"] for n in s["nodes"])]
    holder = GaugeMetricFamily(
        "hacore_group_holder",
        "1 for each node that holds the group (as this node knows it), 0 for the others",
        labels=["group", "node"],
    )
    local_state = GaugeMetricFamily(
        "hacore_group_local_state",
        "The group's state on this node: 1 for the state it is in, 0 for the others",
        labels=["group", "state"],
    )
    failcount = GaugeMetricFamily(
        "hacore_group_failcount",
        "Monitor failures of the group here since its last cleanup",
        labels=["group"],
    )
    failovers = CounterMetricFamily(
        "hacore_group_failovers",
        "Times this node took the group because its holder died",
        labels=["group"],
    )
    takeovers = CounterMetricFamily(
        "hacore_group_takeovers",
        "Times this node took the group from a live holder (takeover, failback)",
        labels=["group"],
    )
    for group in s["groups"]:
        key = group["key"]
        for node in nodes:
            holder.add_metric([key, node], 1.0 if node in group["holders"] else 0.0)
        _state_set(local_state, [key], GroupState, group["local_state"])
        failcount.add_metric([key], float(group["failcount"]))
        failovers.add_metric([key], float(group.get("failovers", 0)))
        takeovers.add_metric([key], float(group.get("takeovers", 0)))
    yield from (holder, local_state, failcount, failovers, takeovers)


def _actions(actions: list[dict[str, Any]]) -> Iterator[Metric]:
    durations = HistogramMetricFamily(
        "hacore_resource_action_duration_seconds",
        "How long resource agent actions took, by agent and action",
        labels=["agent", "action"],
    )
    failures = CounterMetricFamily(
        "hacore_resource_action_failures",
        "Resource agent actions that failed, by agent, action and result "
        "(timeout, or the OCF result: err_generic, not_running...)",
        labels=["agent", "action", "result"],
    )
    for entry in actions:
        labels = [entry["agent"], entry["action"]]
        # Bounds spelled as prometheus_client spells them for its own histograms ("1.0").
        buckets = [(repr(float(bound)), float(n)) for bound, n in entry["buckets"]]
        buckets.append(("+Inf", float(entry["count"])))
        durations.add_metric(labels, buckets, float(entry["sum_s"]))
        for result, count in entry["failures"].items():
            failures.add_metric([*labels, result], float(count))
    yield from (durations, failures)


class MetricsEndpoint:
    """The HTTP server and the collector it serves, at ``address`` (``host:port``)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.collector = StatusCollector()
        self.registry = CollectorRegistry()
        self.registry.register(self.collector)
        ProcessCollector(registry=self.registry)  # process_*: memory, CPU, open files
        self._server: WSGIServer | None = None

    def start(self) -> None:
        """Listen. It blocks (http.server looks up the host's name): call it off the loop."""
        host, port = parse_listen_address(self.address)
        try:
            self._server, _thread = start_http_server(port, host, registry=self.registry)
        except OSError as err:
            raise MetricsError(
                f"metrics {self.address}: cannot listen there ({err.strerror or err}); "
                "free the port or change the metrics address"
            ) from None

    def close(self) -> None:
        """Stop serving. It blocks up to half a second (the server's poll interval)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
