"""The ha.cf directives: the table of every directive hacore accepts, and a parser for each.

A parser gets one token (most directives; Heartbeat applies every token of the line on its own)
or the whole rest of the line split into words (the media plugins that parse a line, and
``ping_group``), and records what it means in ``HaCf``. How a line is cut into a directive and
its tokens, and the checks on the file as a whole, are in hacf.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from hacore.config.errors import Problem, Severity
from hacore.config.model import (
    DEFAULT_UDPPORT,
    AutoFailback,
    Ignored,
    Link,
    LinkKind,
    Location,
    PingGroup,
    Timers,
)
from hacore.config.suggest import did_you_mean
from hacore.config.timers import TIMER_NAMES, Setting
from hacore.config.values import (
    SYSLOG_FACILITIES,
    InvalidValueError,
    check_interface,
    format_listen_address,
    parse_bool,
    parse_group,
    parse_heartbeat_time,
    parse_int,
    parse_ipv4,
    parse_ipv4_multicast,
    parse_ipv6,
    parse_ipv6_multicast,
    parse_listen_address,
    parse_port,
)

_T = TypeVar("_T")

# Heartbeat directives hacore accepts and does not act on, each with the reason a person reads.
IGNORED: dict[str, str] = {
    "respawn": "hacore starts no helper programs; the hacore-ping plugin does ipfail's job",
    "failfast": "hacore starts no helper programs to watch",
    "apiauth": "hacore has no Heartbeat client API",
    "pacemaker": "hacore manages the haresources groups itself and does not start Pacemaker",
    "crm": "hacore manages the haresources groups itself and does not start Pacemaker",
    "crm_daemon_dir": "Pacemaker only",
    "crmd_spawns_pengine": "Pacemaker only",
    "record_config_changes": "Pacemaker only",
    "record_pengine_inputs": "Pacemaker only",
    "enable_config_writes": "Pacemaker only",
    "hopfudge": "it only matters for serial rings",
    "use_logd": "hacore logs to logfile and logfacility itself, not through ha_logd",
    "conn_logd_time": "hacore does not use ha_logd",
    "rtprio": "hacore takes no realtime priority number",
    "watchdog": "hacore does not drive a watchdog device",
    "stonith": "hacore does not fence nodes",
    "stonith_host": "hacore does not fence nodes",
    "msgfmt": "hacore's message format is fixed",
    "compression": "hacore does not compress messages",
    "compression_threshold": "hacore does not compress messages",
    "traditional_compression": "hacore does not compress messages",
    "coredumps": "hacore leaves core dumps to the system",
    "coreroot": "hacore leaves core dumps to the system",
    "uuidfrom": "hacore identifies nodes by name",
    "env": "hacore starts no helper programs to pass it to",
    "max_rexmit_delay": "hacore's membership protocol does not use it",
    "memreserve": "hacore does not preallocate memory",
    "log_badpack": "hacore's membership protocol does not use it",
    "syslogmsgfmt": "hacore formats its own log lines",
    "quorum_server": "hacore has no quorum server",
    "use_apphbd": "hacore does not register with apphbd",
    "serial": "hacore has no serial media; use bcast, mcast or ucast",
    "baud": "hacore has no serial media",
    "hbaping": "hacore has no Fibre Channel ping",
    "ping6": "hacore has no IPv6 ping nodes; use 'ping' with IPv4 addresses",
}


# The heartbeat media: a line of one of these with an error leaves the file without a link
# for a reason already reported.
MEDIA = frozenset({"bcast", "udp", "mcast", "mcast6", "ucast", "ucast6"})


# --------------------------------------------------------------------------------------------
# What the directives record


@dataclass
class HaCf:
    """What a ha.cf says, with Heartbeat's defaults filled in, and every problem found."""

    path: Path
    # False when the file could not be read at all (its problem says why).
    readable: bool = False
    nodes: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    timers: Timers = field(default_factory=Timers)
    udpport: int = DEFAULT_UDPPORT
    auto_failback: AutoFailback = AutoFailback.LEGACY
    ping_nodes: list[str] = field(default_factory=list)
    ping_groups: list[PingGroup] = field(default_factory=list)
    logfile: str | None = None
    debugfile: str | None = None
    logfacility: str | None = None
    debug: int = 0
    realtime: bool = True
    hbgenmethod: str = "file"
    cluster: str = "linux-ha"
    metrics_address: str | None = None
    control_group: str | None = None
    ignored: list[Ignored] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# The parser of each directive


