"""A node in a namespace lab, and an event loop that runs the bridge's actions inside it.

    hcbr-<id>-sw (br0) ── hcbr-<id>-node (eth0 198.51.100.1/24)

The lab is hacore.lab's: every interface is created inside a lab namespace, so a shell agent
that adds an address (IPaddr2) can only ever touch the node's eth0, never the host's. The
bridge forks its scripts from the thread that awaits them, so running the event loop in a
thread that has entered the node's namespace (``hacore.lab.nsloop.NamespaceLoop``) puts every
script there too.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from hacore.lab import Host, Lab
from hacore.lab.nsloop import NamespaceLoop

NODE_IP = "198.51.100.1"
# How long one agent action (a whole conformance run included) may take on the node's loop.
LOOP_TIMEOUT = 120.0


def lab_prefix() -> str:
    """``hcbr-<4 hex>``: this file's labs are recognisable in `ip netns list`."""
    return f"hcbr-{secrets.token_hex(2)}"


@contextmanager
def node_with_loop(lab: Lab) -> Iterator[tuple[Host, NamespaceLoop]]:
    """The lab's node (eth0 198.51.100.1/24) and an event loop inside its namespace, closed
    on the way out (the lab is left to its owner)."""
    host = lab.add_host("node", address=NODE_IP)
    with NamespaceLoop(host.netns, run_timeout=LOOP_TIMEOUT) as loop:
        yield host, loop
