"""The one typed, frozen configuration model that both readers (ha.cf and TOML) produce.

Times are integers in milliseconds throughout; the readers convert. Node names are lower case.
Every value that came from a file carries a ``Location`` so that later checks (an agent that is
not installed, say) can still point at the line a person has to edit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_UDPPORT = 694
DEFAULT_KEEPALIVE_MS = 1000
DEFAULT_DEADTIME_MS = 30000
# A datagram whose timestamp is further than this from our clock is refused (hacore's addition to
# Heartbeat's replay rules: it bounds a replay after the receiver forgot the sender's sequence).
DEFAULT_FRESHNESS_MS = 300_000


@dataclass(frozen=True, order=True)
class Location:
    """Where a value came from: a file and a 1-based line (0 when the value is a default)."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


class LinkKind(enum.StrEnum):
    BCAST = "bcast"
    MCAST = "mcast"
    UCAST = "ucast"
    MCAST6 = "mcast6"
    UCAST6 = "ucast6"


@dataclass(frozen=True)
class Link:
    """One heartbeat medium. ``name`` is what status shows and what per-link state is keyed by."""

    kind: LinkKind
    interface: str
    port: int = DEFAULT_UDPPORT
    # ucast/ucast6: the peer's address; mcast/mcast6: the group.
    address: str | None = None
    ttl: int = 1
    loop: bool = False
    location: Location = field(default=Location(""), compare=False)

    @property
    def name(self) -> str:
        if self.kind is LinkKind.BCAST:
            return self.interface
        return f"{self.kind.value}:{self.interface}:{self.address}"


class AuthMethod(enum.StrEnum):
    SHA1 = "sha1"
    MD5 = "md5"
    CRC = "crc"
    SHA256 = "sha256"


@dataclass(frozen=True)
class AuthKey:
    index: int
    method: AuthMethod
    secret: bytes = field(repr=False)


@dataclass(frozen=True)
class Auth:
    """authkeys: the key used to sign (``active``) and every key accepted on receipt."""

    active: int
    keys: tuple[AuthKey, ...]

    def key(self, index: int) -> AuthKey | None:
        for k in self.keys:
            if k.index == index:
                return k
        return None

    @property
    def signing_key(self) -> AuthKey:
        k = self.key(self.active)
        if k is None:  # the readers refuse this; kept as an invariant
            raise LookupError(f"auth {self.active} has no key line")
        return k


class AutoFailback(enum.StrEnum):
    ON = "on"
    OFF = "off"
    LEGACY = "legacy"


@dataclass(frozen=True)
class Timers:
    keepalive_ms: int = DEFAULT_KEEPALIVE_MS
    deadtime_ms: int = DEFAULT_DEADTIME_MS
    warntime_ms: int = DEFAULT_DEADTIME_MS // 2
    initdead_ms: int = DEFAULT_DEADTIME_MS
    deadping_ms: int = DEFAULT_DEADTIME_MS
    freshness_ms: int = DEFAULT_FRESHNESS_MS


@dataclass(frozen=True)
class Resource:
    """One resource of a group: ``IPaddr::192.168.10.55/24/eth0`` is agent ``IPaddr`` with
    positional args ``("192.168.10.55/24/eth0",)``; TOML gives named ``params`` instead."""

    agent: str
    args: tuple[str, ...] = ()
    params: tuple[tuple[str, str], ...] = ()
    monitor_interval_ms: int | None = None
    location: Location = field(default=Location(""), compare=False)

    @property
    def spec(self) -> str:
        """The haresources spelling of this resource."""
        return "::".join((self.agent, *self.args))


@dataclass(frozen=True)
class Group:
    """A resource group: started left to right, stopped right to left. Its key (Heartbeat's
    group key) is the spelling of its first resource."""

    preferred_node: str
    resources: tuple[Resource, ...]
    location: Location = field(default=Location(""), compare=False)

    @property
    def key(self) -> str:
        return self.resources[0].spec


@dataclass(frozen=True)
class PingGroup:
    name: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Ignored:
    """A Heartbeat directive hacore accepts but does not act on (warned about at load)."""

    directive: str
    value: str
    location: Location


@dataclass(frozen=True)
class ClusterConfig:
    """Everything a node needs to run. Produced by ``hacore.config.load``."""

    nodes: tuple[str, ...]
    local_node: str
    links: tuple[Link, ...]
    auth: Auth
    timers: Timers = Timers()
    udpport: int = DEFAULT_UDPPORT
    auto_failback: AutoFailback = AutoFailback.LEGACY
    ping_nodes: tuple[str, ...] = ()
    ping_groups: tuple[PingGroup, ...] = ()
    groups: tuple[Group, ...] = ()
    logfile: str | None = None
    debugfile: str | None = None
    logfacility: str | None = None
    debug: int = 0
    realtime: bool = True
    hbgenmethod: str = "file"
    cluster: str = "linux-ha"
    # Where the Prometheus endpoint listens (``address:port``, IPv6 in brackets); None: off.
    metrics_address: str | None = None
    # Members of this local group may use the control socket (0660 root:group); None: root only.
    control_group: str | None = None
    ignored: tuple[Ignored, ...] = ()
    # Where this configuration was read from: a directory (/etc/ha.d) or a cluster.toml.
    source: Path = Path("/etc/ha.d")

    @property
    def peers(self) -> tuple[str, ...]:
        return tuple(n for n in self.nodes if n != self.local_node)
