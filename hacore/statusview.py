"""The human rendering of a daemon's status (``hactl status`` and the demo)."""

from __future__ import annotations

from typing import Any


def format_status(status: dict[str, Any]) -> str:
    local = status["local"]
    lines = [
        f"cluster {status['cluster']}: local node {local['name']} is {local['state']} "
        f"(generation {local['generation']}, up {status['uptime_s']:.0f} s, pid {status['pid']})",
        f"links: {', '.join(status['links']) or 'none'}",
        "",
        f"{'NODE':<16} {'STATE':<8} {'LAST HEARD':<12} LINKS",
        f"{local['name']:<16} {local['state']:<8} {'(local)':<12}",
    ]
    for node in status["nodes"]:
        heard = node["last_heard_ms"]
        ago = "never" if heard is None else f"{heard / 1000:.1f} s ago"
        links = ", ".join(f"{li['name']} {li['state']}" for li in node["links"])
        lines.append(f"{node['name']:<16} {node['state']:<8} {ago:<12} {links}")
    groups = status.get("groups") or []
    if groups:
        standby = local.get("standby", "none")
        lines += ["", f"{'GROUP':<36} {'PREFERRED':<10} {'HELD BY':<14} HERE"]
        for g in groups:
            held = ", ".join(g["holders"]) or "-"
            here = g["local_state"] + (f" ({g['failcount']} failures)" if g["failcount"] else "")
            lines.append(f"{g['key']:<36} {g['preferred']:<10} {held:<14} {here}")
        if standby != "none":
            lines.append(f"this node is in standby for its {standby} groups")
    if local.get("maintenance"):
        lines += ["", "maintenance mode: this node starts, stops and monitors nothing"]
    if status["rejected"]:
        counts = ", ".join(f"{k} {v}" for k, v in status["rejected"].items())
        lines += ["", f"rejected datagrams: {counts}"]
    return "\n".join(lines)
