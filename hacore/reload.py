"""What a configuration reload changes: a pure comparison of the running configuration with a
new, already validated one (``diff``), giving the changes to apply and the changes refused.

The rule is that a reload never moves a resource that did not change: each change names the
smallest thing to redo (the timers of the membership state machine, the keys, one group), and
anything that would need the links, the node list or this node's identity rebuilt is refused as
a whole, with one line saying a restart is needed, so the old configuration keeps running.

Every field of ``ClusterConfig`` is classified below; one not classified (added later) is
refused, so a new setting can never be silently ignored by a reload.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass

from hacore.config.model import ClusterConfig, Group, Resource


class ChangeKind(enum.StrEnum):
    TIMERS = "timers"
    AUTH = "auth"
    AUTO_FAILBACK = "auto_failback"
    DEBUG = "debug"
    PLUGINS = "plugins"  # notifier/ping settings: the plugins are restarted with the new config
    GROUP_ADDED = "group added"
    GROUP_REMOVED = "group removed"
    GROUP_CHANGED = "group changed"  # its resources changed: stopped here, then placed again
    GROUP_PREFERRED = "group preferred"  # only its preferred node: placement decides
    MONITOR = "monitor"  # only a monitor interval: the monitor is rescheduled, nothing restarts


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    subject: str  # the group key, or the setting's name
    detail: str  # what the log line says

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}: {self.detail}"


@dataclass(frozen=True)
class Refusal:
    """A change that cannot be applied to a running daemon."""

    setting: str
    detail: str

    def __str__(self) -> str:
        return f"{self.setting} changed ({self.detail}): restart the daemon to apply it"


@dataclass(frozen=True)
class ReloadPlan:
    changes: tuple[Change, ...] = ()
    refusals: tuple[Refusal, ...] = ()

    @property
    def applicable(self) -> bool:
        return not self.refusals

    def of(self, *kinds: ChangeKind) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.kind in kinds)


# Fields a reload cannot apply: what each is, for the refusal line.
_RESTART = {
    "nodes": "the node list",
    "local_node": "the local node name",
    "links": "the heartbeat links",
    "udpport": "the UDP port",
    "logfile": "the log file",
    "debugfile": "the debug file",
    "logfacility": "the syslog facility",
    "realtime": "realtime scheduling",
    "hbgenmethod": "the generation method",
    "cluster": "the cluster name",
    "metrics_address": "the metrics address",
    "control_group": "the control socket's group",
    "source": "the configuration source",
}
# Fields handled one by one in ``diff`` (or, for ``ignored``, without any effect on a node).
_LIVE = {"timers", "auth", "auto_failback", "debug", "ping_nodes", "ping_groups", "groups"}
_NO_EFFECT = {"ignored"}


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return ", ".join(str(_show(v)) for v in value) or "none"
    if dataclasses.is_dataclass(value) and hasattr(value, "name"):
        return str(value.name)
    return str(value)


def _timers_detail(old: ClusterConfig, new: ClusterConfig) -> str:
    parts = []
    for f in dataclasses.fields(new.timers):
        a, b = getattr(old.timers, f.name), getattr(new.timers, f.name)
        if a != b:
            parts.append(f"{f.name.removesuffix('_ms')} {a} -> {b} ms")
    return ", ".join(parts)


def _auth_detail(new: ClusterConfig) -> str:
    accepted = ", ".join(str(k.index) for k in new.auth.keys)
    key = new.auth.signing_key
    return f"signing with key {key.index} ({key.method}), accepting keys {accepted}"


def _without_monitor(resources: tuple[Resource, ...]) -> tuple[Resource, ...]:
    return tuple(dataclasses.replace(r, monitor_interval_ms=None) for r in resources)


def _group_changes(old: tuple[Group, ...], new: tuple[Group, ...]) -> list[Change]:
    before = {g.key: g for g in old}
    after = {g.key: g for g in new}
    changes: list[Change] = []
    for key, group in after.items():
        was = before.get(key)
        if was is None:
            changes.append(
                Change(ChangeKind.GROUP_ADDED, key, f"preferred node {group.preferred_node}")
            )
            continue
        if was == group:
            continue
        if _without_monitor(was.resources) != _without_monitor(group.resources):
            specs = " ".join(r.spec for r in group.resources)
            changes.append(Change(ChangeKind.GROUP_CHANGED, key, f"resources now {specs}"))
            continue
        if was.preferred_node != group.preferred_node:
            detail = f"preferred node {was.preferred_node} -> {group.preferred_node}"
            changes.append(Change(ChangeKind.GROUP_PREFERRED, key, detail))
        if was.resources != group.resources:
            intervals = ", ".join(
                f"{r.spec} {a.monitor_interval_ms} -> {r.monitor_interval_ms} ms"
                for a, r in zip(was.resources, group.resources, strict=True)
                if a.monitor_interval_ms != r.monitor_interval_ms
            )
            changes.append(Change(ChangeKind.MONITOR, key, f"monitor interval {intervals}"))
    for key in before.keys() - after.keys():
        changes.append(Change(ChangeKind.GROUP_REMOVED, key, "stopped here, then forgotten"))
    return changes


def diff(
    old: ClusterConfig,
    new: ClusterConfig,
    *,
    old_plugin_files: Mapping[str, str] | None = None,
    new_plugin_files: Mapping[str, str] | None = None,
) -> ReloadPlan:
    """The plan that takes a daemon running ``old`` to ``new``. ``*_plugin_files`` are
    fingerprints (name -> digest) of the plugins' own settings files (notify.toml, ping.toml),
    which ``ClusterConfig`` does not hold: a difference restarts the plugins."""
    refusals: list[Refusal] = []
    for f in dataclasses.fields(ClusterConfig):
        a, b = getattr(old, f.name), getattr(new, f.name)
        if f.name in _LIVE or f.name in _NO_EFFECT or a == b:
            continue
        what = _RESTART.get(f.name, f"the setting '{f.name}'")
        refusals.append(Refusal(f.name, f"{what}: {_show(a)} -> {_show(b)}"))
    changes: list[Change] = []
    if old.timers != new.timers:
        changes.append(Change(ChangeKind.TIMERS, "timers", _timers_detail(old, new)))
    if old.auth != new.auth:
        changes.append(Change(ChangeKind.AUTH, "authkeys", _auth_detail(new)))
    if old.auto_failback != new.auto_failback:
        detail = f"{old.auto_failback} -> {new.auto_failback}"
        changes.append(Change(ChangeKind.AUTO_FAILBACK, "auto_failback", detail))
    if old.debug != new.debug:
        changes.append(Change(ChangeKind.DEBUG, "debug", f"{old.debug} -> {new.debug}"))
    plugin_inputs = []
    if (old.ping_nodes, old.ping_groups) != (new.ping_nodes, new.ping_groups):
        plugin_inputs.append("ping nodes")
    old_files, new_files = old_plugin_files or {}, new_plugin_files or {}
    plugin_inputs += sorted(
        name
        for name in old_files.keys() | new_files.keys()
        if old_files.get(name) != new_files.get(name)
    )
    if plugin_inputs:
        detail = f"{', '.join(plugin_inputs)} changed: restarting the plugins"
        changes.append(Change(ChangeKind.PLUGINS, "plugins", detail))
    changes += _group_changes(old.groups, new.groups)
    return ReloadPlan(tuple(changes), tuple(refusals))


def classified_fields() -> frozenset[str]:
    """Every ``ClusterConfig`` field ``diff`` knows how to treat (for the tests)."""
    return frozenset(_RESTART) | _LIVE | _NO_EFFECT
