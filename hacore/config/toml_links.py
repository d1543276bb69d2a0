"""Reading cluster.toml's [[link]] tables: the heartbeat media."""

from __future__ import annotations

from hacore.config.model import Link, LinkKind
from hacore.config.toml_document import Document, Table
from hacore.config.toml_schema import LINK, MCAST_KINDS
from hacore.config.values import (
    check_interface,
    parse_ipv4,
    parse_ipv4_multicast,
    parse_ipv6,
    parse_ipv6_multicast,
)


def read_links(doc: Document, root: Table, udpport: int) -> list[Link]:
    links: list[Link] = []
    tables = doc.array(root, "link", LINK)
    for table in tables:
        link = _link(doc, table, udpport)
        if link is None:
            continue
        duplicate = next((o for o in links if o.name == link.name), None)
        if duplicate is not None:
            doc.warn(
                table.line,
                f"link '{link.name}' is already defined on line "
                f"{duplicate.location.line}; this one is ignored",
            )
            continue
        links.append(link)
    if not tables and "link" not in root.data:
        doc.error(
            0,
            'no heartbeat media: add a [[link]] table (kind = "bcast", interface = "eth0")',
        )
    return links


def _link(doc: Document, table: Table, udpport: int) -> Link | None:
    kind_text = doc.string(table, "kind")
    if kind_text is None:
        if "kind" not in table.data:
            doc.error(table.line, "[[link]] has no 'kind' (bcast, ucast, mcast, ucast6, mcast6)")
        return None
    not_a_kind = f"'{kind_text}' is not a link kind (bcast, ucast, mcast, ucast6, mcast6)"
    kind = doc.member(table, "kind", kind_text, LinkKind, not_a_kind)
    if kind is None:
        return None
    address_key = {
        LinkKind.UCAST: "peer",
        LinkKind.UCAST6: "peer",
        LinkKind.MCAST: "group",
        LinkKind.MCAST6: "group",
    }.get(kind)
    for key in ("peer", "group", "ttl", "loop"):
        applies = key == address_key or (key in ("ttl", "loop") and kind in MCAST_KINDS)
        if key in table.data and not applies:
            doc.error(doc.key_line(table, key), f"'{key}' does not apply to a {kind} link")
            return None
    interface = doc.parsed(table, "interface", check_interface)
    if interface is None:
        if "interface" not in table.data:
            doc.error(table.line, f"the {kind} link has no 'interface'")
        return None
    address = None
    if address_key is not None:
        parse = {
            LinkKind.UCAST: parse_ipv4,
            LinkKind.UCAST6: parse_ipv6,
            LinkKind.MCAST: parse_ipv4_multicast,
            LinkKind.MCAST6: parse_ipv6_multicast,
        }[kind]
        address = doc.parsed(table, address_key, parse)
        if address is None:
            if address_key not in table.data:
                doc.error(table.line, f"the {kind} link has no '{address_key}'")
            return None
    port = doc.integer(table, "port", 1, 65535) if "port" in table.data else udpport
    ttl = doc.integer(table, "ttl", 0, 255) if "ttl" in table.data else 1
    loop = doc.boolean(table, "loop") if "loop" in table.data else False
    if port is None or ttl is None or loop is None:
        return None
    return Link(kind, interface, port, address, ttl, loop, doc.at(table.line))
