"""cluster.toml: hacore's own configuration format, read and written.

It says what ha.cf, authkeys and haresources say, in one file::

    [cluster]
    name = "linux-ha"                  # optional
    nodes = ["pc1", "pc2"]
    # local_node = "pc1"               # optional: else nodeinfo beside this file, else uname -n
    auto_failback = "on"               # "on", "off" or "legacy" (true/false work too)
    # udpport = 694, hbgenmethod = "file", realtime = true

    [timers]                           # "10s", "500ms", "250us", or an integer of milliseconds;
    keepalive = "1s"                   # warntime, initdead and deadping derive from deadtime
    deadtime = "10s"                   # as in Heartbeat when they are left out

    [[link]]
    kind = "bcast"                     # bcast, ucast (peer =), mcast (group =, ttl =, loop =),
    interface = "eth0"                 # ucast6, mcast6; port = defaults to udpport

    [auth]
    active = 1
    [[auth.key]]
    index = 1
    method = "sha256"                  # or sha1, md5, crc (no secret)
    secret = "..."                     # or secret_hex = "..." or secret_file = "path"

    [ping]
    nodes = ["192.0.2.1"]
    # [[ping.group]] name = "routers", addresses = [...]

    [logging]
    file = "/var/log/hacore.log"       # also debugfile, facility ("daemon", "none"), debug

    [metrics]                          # optional: the Prometheus endpoint, off without it
    address = "127.0.0.1:9694"         # or "[::1]:9694", "0.0.0.0:9694"

    [control]                          # optional: who may use hactl besides root
    group = "hacoreops"                # the socket becomes 0660 root:hacoreops

    [[group]]
    node = "pc1"
    resources = ["IPaddr::192.168.10.55/24/eth0"]   # haresources spelling, or tables:
    # [[group.resource]] agent = "apache", args = [...], params = {...}, monitor_interval = "10s"

Like authkeys, a file holding secrets is refused when group or others may read it.

This module reads the file and assembles the configuration; the tables and keys accepted are in
toml_schema.py, the typed access and line finding in toml_document.py, each table's reader in
toml_cluster.py, toml_links.py, toml_auth.py and toml_groups.py, and ``to_toml`` in
toml_writer.py.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from hacore.config.authkeys import check_private
from hacore.config.errors import Problem, Severity
from hacore.config.files import MISSING_HINT, read_with_mode, unreadable
from hacore.config.haresources import check_groups
from hacore.config.model import DEFAULT_UDPPORT, ClusterConfig, Location, Timers
from hacore.config.suggest import did_you_mean
from hacore.config.timers import Setting, derive_timers
from hacore.config.toml_auth import read_auth
from hacore.config.toml_cluster import (
    read_cluster_settings,
    read_control,
    read_local_node,
    read_logging,
    read_metrics,
    read_nodes,
    read_ping,
)
from hacore.config.toml_document import Document, Table
from hacore.config.toml_groups import read_groups
from hacore.config.toml_links import read_links
from hacore.config.toml_schema import CLUSTER, LOGGING, TIMERS, TOP
from hacore.config.toml_writer import to_toml

__all__ = ["read_toml", "to_toml"]

_DECODE_ERROR_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def read_toml(path: Path, node_name: str | None) -> tuple[ClusterConfig | None, list[Problem]]:
    """Read a cluster.toml into a ClusterConfig, or None and every problem found."""
    file = str(path)
    try:
        data, mode = read_with_mode(path)
    except OSError as e:
        return None, [unreadable(path, e, MISSING_HINT)]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        return None, [Problem(Location(file, line), "this line is not UTF-8 text")]
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return None, [_syntax_problem(file, str(e), text)]
    doc = Document(path, text)
    config = _read_document(doc, document, node_name)
    if doc.inline_secrets:
        exposed = check_private(path, mode)
        if exposed is not None:
            doc.problems.insert(0, exposed)
    if any(p.severity is Severity.ERROR for p in doc.problems):
        return None, doc.problems
    return config, doc.problems


def _syntax_problem(file: str, message: str, text: str) -> Problem:
    m = _DECODE_ERROR_AT.search(message)
    if m is not None:
        line, column = int(m[1]), int(m[2])
        message = message[: m.start()]
        return Problem(Location(file, line), f"TOML syntax error: {message} (column {column})")
    if message.endswith("(at end of document)"):
        message = message.removesuffix("(at end of document)").rstrip()
        return Problem(Location(file, text.count("\n") + 1), f"TOML syntax error: {message}")
    return Problem(Location(file), f"TOML syntax error: {message}")


def _read_document(
    doc: Document, document: dict[str, Any], node_name: str | None
) -> ClusterConfig | None:
    """Every table of the document, read in an order that keeps the problems in the order of
    the file's usual layout."""
    root = Table(document, "", 0)
    for key in document:
        if key not in TOP:
            lines = doc.lines.tables(key)
            line = lines[0] if lines else doc.lines.key(0, key)
            doc.error(line, f"unknown table '{key}'{did_you_mean(key, TOP)}")
    cluster = doc.table(root, "cluster", CLUSTER)
    nodes = read_nodes(doc, cluster)
    udpport = DEFAULT_UDPPORT
    if cluster is not None:
        udpport = doc.integer(cluster, "udpport", 1, 65535) or DEFAULT_UDPPORT
    timers = _read_timers(doc, root)
    links = read_links(doc, root, udpport)
    auth = read_auth(doc, root)
    ping_nodes, ping_groups = read_ping(doc, root)
    logging = doc.table(root, "logging", LOGGING)
    metrics_address = read_metrics(doc, root)
    control_group = read_control(doc, root)
    groups = read_groups(doc, root)
    if nodes:
        doc.problems.extend(check_groups(groups, nodes, "cluster.toml"))

    local = read_local_node(doc, cluster, nodes, node_name)
    settings = read_cluster_settings(doc, cluster)
    log = read_logging(doc, logging)
    if local is None or auth is None:
        return None
    return ClusterConfig(
        nodes=tuple(nodes),
        local_node=local,
        links=tuple(links),
        auth=auth,
        timers=timers,
        udpport=udpport,
        ping_nodes=tuple(ping_nodes),
        ping_groups=tuple(ping_groups),
        groups=tuple(groups),
        metrics_address=metrics_address,
        control_group=control_group,
        source=doc.path,
        **settings,
        **log,
    )


def _read_timers(doc: Document, root: Table) -> Timers:
    """The [timers] table, with the timers not given derived as Heartbeat derives them."""
    timers_table = doc.table(root, "timers", TIMERS)
    given: dict[str, Setting] = {}
    if timers_table is not None:
        for key in TIMERS:
            ms = doc.time(timers_table, key)
            if ms is not None:
                given[key] = Setting(ms, doc.at(doc.key_line(timers_table, key)))
    timers_at = doc.at(timers_table.line if timers_table is not None else 0)
    timers, problems = derive_timers(given, timers_at)
    doc.problems.extend(problems)
    return timers
