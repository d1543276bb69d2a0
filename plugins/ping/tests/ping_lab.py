"""A lab for real ICMP: the cluster node that pings, and three ping nodes, on one bridge.

    node (198.51.100.1) ── switch (br0) ── pa (.2), pb (.3), pc (.4)

Built with hacore's own ``Lab`` (namespaces ``hcpg-<4 hex>-*``; only documentation addresses; no
interface ever in the host's namespace; torn down even when a test fails). A ping node becomes
unreachable when its switch port goes down, as when its cable is pulled. The plugin is started
in a thread that has entered the node's namespace (``hacore.lab.nsloop.in_namespace``), so the
thread it starts pings from there too.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from hacore.lab.netns import Host, Lab


@dataclass
class PingLab:
    lab: Lab
    node: Host
    pa: Host
    pb: Host
    pc: Host

    @classmethod
    def build(cls) -> PingLab:
        lab = Lab(prefix=f"hcpg-{secrets.token_hex(2)}")
        try:
            hosts = [lab.add_host(name) for name in ("node", "pa", "pb", "pc")]
        except BaseException:
            lab.close()
            raise
        return cls(lab, *hosts)

    def close(self) -> None:
        self.lab.close()