class Directives:
    """The state of one ha.cf being read, and the parser of each directive."""

    def __init__(self, out: HaCf) -> None:
        self.out = out
        self.times: dict[str, Setting] = {}
        # Where each single-valued directive was last set, to warn when one is set twice.
        self.seen: dict[str, Location] = {}
        # bcast and ucast read udpport once, when their first line is read, and keep it for
        # every later line of the same kind (a static in each Heartbeat plugin).
        self.latched_port: dict[LinkKind, int] = {}
        # Where auto_failback (or nice_failback) was written, even with a bad value, so that
        # the "legacy by default" warning is only given when it was really left unset.
        self.auto_failback_at: Location | None = None
        # A media line with an error: "no heartbeat media" would only repeat it.
        self.broken_media = False

    # -- reporting

    def error(self, at: Location, message: str) -> None:
        self.out.problems.append(Problem(at, message))

    def warn(self, at: Location, message: str) -> None:
        self.out.problems.append(Problem(at, message, Severity.WARNING))

    def once(self, directive: str, at: Location) -> None:
        previous = self.seen.get(directive)
        if previous is not None:
            self.warn(
                at,
                f"'{directive}' is set again (first on line {previous.line}); the last value wins",
            )
        self.seen[directive] = at

    def parsed(
        self, directive: str, parse: Callable[[str], _T], token: str, at: Location
    ) -> _T | None:
        """``token`` run through one of the value parsers, or None after reporting why not."""
        try:
            return parse(token)
        except InvalidValueError as e:
            self.error(at, f"{directive}: {e}")
            return None

    # -- token directives

    def node(self, _directive: str, token: str, at: Location) -> None:
        name = token.lower()
        if name in self.out.nodes:
            self.warn(at, f"node '{name}' is listed twice")
            return
        self.out.nodes.append(name)

    def time(self, directive: str, token: str, at: Location) -> None:
        parsed = self.parsed(directive, parse_heartbeat_time, token, at)
        if parsed is None:
            return
        if parsed.note is not None:
            self.warn(at, f"{directive}: {parsed.note}")
        self.once(directive, at)
        self.times[directive] = Setting(parsed.ms, at)

    def udpport(self, directive: str, token: str, at: Location) -> None:
        port = self.parsed(directive, parse_port, token, at)
        if port is None:
            return
        if self.latched_port:
            self.warn(
                at,
                "udpport comes after a bcast/ucast line; those links keep the port that was "
                "in force when their first line was read: move udpport above the media lines",
            )
        self.once(directive, at)
        self.out.udpport = port

    def bcast(self, directive: str, token: str, at: Location) -> None:
        interface = self.parsed(directive, check_interface, token, at)
        if interface is not None:
            self.add_link(Link(LinkKind.BCAST, interface, self.port(LinkKind.BCAST), location=at))

    def ping(self, directive: str, token: str, at: Location) -> None:
        address = self.parsed(directive, parse_ipv4, token, at)
        if address is not None:
            self.out.ping_nodes.append(address)

    def auto_failback(self, directive: str, token: str, at: Location) -> None:
        if token.lower() == "legacy":
            value = AutoFailback.LEGACY
        else:
            try:
                value = AutoFailback.ON if parse_bool(token) else AutoFailback.OFF
            except InvalidValueError:
                self.error(at, f"auto_failback: '{token}' is not on, off or legacy")
                self.auto_failback_at = at
                return
        self.once("auto_failback", at)
        self.auto_failback_at = at
        self.out.auto_failback = value

    def nice_failback(self, directive: str, token: str, at: Location) -> None:
        nice = self.parsed(directive, parse_bool, token, at)
        self.auto_failback_at = at
        if nice is None:
            return
        meaning = "auto_failback off" if nice else "auto_failback legacy"
        self.warn(
            at,
            f"'nice_failback' is obsolete: hacore reads 'nice_failback {token}' as "
            f"'{meaning}'; write 'auto_failback on' or 'auto_failback off' instead",
        )
        self.once("auto_failback", at)
        self.out.auto_failback = AutoFailback.OFF if nice else AutoFailback.LEGACY

    def text(self, directive: str, token: str, at: Location) -> None:
        self.once(directive, at)
        if directive == "logfile":
            self.out.logfile = token
        elif directive == "debugfile":
            self.out.debugfile = token
        else:
            self.out.cluster = token

    def logfacility(self, directive: str, token: str, at: Location) -> None:
        if token != "none" and token not in SYSLOG_FACILITIES:
            hint = did_you_mean(token, (*SYSLOG_FACILITIES, "none"))
            self.error(at, f"logfacility: unknown syslog facility '{token}'{hint}")
            return
        self.once(directive, at)
        # 'none' is what Heartbeat treats as "no syslog", the same as leaving it unset.
        self.out.logfacility = None if token == "none" else token

    def debug(self, directive: str, token: str, at: Location) -> None:
        level = self.parsed(directive, lambda t: parse_int(t, 0, 255), token, at)
        if level is not None:
            self.out.debug = level
            self.once(directive, at)

    def realtime(self, directive: str, token: str, at: Location) -> None:
        realtime = self.parsed(directive, parse_bool, token, at)
        if realtime is not None:
            self.out.realtime = realtime
            self.once(directive, at)

    def hbgenmethod(self, directive: str, token: str, at: Location) -> None:
        if token not in ("file", "time"):
            self.error(at, f"hbgenmethod: '{token}' is not 'file' or 'time'")
            return
        self.once(directive, at)
        self.out.hbgenmethod = token

    def autojoin(self, directive: str, token: str, at: Location) -> None:
        folded = token.lower()
        if folded == "none":
            self.out.ignored.append(Ignored(directive, token, at))
            self.warn(at, "'autojoin' is accepted but ignored by hacore (none is what it does)")
        elif folded in ("other", "any"):
            self.error(
                at,
                f"'autojoin {token}' is not supported: list every node with 'node' "
                "(Heartbeat also refuses autojoin with haresources)",
            )
        else:
            self.error(at, f"autojoin: '{token}' is not none, other or any")

    def metrics(self, directive: str, token: str, at: Location) -> None:
        listen = self.parsed(directive, parse_listen_address, token, at)
        if listen is None:
            return
        self.hacore_only(directive, at)
        self.once(directive, at)
        self.out.metrics_address = format_listen_address(*listen)

    def control_group(self, directive: str, token: str, at: Location) -> None:
        group = self.parsed(directive, parse_group, token, at)
        if group is None:
            return
        self.out.control_group = group
        self.hacore_only(directive, at)
        self.once(directive, at)

    def hacore_only(self, directive: str, at: Location) -> None:
        self.warn(
            at,
            f"'{directive}' is hacore's own directive: Heartbeat 3.0.6 refuses a ha.cf that has it",
        )

    # -- whole-line directives

    def mcast(self, directive: str, words: list[str], at: Location) -> None:
        usage = f"'{directive} <interface> <group> <port> <ttl> <loop>'"
        fields = ("interface", "multicast group", "port", "ttl", "loop flag")
        if len(words) < len(fields):
            self.error(at, f"{directive}: missing the {fields[len(words)]} (write {usage})")
            return
        interface, group, port_text, ttl_text, loop_text, *extra = words
        group_parser = parse_ipv4_multicast if directive == "mcast" else parse_ipv6_multicast
        try:
            check_interface(interface)
            address = group_parser(group)
            port = parse_port(port_text)
        except InvalidValueError as e:
            self.error(at, f"{directive}: {e}")
            return
        # Heartbeat's plugins refuse a ttl (hop limit) above 4, whatever the man page says.
        if not ttl_text.isdigit() or int(ttl_text) > 4:
            self.error(at, f"{directive}: ttl '{ttl_text}' is not a whole number from 0 to 4")
            return
        if loop_text not in ("0", "1"):
            self.error(at, f"{directive}: loop '{loop_text}' is not 0 or 1 (write 0)")
            return
        if extra:
            self.warn(at, f"{directive}: '{' '.join(extra)}' after the loop flag is ignored")
        kind = LinkKind(directive)
        link = Link(kind, interface, port, address, int(ttl_text), loop_text == "1", at)
        self.add_link(link)

    def ucast(self, directive: str, words: list[str], at: Location) -> None:
        if len(words) < 2:
            self.error(
                at,
                f"{directive}: missing the peer address "
                f"(write '{directive} <interface> <peer-ip>')",
            )
            return
        interface, peer, *extra = words
        peer_parser = parse_ipv4 if directive == "ucast" else parse_ipv6
        try:
            check_interface(interface)
            address = peer_parser(peer)
        except InvalidValueError as e:
            self.error(at, f"{directive}: {e}")
            return
        if extra:
            self.warn(
                at,
                f"{directive}: '{' '.join(extra)}' after the peer address is ignored "
                "(write one ucast line per peer)",
            )
        kind = LinkKind(directive)
        self.add_link(Link(kind, interface, self.port(kind), address, location=at))

    def ping_group(self, directive: str, words: list[str], at: Location) -> None:
        words = [w for w in words if w]
        if len(words) < 2:
            self.error(at, "ping_group: missing addresses (write 'ping_group <name> <ip> ...')")
            return
        name, *hosts = words
        try:
            addresses = tuple(parse_ipv4(h) for h in hosts)
        except InvalidValueError as e:
            self.error(at, f"ping_group: {e}")
            return
        # The group joins the cluster as a pseudo-node, and node names are lower case.
        self.out.ping_groups.append(PingGroup(name.lower(), addresses))

    # -- links

    def port(self, kind: LinkKind) -> int:
        return self.latched_port.setdefault(kind, self.out.udpport)

    def add_link(self, link: Link) -> None:
        for other in self.out.links:
            if other.name == link.name:
                self.warn(
                    link.location,
                    f"link '{link.name}' is already defined on line {other.location.line}; "
                    "this one is ignored",
                )
                return
        self.out.links.append(link)


