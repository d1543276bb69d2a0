"""Reader for Heartbeat's ha.cf, following Heartbeat 3.0.6's parser rule for rule.

How a line is read (``parse_config()`` in heartbeat/config.c): leading white space is skipped,
``#`` starts a comment anywhere, the first word is the directive (case-sensitive). For most
directives the rest of the line is split on ``", \\t\\n\\r\\f"`` and *every* token is applied on
its own, so ``node a b`` is two nodes and ``deadtime 10 ms`` applies ``10`` and then fails on
``ms``. The media plugins that parse a whole line (``mcast``, ``ucast``, ...) and the
"whole-line" directives (``respawn``, ``stonith``, ...) see the rest of the line instead.

This module also holds the two Heartbeat rules cluster.toml shares: how the timers derive
from each other and are checked (``derive_timers``), and how the local node is named
(``local_node``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hacore.config.errors import Problem, Severity
from hacore.config.model import (
    DEFAULT_DEADTIME_MS,
    DEFAULT_FRESHNESS_MS,
    DEFAULT_KEEPALIVE_MS,
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
from hacore.config.values import (
    SYSLOG_FACILITIES,
    InvalidValueError,
    check_interface,
    describe_ms,
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

MISSING_HINT = "create it or point --config-dir at the directory that holds it"

_WHITESPACE = " \t\n\r\f"
_SPLIT_DELIMS = re.compile(r"[, \t\n\r\f]+")
_SPLIT_WHITESPACE = re.compile(r"[ \t\n\r\f]+")

# Heartbeat directives hacore accepts and does not act on, each with the reason a person reads.
_IGNORED: dict[str, str] = {
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

# Directives whose handler sees the whole rest of the line rather than one token at a time.
_WHOLE_LINE = frozenset(
    {"mcast", "mcast6", "ucast", "ucast6", "ping_group"}
    | {"stonith", "stonith_host", "apiauth", "respawn", "failfast"}
)

_MEDIA = frozenset({"bcast", "udp", "mcast", "mcast6", "ucast", "ucast6"})
_TIMERS = ("keepalive", "deadtime", "warntime", "initdead", "deadping", "freshness")


@dataclass(frozen=True)
class Setting:
    """A timer as written: milliseconds and where."""

    ms: int
    location: Location


# --------------------------------------------------------------------------------------------
# Reading files (shared by every reader in this package)


class UnreadableError(Exception):
    """A configuration file that could not be read at all; carries the problem to report."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def read_bytes(path: Path, missing_hint: str = MISSING_HINT) -> bytes:
    where = Location(str(path))
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UnreadableError(Problem(where, f"not found ({missing_hint})")) from None
    except IsADirectoryError:
        raise UnreadableError(Problem(where, "is a directory, not a file")) from None
    except OSError as e:
        raise UnreadableError(Problem(where, f"cannot be read ({e.strerror})")) from None


def decode_lines(data: bytes, file: str) -> tuple[list[str], list[Problem]]:
    """The file's lines (without their newline), and a problem for each line that is not UTF-8."""
    lines: list[str] = []
    problems: list[Problem] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            problems.append(Problem(Location(file, number), "this line is not UTF-8 text"))
            lines.append("")
    return lines, problems


# --------------------------------------------------------------------------------------------
# Timers: Heartbeat's derived defaults and checks (init_config in heartbeat/config.c)


def default_initdead(deadtime_ms: int) -> int:
    if deadtime_ms > 10_000:
        return deadtime_ms
    if deadtime_ms < 6_000:
        return 12_000
    return 2 * deadtime_ms


