"""A three-namespace lab for the agents' real tests, and the means to act inside it.

    client (eth0 198.51.100.10/24, 2001:db8::10/64) ── switch (br0) ── node (eth0 198.51.100.1/24)

Every interface is created inside a lab namespace (a veth's peer is made directly in its
namespace), so nothing ever appears in the host's namespace, and only documentation addresses
are used. The agent runs on an event loop in a thread that has entered the node's namespace
(``hacore.lab.nsloop.NamespaceLoop``); the thread checks that it really is there before the loop
starts, because the agent writes /proc/sys and the host may have an eth0 of its own.

This is not ``hacore.lab.Lab``, on purpose: that lab turns duplicate address detection off and
gives its hosts addresses of its own choosing, while these tests need DAD on the node, the
client at 2001:db8::10 and a client that learns neighbours from unsolicited advertisements.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hacore.lab.nsloop import in_namespace

SO_TIMESTAMPNS = 35  # <asm-generic/socket.h>
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD

NODE_IP = "198.51.100.1"
CLIENT_IP = "198.51.100.10"
CLIENT_IP6 = "2001:db8::10"


def can_build_labs() -> str | None:
    """Why namespace labs cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("ip") is None:
        return "needs iproute2"
    return None


def sh(*argv: str, check: bool = True) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Lab:
    tag: str
    switch: str = ""
    node: str = ""
    client: str = ""
    created: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.switch, self.node, self.client = (f"{self.tag}-{r}" for r in ("sw", "node", "cli"))

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def build(cls) -> Lab:
        lab = cls(f"hcip-{secrets.token_hex(2)}")
        try:
            lab._build()
        except BaseException:
            lab.destroy()
            raise
        return lab

    def _build(self) -> None:
        for ns in (self.switch, self.node, self.client):
            sh("ip", "netns", "add", ns)
            self.created.append(ns)
            self.ip(ns, "link", "set", "lo", "up")
        self.ip(self.switch, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        self.ip(self.switch, "link", "set", "br0", "up")
        for port, ns in (("n0", self.node), ("c0", self.client)):
            # The peer is born in its namespace: never an interface in the host's.
            self.ip(
                self.switch,
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                ns,
            )
            self.ip(self.switch, "link", "set", port, "master", "br0")
            self.ip(self.switch, "link", "set", port, "up")
        # The client learns neighbours from what it hears unasked: gratuitous ARP and
        # unsolicited neighbour advertisements. That is how the tests see announcements work.
        # Linux creates an entry from an unsolicited NA only on a router (RFC 9131), so the
        # client forwards IPv6, as the router in front of a cluster would.
        self.sysctl(self.client, "net.ipv4.conf.eth0.arp_accept", "1")
        self.sysctl(self.client, "net.ipv6.conf.eth0.forwarding", "1")
        self.sysctl(self.client, "net.ipv6.conf.eth0.accept_untracked_na", "1")
        self.ip(self.node, "addr", "add", f"{NODE_IP}/24", "dev", "eth0")
        self.ip(self.client, "addr", "add", f"{CLIENT_IP}/24", "dev", "eth0")
        self.ip(self.client, "addr", "add", f"{CLIENT_IP6}/64", "dev", "eth0", "nodad")
        for ns in (self.node, self.client):
            self.ip(ns, "link", "set", "eth0", "up")

    def destroy(self) -> None:
        for ns in reversed(self.created):
            sh("ip", "netns", "del", ns, check=False)
        self.created.clear()

    # -- looking and poking ---------------------------------------------------------------------

    @staticmethod
    def ip(ns: str, *args: str) -> str:
        return sh("ip", "-n", ns, *args)

    @staticmethod
    def sysctl(ns: str, key: str, value: str | None = None) -> str:
        if value is None:
            return sh("ip", "netns", "exec", ns, "sysctl", "-n", key).strip()
        return sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}")

    def addresses(self, ns: str, dev: str = "eth0") -> list[dict[str, Any]]:
        shown = json.loads(self.ip(ns, "-j", "addr", "show", "dev", dev))
        infos: list[dict[str, Any]] = shown[0]["addr_info"] if shown else []
        return infos

    def holds(self, ns: str, ip: str, dev: str = "eth0") -> bool:
        return any(a["local"] == ip for a in self.addresses(ns, dev))

    def mac(self, ns: str, dev: str = "eth0") -> str:
        address: str = json.loads(self.ip(ns, "-j", "link", "show", "dev", dev))[0]["address"]
        return address

    def neighbour(self, ns: str, ip: str) -> str | None:
        """The MAC address ``ns`` has cached for ``ip`` on eth0, if any."""
        for entry in json.loads(self.ip(ns, "-j", "neigh", "show", "to", ip, "dev", "eth0")):
            lladdr: str | None = entry.get("lladdr")
            if lladdr:
                return lladdr
        return None

    def ping(self, ns: str, ip: str) -> bool:
        flag = "-6" if ":" in ip else "-4"
        done = subprocess.run(
            ["ip", "netns", "exec", ns, "ping", flag, "-c1", "-W1", ip],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return done.returncode == 0


@dataclass(frozen=True)
class Frame:
    at: float  # kernel receive time, CLOCK_REALTIME
    data: bytes


class Capture:
    """A packet socket listening on eth0 of a namespace for one ethertype."""

    def __init__(self, ns: str, ethertype: int) -> None:
        def open_socket() -> socket.socket:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.bind(("eth0", ethertype))
            return sock

        self._sock = in_namespace(ns, open_socket)

    def frames(self, want: Callable[[bytes], bool], count: int, timeout: float) -> list[Frame]:
        """The first ``count`` frames ``want`` accepts; fewer if ``timeout`` runs out."""
        got: list[Frame] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._sock], [], [], left)[0]:
                break
            data, ancillary, _, _ = self._sock.recvmsg(65535, socket.CMSG_SPACE(16))
            at = time.time()
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("qq", payload[:16])
                    at = seconds + nanoseconds / 1e9
            if want(data):
                got.append(Frame(at, data))
        return got

    def close(self) -> None:
        self._sock.close()