# --------------------------------------------------------------------------------------------
# The directive table. A token directive's parser is applied to each token of the line, a
# whole-line directive's parser once to all of its words.
TOKEN_DIRECTIVES: dict[str, Callable[[Directives, str, str, Location], None]] = {
    "node": Directives.node,
    "bcast": Directives.bcast,
    "udp": Directives.bcast,
    "ping": Directives.ping,
    "udpport": Directives.udpport,
    "auto_failback": Directives.auto_failback,
    "nice_failback": Directives.nice_failback,
    "logfile": Directives.text,
    "debugfile": Directives.text,
    "cluster": Directives.text,
    "logfacility": Directives.logfacility,
    "debug": Directives.debug,
    "realtime": Directives.realtime,
    "hbgenmethod": Directives.hbgenmethod,
    "autojoin": Directives.autojoin,
    "metrics": Directives.metrics,
    "control_group": Directives.control_group,
    **dict.fromkeys(TIMER_NAMES, Directives.time),
}
LINE_DIRECTIVES: dict[str, Callable[[Directives, str, list[str], Location], None]] = {
    "mcast": Directives.mcast,
    "mcast6": Directives.mcast,
    "ucast": Directives.ucast,
    "ucast6": Directives.ucast,
    "ping_group": Directives.ping_group,
}
# Every directive hacore accepts, acted on or ignored.
KNOWN = frozenset({*TOKEN_DIRECTIVES, *LINE_DIRECTIVES, *IGNORED})