def derive_timers(given: Mapping[str, Setting], where: Location) -> tuple[Timers, list[Problem]]:
    """Fill in the timers not given the way Heartbeat does, then check them all.

    ``given`` maps ``keepalive``, ``deadtime``, ``warntime``, ``initdead``, ``deadping`` and
    ``freshness`` to what was written; ``where`` locates problems about timers left unset.
    """

    def value(name: str, default: int) -> int:
        s = given.get(name)
        return s.ms if s is not None else default

    def at(*names: str) -> Location:
        for name in names:
            if name in given:
                return given[name].location
        return where

    keepalive = value("keepalive", DEFAULT_KEEPALIVE_MS)
    deadtime = value("deadtime", DEFAULT_DEADTIME_MS)
    warntime = value("warntime", deadtime // 2)
    initdead = value("initdead", default_initdead(deadtime))
    deadping = value("deadping", deadtime)
    freshness = value("freshness", DEFAULT_FRESHNESS_MS)
    problems: list[Problem] = []

    def error(location: Location, message: str) -> None:
        problems.append(Problem(location, message))

    if keepalive <= 0:
        error(at("keepalive"), "keepalive must be more than 0")
    elif deadtime <= 2 * keepalive:
        error(
            at("deadtime", "keepalive"),
            f"deadtime ({describe_ms(deadtime)}) must be more than twice keepalive "
            f"({describe_ms(keepalive)}): raise deadtime or lower keepalive",
        )
    elif "deadping" in given and deadping <= 2 * keepalive:
        error(
            at("deadping"),
            f"deadping ({describe_ms(deadping)}) must be more than twice keepalive "
            f"({describe_ms(keepalive)})",
        )
    if "warntime" in given and warntime <= 0:
        error(at("warntime"), "warntime must be more than 0")
    elif "warntime" in given and warntime >= deadtime:
        problems.append(
            Problem(
                at("warntime"),
                f"warntime ({describe_ms(warntime)}) is not below deadtime "
                f"({describe_ms(deadtime)}), so no late heartbeat will ever be reported",
                Severity.WARNING,
            )
        )
    # The derived initdead is never below deadtime nor below 10 s, so both checks can only
    # fire on a value somebody wrote.
    if initdead < deadtime:
        error(
            at("initdead"),
            f"initdead ({describe_ms(initdead)}) must not be less than deadtime "
            f"({describe_ms(deadtime)})",
        )
    elif initdead < 10_000:
        problems.append(
            Problem(
                at("initdead"),
                f"initdead ({describe_ms(initdead)}) is under 10 s: a peer whose network "
                "comes up slowly at boot may be declared dead",
                Severity.WARNING,
            )
        )
    if freshness <= 0:
        error(at("freshness"), "freshness must be more than 0")
    timers = Timers(
        keepalive_ms=keepalive,
        deadtime_ms=deadtime,
        warntime_ms=warntime,
        initdead_ms=initdead,
        deadping_ms=deadping,
        freshness_ms=freshness,
    )
    return timers, problems


# --------------------------------------------------------------------------------------------
# The local node


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


# --------------------------------------------------------------------------------------------
# ha.cf


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


def read_hacf(path: Path) -> HaCf:
    """Read a ha.cf. Problems (including an unreadable file) are in the result."""
    result = HaCf(path)
    try:
        data = read_bytes(path)
    except UnreadableError as e:
        result.problems.append(e.problem)
        return result
    result.readable = True
    lines, problems = decode_lines(data, str(path))
    result.problems.extend(problems)
    _Parser(result).parse(lines)
    return result


class _Parser:
    def __init__(self, out: HaCf) -> None:
        self.out = out
        self.file = str(out.path)
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
        self.token_handlers: dict[str, Callable[[str, str, Location], None]] = {
            "node": self.node,
            "bcast": self.bcast,
            "udp": self.bcast,
            "ping": self.ping,
            "udpport": self.udpport,
            "auto_failback": self.auto_failback,
            "nice_failback": self.nice_failback,
            "logfile": self.text,
            "debugfile": self.text,
            "cluster": self.text,
            "logfacility": self.logfacility,
            "debug": self.debug,
            "realtime": self.realtime,
            "hbgenmethod": self.hbgenmethod,
            "autojoin": self.autojoin,
            "metrics": self.metrics,
            "control_group": self.control_group,
            **dict.fromkeys(_TIMERS, self.time),
        }
        self.line_handlers: dict[str, Callable[[str, list[str], Location], None]] = {
            "mcast": self.mcast,
            "mcast6": self.mcast,
            "ucast": self.ucast,
            "ucast6": self.ucast,
            "ping_group": self.ping_group,
        }
        self.known = {*self.token_handlers, *self.line_handlers, *_IGNORED}

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

    # -- the line loop

    def parse(self, lines: list[str]) -> None:
        for number, raw in enumerate(lines, start=1):
            text = raw.lstrip(_WHITESPACE).split("#", 1)[0]
            text = re.split(r"[\r\n]", text, maxsplit=1)[0]
            if not text.strip(_WHITESPACE):
                continue
            at = Location(self.file, number)
            directive = re.split(r"[ \t\n\r\f]", text, maxsplit=1)[0]
            rest = text[len(directive) :].lstrip(", \t\n\r\f").rstrip(_WHITESPACE)
            self.line(directive, rest, at)
        self.finish()

    def line(self, directive: str, rest: str, at: Location) -> None:
        if directive not in self.known:
            self.error(at, f"unknown directive '{directive}'{did_you_mean(directive, self.known)}")
            return
        if directive in _IGNORED:
            self.out.ignored.append(Ignored(directive, rest, at))
            reason = _IGNORED[directive]
            self.warn(at, f"'{directive}' is accepted but ignored by hacore ({reason})")
            return
        if not rest and directive != "ping_group":
            # Heartbeat applies no token at all, so the line does nothing; say so.
            self.warn(at, f"'{directive}' has no value, so this line does nothing")
            return
        problems_before = len(self.out.problems)
        if directive in self.line_handlers:
            self.line_handlers[directive](directive, _SPLIT_WHITESPACE.split(rest), at)
        else:
            if directive == "udp":
                self.warn(at, "'udp' is Heartbeat's old name for 'bcast'; write 'bcast'")
            for token in _SPLIT_DELIMS.split(rest):
                if token:
                    self.token_handlers[directive](directive, token, at)
        if directive in _MEDIA and any(
            p.severity is Severity.ERROR for p in self.out.problems[problems_before:]
        ):
            self.broken_media = True

    def finish(self) -> None:
        out, file_at = self.out, Location(self.file)
        out.timers, problems = derive_timers(self.times, file_at)
        out.problems.extend(problems)
        if "freshness" in self.times:
            self.warn(
                self.times["freshness"].location,
                "'freshness' is hacore's own directive: "
                "Heartbeat 3.0.6 refuses a ha.cf that has it",
            )
        if not out.links and not self.broken_media:
            self.error(
                file_at,
                "no heartbeat media: add a 'bcast <interface>' or "
                "'ucast <interface> <peer-ip>' line",
            )
        if not out.nodes:
            self.error(file_at, "no nodes: add a 'node <name>' line for every cluster member")
        written = self.auto_failback_at is not None
        if out.auto_failback is AutoFailback.LEGACY and (
            not written or "auto_failback" in self.seen
        ):
            self.warn(
                self.auto_failback_at or file_at,
                "auto_failback is 'legacy' (the default when it is not set), which Heartbeat "
                "deprecates: write 'auto_failback on' or 'auto_failback off'",
            )

    # -- token directives

    def node(self, _directive: str, token: str, at: Location) -> None:
        name = token.lower()
        if name in self.out.nodes:
            self.warn(at, f"node '{name}' is listed twice")
            return
        self.out.nodes.append(name)

    def time(self, directive: str, token: str, at: Location) -> None:
        try:
            parsed = parse_heartbeat_time(token)
        except InvalidValueError as e:
            self.error(at, f"{directive}: {e}")
            return
        if parsed.note is not None:
            self.warn(at, f"{directive}: {parsed.note}")
        self.once(directive, at)
        self.times[directive] = Setting(parsed.ms, at)

    def udpport(self, directive: str, token: str, at: Location) -> None:
        try:
            port = parse_port(token)
        except InvalidValueError as e:
            self.error(at, f"udpport: {e}")
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
        try:
            interface = check_interface(token)
        except InvalidValueError as e:
            self.error(at, f"{directive}: {e}")
            return
        self.add_link(Link(LinkKind.BCAST, interface, self.port(LinkKind.BCAST), location=at))

    def ping(self, directive: str, token: str, at: Location) -> None:
        try:
            self.out.ping_nodes.append(parse_ipv4(token))
        except InvalidValueError as e:
            self.error(at, f"ping: {e}")

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
        try:
            nice = parse_bool(token)
        except InvalidValueError as e:
            self.error(at, f"nice_failback: {e}")
            self.auto_failback_at = at
            return
        meaning = "auto_failback off" if nice else "auto_failback legacy"
        self.warn(
            at,
            f"'nice_failback' is obsolete: hacore reads 'nice_failback {token}' as "
            f"'{meaning}'; write 'auto_failback on' or 'auto_failback off' instead",
        )
        self.once("auto_failback", at)
        self.auto_failback_at = at
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
        try:
            self.out.debug = parse_int(token, 0, 255)
        except InvalidValueError as e:
            self.error(at, f"debug: {e}")
            return
        self.once(directive, at)

    def realtime(self, directive: str, token: str, at: Location) -> None:
        try:
            self.out.realtime = parse_bool(token)
        except InvalidValueError as e:
            self.error(at, f"realtime: {e}")
            return
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
        try:
            address, port = parse_listen_address(token)
        except InvalidValueError as e:
            self.error(at, f"metrics: {e}")
            return
        self.warn(
            at, "'metrics' is hacore's own directive: Heartbeat 3.0.6 refuses a ha.cf that has it"
        )
        self.once(directive, at)
        self.out.metrics_address = format_listen_address(address, port)

    def control_group(self, directive: str, token: str, at: Location) -> None:
        try:
            self.out.control_group = parse_group(token)
        except InvalidValueError as e:
            self.error(at, f"control_group: {e}")
            return
        self.warn(
            at,
            "'control_group' is hacore's own directive: "
            "Heartbeat 3.0.6 refuses a ha.cf that has it",
        )
        self.once(directive, at)

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
