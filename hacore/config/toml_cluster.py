"""Reading cluster.toml's [cluster] table, and the small tables of settings: [ping], [logging],
[metrics] and [control]."""

from __future__ import annotations

from typing import Any

from hacore.config.model import AutoFailback, PingGroup
from hacore.config.nodeinfo import local_node
from hacore.config.suggest import did_you_mean
from hacore.config.toml_document import Document, Table
from hacore.config.toml_schema import CONTROL, METRICS, PING, PING_GROUP
from hacore.config.values import (
    SYSLOG_FACILITIES,
    InvalidValueError,
    format_listen_address,
    parse_bool,
    parse_group,
    parse_ipv4,
    parse_listen_address,
)


def read_nodes(doc: Document, cluster: Table | None) -> list[str]:
    hint = 'list every cluster member: nodes = ["pc1", "pc2"]'
    if cluster is None:
        doc.error(0, f"no [cluster] table ({hint})")
        return []
    names = doc.strings(cluster, "nodes")
    if names is None:
        if "nodes" not in cluster.data:
            doc.error(cluster.line, f"[cluster] has no 'nodes' ({hint})")
        return []
    nodes: list[str] = []
    for name in names:
        folded = name.strip().lower()
        if not folded:
            doc.error(doc.key_line(cluster, "nodes"), "'nodes' in [cluster] has an empty name")
        elif folded in nodes:
            doc.warn(doc.key_line(cluster, "nodes"), f"node '{folded}' is listed twice")
        else:
            nodes.append(folded)
    if not nodes and not names:
        doc.error(doc.key_line(cluster, "nodes"), f"'nodes' in [cluster] is empty ({hint})")
    return nodes


def read_local_node(
    doc: Document, cluster: Table | None, nodes: list[str], node_name: str | None
) -> str | None:
    written = doc.string(cluster, "local_node") if cluster is not None else None
    if node_name is None and written is not None:
        node_name = written
    name, problems = local_node(node_name, doc.path.parent)
    doc.problems.extend(problems)
    if name is None or not nodes:
        return None
    if name not in nodes:
        line = doc.key_line(cluster, "nodes") if cluster is not None else 0
        doc.error(
            line,
            f"local node '{name}' is not in the node list (add it to 'nodes' or write its "
            f"name to {doc.path.parent / 'nodeinfo'})",
        )
        return None
    return name


def read_cluster_settings(doc: Document, cluster: Table | None) -> dict[str, Any]:
    """The optional [cluster] settings, as ClusterConfig keyword arguments."""
    settings: dict[str, Any] = {}
    if cluster is None:
        return settings
    name = doc.string(cluster, "name")
    if name is not None:
        settings["cluster"] = name
    failback = cluster.data.get("auto_failback")
    line = doc.key_line(cluster, "auto_failback")
    if isinstance(failback, bool):
        settings["auto_failback"] = AutoFailback.ON if failback else AutoFailback.OFF
    elif isinstance(failback, str) and failback.lower() == "legacy":
        settings["auto_failback"] = AutoFailback.LEGACY
    elif isinstance(failback, str):
        try:
            on = parse_bool(failback)
            settings["auto_failback"] = AutoFailback.ON if on else AutoFailback.OFF
        except InvalidValueError:
            doc.error(line, f"'auto_failback' in [cluster] is not on, off or legacy: '{failback}'")
    elif failback is not None:
        doc.wrong_type(cluster, "auto_failback", '"on", "off" or "legacy"')
    if settings.get("auto_failback", AutoFailback.LEGACY) is AutoFailback.LEGACY:
        doc.warn(
            line if failback is not None else cluster.line,
            "auto_failback is 'legacy' (the default when it is not set), which Heartbeat "
            'deprecates: write auto_failback = "on" or "off"',
        )
    method = doc.string(cluster, "hbgenmethod")
    if method is not None:
        if method in ("file", "time"):
            settings["hbgenmethod"] = method
        else:
            doc.error(
                doc.key_line(cluster, "hbgenmethod"),
                f"'hbgenmethod' in [cluster] must be \"file\" or \"time\", not '{method}'",
            )
    realtime = doc.boolean(cluster, "realtime")
    if realtime is not None:
        settings["realtime"] = realtime
    return settings


def read_ping(doc: Document, root: Table) -> tuple[list[str], list[PingGroup]]:
    table = doc.table(root, "ping", PING)
    if table is None:
        return [], []
    nodes = [a for a in _addresses(doc, table, "nodes") if a is not None]
    groups: list[PingGroup] = []
    for group in doc.array(table, "group", PING_GROUP):
        name = doc.string(group, "name")
        addresses = _addresses(doc, group, "addresses")
        if name is None or not name.strip():
            doc.error(group.line, "[[ping.group]] has no 'name'")
        elif not addresses:
            doc.error(group.line, f"ping group '{name}' has no 'addresses'")
        elif None not in addresses:
            groups.append(PingGroup(name.lower(), tuple(a for a in addresses if a)))
    return nodes, groups


def _addresses(doc: Document, table: Table, key: str) -> list[str | None]:
    out: list[str | None] = []
    for text in doc.strings(table, key) or []:
        try:
            out.append(parse_ipv4(text))
        except InvalidValueError as e:
            doc.error(doc.key_line(table, key), f"'{key}' in {table.name}: {e}")
            out.append(None)
    return out


def read_logging(doc: Document, table: Table | None) -> dict[str, Any]:
    """The [logging] settings, as ClusterConfig keyword arguments."""
    out: dict[str, Any] = {}
    if table is None:
        return out
    for key, field_name in (("file", "logfile"), ("debugfile", "debugfile")):
        value = doc.string(table, key)
        if value is not None:
            out[field_name] = value
    facility = doc.string(table, "facility")
    if facility is not None and facility != "none":
        if facility in SYSLOG_FACILITIES:
            out["logfacility"] = facility
        else:
            hint = did_you_mean(facility, (*SYSLOG_FACILITIES, "none"))
            doc.error(
                doc.key_line(table, "facility"),
                f"unknown syslog facility '{facility}'{hint}",
            )
    debug = doc.integer(table, "debug", 0, 255)
    if debug is not None:
        out["debug"] = debug
    return out


def read_metrics(doc: Document, root: Table) -> str | None:
    """The [metrics] address, spelled as ha.cf's ``metrics`` directive; None when off."""
    table = doc.table(root, "metrics", METRICS)
    if table is None:
        return None
    parsed = doc.parsed(table, "address", parse_listen_address)
    if parsed is None:
        if "address" not in table.data:
            doc.error(table.line, "[metrics] has no 'address' (address = \"127.0.0.1:9694\")")
        return None
    return format_listen_address(*parsed)


def read_control(doc: Document, root: Table) -> str | None:
    """The [control] group, as ha.cf's ``control_group``; None: the socket is root's."""
    table = doc.table(root, "control", CONTROL)
    if table is None:
        return None
    group: str | None = doc.parsed(table, "group", parse_group)
    if group is None and "group" not in table.data:
        doc.error(table.line, "[control] has no 'group' (group = \"hacoreops\")")
    return group
