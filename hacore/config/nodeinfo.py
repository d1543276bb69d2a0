"""How the local node is named, as Heartbeat names it: shared by ha.cf and cluster.toml."""

from __future__ import annotations

import os
from pathlib import Path

from hacore.config.errors import Problem
from hacore.config.files import UnreadableError, read_bytes
from hacore.config.model import Location


def local_node(node_name: str | None, directory: Path) -> tuple[str | None, list[Problem]]:
    """This node's name: ``node_name`` if given, else the first line of ``directory/nodeinfo``
    (Heartbeat's override), else the kernel's host name; always lower case."""
    if node_name is not None:
        return node_name.strip().lower(), []
    path = directory / "nodeinfo"
    try:
        data = read_bytes(path)
    except UnreadableError as e:
        if not path.exists() and not path.is_symlink():
            return os.uname().nodename.lower(), []
        return None, [e.problem]
    first = data.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    if not first:
        problem = Problem(
            Location(str(path), 1),
            "empty: write this node's name on the first line, or remove the file",
        )
        return None, [problem]
    return first.lower(), []
