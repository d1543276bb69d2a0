"""Configuration reload, without I/O: the plan ``diff`` makes from the running configuration and
a new one (table-style), and new timers applied to a running membership without a false death."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from hacore.config.model import (
    Auth,
    AuthKey,
    AuthMethod,
    AutoFailback,
    ClusterConfig,
    Group,
    Link,
    LinkKind,
    Location,
    Resource,
    Timers,
)
from hacore.membership.events import NodeState
from hacore.reload import ChangeKind, diff
from tests.membership_sim import Network

KEY1 = AuthKey(1, AuthMethod.SHA1, b"old")
KEY2 = AuthKey(2, AuthMethod.SHA256, b"new")
VIP = Group("pc1", (Resource("IPaddr", ("198.51.100.55/24/eth0",)),))
DUMMY = Group("pc2", (Resource("Dummy", ("d1",)), Resource("Dummy", ("d2",))))
WEB = Group("pc1", (Resource("Dummy", ("web",)),))

BASE = ClusterConfig(
    nodes=("pc1", "pc2"),
    local_node="pc1",
    links=(Link(LinkKind.BCAST, "eth0"),),
    auth=Auth(1, (KEY1,)),
    timers=Timers(keepalive_ms=200, deadtime_ms=1500, warntime_ms=750, initdead_ms=10_000),
    groups=(VIP, DUMMY),
    source=Path("/etc/ha.d"),
)


def _with(**changes: Any) -> ClusterConfig:
    return dataclasses.replace(BASE, **changes)


def _monitor(group: Group, index: int, interval_ms: int | None) -> Group:
    resources = list(group.resources)
    resources[index] = dataclasses.replace(resources[index], monitor_interval_ms=interval_ms)
    return dataclasses.replace(group, resources=tuple(resources))


# new configuration -> the (kind, subject) of every change, and the refused settings.
CASES: dict[str, tuple[ClusterConfig, list[tuple[ChangeKind, str]], list[str]]] = {
    "nothing changed": (BASE, [], []),
    "only line numbers moved": (
        _with(groups=(dataclasses.replace(VIP, location=Location("haresources", 9)), DUMMY)),
        [],
        [],
    ),
    "timers": (
        _with(timers=dataclasses.replace(BASE.timers, keepalive_ms=100, deadtime_ms=3000)),
        [(ChangeKind.TIMERS, "timers")],
        [],
    ),
    "a second key, still signing with the first": (
        _with(auth=Auth(1, (KEY1, KEY2))),
        [(ChangeKind.AUTH, "authkeys")],
        [],
    ),
    "switch the active key": (
        _with(auth=Auth(2, (KEY1, KEY2))),
        [(ChangeKind.AUTH, "authkeys")],
        [],
    ),
    "auto_failback": (
        _with(auto_failback=AutoFailback.OFF),
        [(ChangeKind.AUTO_FAILBACK, "auto_failback")],
        [],
    ),
    "debug": (_with(debug=1), [(ChangeKind.DEBUG, "debug")], []),
    "ping nodes restart the plugins": (
        _with(ping_nodes=("198.51.100.1",)),
        [(ChangeKind.PLUGINS, "plugins")],
        [],
    ),
    "a group added": (
        _with(groups=(VIP, DUMMY, WEB)),
        [(ChangeKind.GROUP_ADDED, WEB.key)],
        [],
    ),
    "a group removed": (
        _with(groups=(VIP,)),
        [(ChangeKind.GROUP_REMOVED, DUMMY.key)],
        [],
    ),
    "groups reordered": (_with(groups=(DUMMY, VIP)), [], []),
    "a resource added to a group": (
        _with(
            groups=(VIP, dataclasses.replace(DUMMY, resources=(*DUMMY.resources, *WEB.resources)))
        ),
        [(ChangeKind.GROUP_CHANGED, DUMMY.key)],
        [],
    ),
    "a resource's arguments changed": (
        _with(groups=(Group("pc1", (Resource("IPaddr", ("198.51.100.55/25/eth0",)),)), DUMMY)),
        # Its first resource is its key: a new key, so another group.
        [
            (ChangeKind.GROUP_ADDED, "IPaddr::198.51.100.55/25/eth0"),
            (ChangeKind.GROUP_REMOVED, VIP.key),
        ],
        [],
    ),
    "only a monitor interval": (
        _with(groups=(VIP, _monitor(DUMMY, 1, 5000))),
        [(ChangeKind.MONITOR, DUMMY.key)],
        [],
    ),
    "a monitor interval and the resources": (
        _with(
            groups=(
                VIP,
                dataclasses.replace(
                    _monitor(DUMMY, 0, 5000), resources=_monitor(DUMMY, 0, 5000).resources[:1]
                ),
            )
        ),
        [(ChangeKind.GROUP_CHANGED, DUMMY.key)],
        [],
    ),
    "only the preferred node": (
        _with(groups=(VIP, dataclasses.replace(DUMMY, preferred_node="pc1"))),
        [(ChangeKind.GROUP_PREFERRED, DUMMY.key)],
        [],
    ),
    "the node list": (_with(nodes=("pc1", "pc2", "pc3")), [], ["nodes"]),
    "the local node name": (_with(local_node="pc2"), [], ["local_node"]),
    "the links": (_with(links=(Link(LinkKind.BCAST, "eth1"),)), [], ["links"]),
    "the udp port": (_with(udpport=695), [], ["udpport"]),
    "the log file": (_with(logfile="/var/log/ha-log"), [], ["logfile"]),
    "the metrics address": (_with(metrics_address="[2001:db8::1]:9100"), [], ["metrics_address"]),
    "refusals with applicable changes": (
        _with(nodes=("pc1", "pc2", "pc3"), debug=1),
        [(ChangeKind.DEBUG, "debug")],
        ["nodes"],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_diff_makes_the_expected_plan(name: str) -> None:
    new, changes, refused = CASES[name]
    plan = diff(BASE, new)
    assert [(c.kind, c.subject) for c in plan.changes] == changes
    assert [r.setting for r in plan.refusals] == refused
    assert plan.applicable is (not refused)


def test_every_configuration_field_is_classified() -> None:
    """A field added to ClusterConfig later is refused by reload until someone decides."""
    from hacore.reload import classified_fields

    assert {f.name for f in dataclasses.fields(ClusterConfig)} <= classified_fields()


def test_an_unclassified_field_is_refused_not_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    from hacore import reload

    monkeypatch.setattr(reload, "_LIVE", reload._LIVE - {"debug"})
    plan = reload.diff(BASE, _with(debug=2))
    assert [r.setting for r in plan.refusals] == ["debug"]
    assert "restart the daemon" in str(plan.refusals[0])


def test_a_refusal_is_one_line_saying_what_and_to_restart() -> None:
    (refusal,) = diff(BASE, _with(nodes=("pc1", "pc2", "pc3"))).refusals
    assert str(refusal) == (
        "nodes changed (the node list: pc1, pc2 -> pc1, pc2, pc3): restart the daemon to apply it"
    )


def test_change_lines_say_what_changed() -> None:
    plan = diff(
        BASE,
        _with(
            timers=dataclasses.replace(BASE.timers, keepalive_ms=100, deadtime_ms=3000),
            auth=Auth(2, (KEY1, KEY2)),
        ),
    )
    assert [str(c) for c in plan.changes] == [
        "timers: timers: keepalive 200 -> 100 ms, deadtime 1500 -> 3000 ms",
        "auth: authkeys: signing with key 2 (sha256), accepting keys 1, 2",
    ]


def test_a_changed_plugin_settings_file_restarts_the_plugins() -> None:
    same = diff(
        BASE, BASE, old_plugin_files={"notify.toml": "a"}, new_plugin_files={"notify.toml": "a"}
    )
    assert same.changes == ()
    for old, new in (({"notify.toml": "a"}, {"notify.toml": "b"}), ({}, {"ping.toml": "c"})):
        plan = diff(BASE, BASE, old_plugin_files=old, new_plugin_files=new)
        assert [c.kind for c in plan.changes] == [ChangeKind.PLUGINS]


# -- new timers on a running membership ------------------------------------------------------

TIMERS = Timers(keepalive_ms=100, deadtime_ms=1000, warntime_ms=500, initdead_ms=2000)


def _up(net: Network) -> None:
    net.run(0.5)
    assert net.nodes["a"].membership.node_state("b") is NodeState.ACTIVE


def test_a_shorter_deadtime_does_not_kill_a_peer_that_was_heard_within_the_old_one() -> None:
    net = Network(["a", "b"], TIMERS)
    _up(net)
    net.kill("b")  # silent from here: it should die at old or new rule, whichever is first
    net.run(0.6)
    a = net.nodes["a"].membership
    a.set_timers(dataclasses.replace(TIMERS, deadtime_ms=300), net.now)
    net.run(0.25)
    assert a.node_state("b") is NodeState.ACTIVE  # 0.85 s silent: over the new 0.3 s already
    net.run(0.1)
    assert a.node_state("b") is NodeState.DEAD  # 0.3 s after the change


def test_a_silent_peer_still_dies_by_the_old_deadtime_if_that_comes_first() -> None:
    net = Network(["a", "b"], TIMERS)
    _up(net)
    net.kill("b")
    net.run(0.6)
    a = net.nodes["a"].membership
    a.set_timers(dataclasses.replace(TIMERS, deadtime_ms=800), net.now)
    net.run(0.25)
    assert a.node_state("b") is NodeState.ACTIVE  # silent 0.85 s: over the new 0.8 s already
    net.run(0.2)
    # Heard within a keepalive before the kill: the old 1.0 s ran out before 0.6 + 0.8 s.
    assert a.node_state("b") is NodeState.DEAD


def test_a_longer_deadtime_counts_at_once() -> None:
    net = Network(["a", "b"], TIMERS)
    _up(net)
    net.kill("b")
    a = net.nodes["a"].membership
    a.set_timers(dataclasses.replace(TIMERS, deadtime_ms=3000), net.now)
    net.run(2.5)
    assert a.node_state("b") is NodeState.ACTIVE
    net.run(0.6)
    assert a.node_state("b") is NodeState.DEAD


def test_changed_keepalive_and_deadtime_on_both_nodes_one_after_the_other_kill_nobody() -> None:
    net = Network(["a", "b"], TIMERS)
    _up(net)
    slower = Timers(keepalive_ms=400, deadtime_ms=2500, warntime_ms=1000, initdead_ms=2000)
    for name in ("a", "b"):
        net.nodes[name].membership.set_timers(slower, net.now)
        net.run(0.7)
    net.run(5.0)
    for name, other in (("a", "b"), ("b", "a")):
        assert net.nodes[name].membership.node_state(other) is NodeState.ACTIVE


def test_a_shorter_keepalive_sends_the_next_status_sooner() -> None:
    net = Network(["a", "b"], Timers(keepalive_ms=1000, deadtime_ms=5000, initdead_ms=5000))
    net.run(0.5)
    a = net.nodes["a"].membership
    before = a.next_wakeup()
    a.set_timers(Timers(keepalive_ms=100, deadtime_ms=5000, initdead_ms=5000), net.now)
    assert a.next_wakeup() <= min(before, net.now + 0.1)


def test_a_crc_key_is_accepted_only_while_listed_so_leaving_crc_is_a_rollout_too() -> None:
    from hacore.daemon import _allows_crc

    crc = AuthKey(3, AuthMethod.CRC, b"")
    assert not _allows_crc(BASE)
    assert _allows_crc(_with(auth=Auth(1, (KEY1, crc))))  # signing sha1, peers still on crc
    assert _allows_crc(_with(auth=Auth(3, (crc,))))
