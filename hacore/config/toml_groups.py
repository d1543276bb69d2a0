"""Reading cluster.toml's [[group]] tables: the resource groups and where they prefer to run."""

from __future__ import annotations

from hacore.config.haresources import parse_resource
from hacore.config.model import Group, Resource
from hacore.config.toml_document import Document, Table
from hacore.config.toml_schema import GROUP, RESOURCE


def read_groups(doc: Document, root: Table) -> list[Group]:
    groups: list[Group] = []
    tables = doc.array(root, "group", GROUP)
    for n, table in enumerate(tables):
        following = tables[n + 1].line if n + 1 < len(tables) else None
        group = _group(doc, table, following)
        if group is not None:
            groups.append(group)
    return groups


def _group(doc: Document, table: Table, next_line: int | None) -> Group | None:
    node = doc.string(table, "node")
    if node is None:
        if "node" not in table.data:
            doc.error(table.line, "[[group]] has no 'node' (its preferred node)")
        return None
    at = doc.at(table.line)
    resources: list[Resource] = []
    if "resources" in table.data and "resource" in table.data:
        doc.error(table.line, "give a group's resources either as 'resources' or as tables")
        return None
    for spec in doc.strings(table, "resources") or []:
        try:
            resources.append(parse_resource(spec, doc.at(doc.key_line(table, "resources"))))
        except ValueError as e:
            doc.error(doc.key_line(table, "resources"), str(e))
            return None
    for resource_table in doc.array(table, "resource", RESOURCE, table.line, next_line):
        resource = _resource(doc, resource_table)
        if resource is None:
            return None
        resources.append(resource)
    if not resources:
        doc.error(table.line, f"the group of '{node.lower()}' has no resources")
        return None
    return Group(node.strip().lower(), tuple(resources), at)


def _resource(doc: Document, table: Table) -> Resource | None:
    agent = doc.string(table, "agent")
    if not agent:
        if agent is not None or "agent" not in table.data:
            doc.error(table.line, "[[group.resource]] has no 'agent'")
        return None
    args = doc.strings(table, "args")
    params = table.data.get("params", {})
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        doc.error(
            doc.key_line(table, "params"),
            "'params' in [[group.resource]] must be a table of strings "
            '(write numbers in quotes: timeout = "20")',
        )
        return None
    interval = doc.time(table, "monitor_interval")
    if args is None and "args" in table.data:
        return None
    if interval is None and "monitor_interval" in table.data:
        return None
    return Resource(
        agent,
        tuple(args or ()),
        tuple(params.items()),
        interval,
        doc.at(table.line),
    )
