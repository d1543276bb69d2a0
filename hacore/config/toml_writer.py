"""Writing a cluster.toml: ``to_toml`` turns a configuration (from ha.cf or a cluster.toml)
into a file that reads back to it."""

from __future__ import annotations

from typing import Any

import tomli_w

from hacore.config.model import (
    DEFAULT_FRESHNESS_MS,
    DEFAULT_UDPPORT,
    AuthKey,
    AuthMethod,
    ClusterConfig,
    Group,
    Link,
    LinkKind,
)
from hacore.config.timers import default_initdead
from hacore.config.toml_schema import MCAST_KINDS
from hacore.config.values import format_duration


def to_toml(config: ClusterConfig) -> str:
    """A cluster.toml that reads back to ``config`` (all but its source and ignored lines).

    The local node is left out so that one file serves every node, like ha.cf; the secrets are
    written inline, so the file must be written with mode 600. Heartbeat directives hacore
    ignores are kept as comments, so that nothing disappears without a trace.
    """
    out = [
        "# hacore cluster configuration.",
        "# It holds the cluster's secrets: keep it mode 600.",
        "# The local node is not named here, so the same file serves every node: hacore takes",
        "# it from nodeinfo beside this file, or else from the host name (uname -n).",
    ]
    if config.ignored:
        out.append("# Heartbeat directives not carried over (hacore ignores them):")
        out.extend(f"#   {i.location}: {i.directive} {i.value}".rstrip() for i in config.ignored)
    out.append("")
    out += _section("[cluster]", _cluster_doc(config))
    out += _section("[timers]", _timers_doc(config))
    for link in config.links:
        out += _section("[[link]]", _link_doc(link, config.udpport))
    out += _section("[auth]", {"active": config.auth.active})
    for key in config.auth.keys:
        out += _section("[[auth.key]]", _key_doc(key))
    if config.ping_nodes:
        out += _section("[ping]", {"nodes": list(config.ping_nodes)})
    for ping_group in config.ping_groups:
        out += _section(
            "[[ping.group]]", {"name": ping_group.name, "addresses": list(ping_group.addresses)}
        )
    logging = {
        key: value
        for key, value in (
            ("file", config.logfile),
            ("debugfile", config.debugfile),
            ("facility", config.logfacility),
            ("debug", config.debug or None),
        )
        if value is not None
    }
    if logging:
        out += _section("[logging]", logging)
    if config.metrics_address is not None:
        out += _section("[metrics]", {"address": config.metrics_address})
    if config.control_group is not None:
        out += _section("[control]", {"group": config.control_group})
    for group in config.groups:
        out += _group_sections(group)
    return "\n".join(out)


def _section(header: str, items: dict[str, Any]) -> list[str]:
    """A table as lines: its header, one ``key = value`` line per item, a blank line."""
    return [header, *(f"{_key(k)} = {_value(v)}" for k, v in items.items()), ""]


def _key(key: str) -> str:
    # tomli_w quotes a key when it must; take its spelling from a one-key document.
    return tomli_w.dumps({key: 0}).rsplit(" = ", 1)[0]


def _value(value: Any) -> str:
    """A value on one line; arrays and tables inline (tomli_w would spread arrays out)."""
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    return tomli_w.dumps({"v": value}).removeprefix("v = ").removesuffix("\n")


def _cluster_doc(config: ClusterConfig) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": config.cluster,
        "nodes": list(config.nodes),
        "auto_failback": config.auto_failback.value,
    }
    if config.udpport != DEFAULT_UDPPORT:
        doc["udpport"] = config.udpport
    if config.hbgenmethod != "file":
        doc["hbgenmethod"] = config.hbgenmethod
    if not config.realtime:
        doc["realtime"] = False
    return doc


def _timers_doc(config: ClusterConfig) -> dict[str, Any]:
    t = config.timers
    doc = {"keepalive": format_duration(t.keepalive_ms), "deadtime": format_duration(t.deadtime_ms)}
    # Write the derived timers only where they differ from what they derive to, so that
    # changing deadtime later still moves them, as in ha.cf.
    derived = {
        "warntime": (t.warntime_ms, t.deadtime_ms // 2),
        "initdead": (t.initdead_ms, default_initdead(t.deadtime_ms)),
        "deadping": (t.deadping_ms, t.deadtime_ms),
        "freshness": (t.freshness_ms, DEFAULT_FRESHNESS_MS),
    }
    for key, (value, default) in derived.items():
        if value != default:
            doc[key] = format_duration(value)
    return doc


def _link_doc(link: Link, udpport: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"kind": link.kind.value, "interface": link.interface}
    if link.kind in (LinkKind.UCAST, LinkKind.UCAST6):
        doc["peer"] = link.address
    if link.kind in MCAST_KINDS:
        doc["group"] = link.address
    if link.port != udpport or link.kind in MCAST_KINDS:
        doc["port"] = link.port
    if link.kind in MCAST_KINDS:
        doc["ttl"] = link.ttl
        doc["loop"] = link.loop
    return doc


def _key_doc(key: AuthKey) -> dict[str, Any]:
    doc: dict[str, Any] = {"index": key.index, "method": key.method.value}
    if key.method is AuthMethod.CRC:
        return doc
    try:
        doc["secret"] = key.secret.decode("utf-8")
    except UnicodeDecodeError:
        doc["secret_hex"] = key.secret.hex()
    return doc


def _group_sections(group: Group) -> list[str]:
    # The haresources spelling is shorter; use it when it says everything.
    plain = all(
        not r.params and r.monitor_interval_ms is None and not any("::" in a for a in r.args)
        for r in group.resources
    )
    if plain:
        resources = [r.spec for r in group.resources]
        return _section("[[group]]", {"node": group.preferred_node, "resources": resources})
    out = _section("[[group]]", {"node": group.preferred_node})
    for r in group.resources:
        entry: dict[str, Any] = {"agent": r.agent}
        if r.args:
            entry["args"] = list(r.args)
        if r.params:
            entry["params"] = dict(r.params)
        if r.monitor_interval_ms is not None:
            entry["monitor_interval"] = format_duration(r.monitor_interval_ms)
        out += _section("[[group.resource]]", entry)
    return out
