"""cluster.toml: hacore's own configuration format, read and written.

It says what ha.cf, authkeys and haresources say, in one file::

    [cluster]
    name = "linux-ha"                  # optional
    nodes = ["pc1", "pc2"]
    # local_node = "pc1"               # optional: else nodeinfo beside this file, else uname -n
    auto_failback = "on"               # "on", "off" or "legacy" (true/false work too)
    # udpport = 694, hbgenmethod = "file", realtime = true

    [timers]                           # "10s", "500ms", "250us", or an integer of milliseconds;
    keepalive = "1s"                   # warntime, initdead and deadping derive from deadtime
    deadtime = "10s"                   # as in Heartbeat when they are left out

    [[link]]
    kind = "bcast"                     # bcast, ucast (peer =), mcast (group =, ttl =, loop =),
    interface = "eth0"                 # ucast6, mcast6; port = defaults to udpport

    [auth]
    active = 1
    [[auth.key]]
    index = 1
    method = "sha256"                  # or sha1, md5, crc (no secret)
    secret = "..."                     # or secret_hex = "..." or secret_file = "path"

    [ping]
    nodes = ["192.0.2.1"]
    # [[ping.group]] name = "routers", addresses = [...]

    [logging]
    file = "/var/log/hacore.log"       # also debugfile, facility ("daemon", "none"), debug

    [metrics]                          # optional: the Prometheus endpoint, off without it
    address = "127.0.0.1:9694"         # or "[::1]:9694", "0.0.0.0:9694"

    [control]                          # optional: who may use hactl besides root
    group = "hacoreops"                # the socket becomes 0660 root:hacoreops

    [[group]]
    node = "pc1"
    resources = ["IPaddr::192.168.10.55/24/eth0"]   # haresources spelling, or tables:
    # [[group.resource]] agent = "apache", args = [...], params = {...}, monitor_interval = "10s"

Like authkeys, a file holding secrets is refused when group or others may read it.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from hacore.config.authkeys import KEYED_METHODS, MAX_INDEX, check_private, signing_warning
from hacore.config.errors import Problem, Severity
from hacore.config.hacf import (
    MISSING_HINT,
    Setting,
    UnreadableError,
    default_initdead,
    derive_timers,
    local_node,
    read_bytes,
)
from hacore.config.haresources import check_groups, parse_resource
from hacore.config.model import (
    DEFAULT_FRESHNESS_MS,
    DEFAULT_UDPPORT,
    Auth,
    AuthKey,
    AuthMethod,
    AutoFailback,
    ClusterConfig,
    Group,
    Link,
    LinkKind,
    Location,
    PingGroup,
    Resource,
)
from hacore.config.suggest import did_you_mean
from hacore.config.values import (
    MAX_MS,
    SYSLOG_FACILITIES,
    InvalidValueError,
    check_interface,
    format_duration,
    format_listen_address,
    parse_bool,
    parse_duration,
    parse_group,
    parse_ipv4,
    parse_ipv4_multicast,
    parse_ipv6,
    parse_ipv6_multicast,
    parse_listen_address,
)

_TOP = ("cluster", "timers", "link", "auth", "ping", "logging", "metrics", "control", "group")
_CLUSTER = ("name", "nodes", "local_node", "auto_failback", "udpport", "hbgenmethod", "realtime")
_TIMERS = ("keepalive", "deadtime", "warntime", "initdead", "deadping", "freshness")
_LINK = ("kind", "interface", "port", "peer", "group", "ttl", "loop")
_AUTH = ("active", "key")
_KEY = ("index", "method", "secret", "secret_hex", "secret_file")
_PING = ("nodes", "group")
_PING_GROUP = ("name", "addresses")
_LOGGING = ("file", "debugfile", "facility", "debug")
_METRICS = ("address",)
_CONTROL = ("group",)
_GROUP = ("node", "resources", "resource")
_RESOURCE = ("agent", "args", "params", "monitor_interval")
_SECRETS = ("secret", "secret_hex", "secret_file")
_MCAST_KINDS = (LinkKind.MCAST, LinkKind.MCAST6)

_HEADER = re.compile(r"\s*(\[\[?)\s*([A-Za-z0-9_\-.\"' ]+?)\s*\]\]?\s*(#.*)?")
_DECODE_ERROR_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


# --------------------------------------------------------------------------------------------
# Finding lines: tomllib gives values without positions, so problems are located by looking
# for the table header and the "key =" line in the text. Unusual spellings (dotted keys,
# inline tables) fall back to the enclosing table's line.


class _Lines:
    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.headers: list[tuple[int, str]] = []
        for number, line in enumerate(self.lines, start=1):
            m = _HEADER.fullmatch(line)
            if m is not None:
                name = ".".join(part.strip().strip("\"'") for part in m[2].split("."))
                self.headers.append((number, name))

    def tables(self, name: str, after: int = 0, before: int | None = None) -> list[int]:
        """Lines of the headers ``[name]``/``[[name]]`` between two lines."""
        return [
            n for n, h in self.headers if h == name and n > after and (before is None or n < before)
        ]

    def key(self, table_line: int, key: str) -> int:
        """The line that assigns ``key`` in the table whose header is on ``table_line``."""
        pattern = re.compile(rf"\s*([\"']?){re.escape(key)}\1\s*=")
        header_lines = {n for n, _ in self.headers}
        for number in range(table_line + 1, len(self.lines) + 1):
            if number in header_lines:
                break
            if pattern.match(self.lines[number - 1]):
                return number
        return table_line


@dataclass(frozen=True)
class _Table:
    """A TOML table being read: its values, what to call it in messages, its header line."""

    data: dict[str, Any]
    name: str
    line: int


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"


# --------------------------------------------------------------------------------------------
# Reading


def read_toml(path: Path, node_name: str | None) -> tuple[ClusterConfig | None, list[Problem]]:
    """Read a cluster.toml into a ClusterConfig, or None and every problem found."""
    file = str(path)
    try:
        with path.open("rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            data = f.read()
    except OSError:
        # read_bytes words the problem (not found, a directory, no permission) for us.
        try:
            read_bytes(path, MISSING_HINT)
        except UnreadableError as e:
            return None, [e.problem]
        raise
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        return None, [Problem(Location(file, line), "this line is not UTF-8 text")]
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return None, [_syntax_problem(file, str(e), text)]
    reader = _Reader(path, text)
    config = reader.read(document, node_name)
    if reader.inline_secrets:
        exposed = check_private(path, mode)
        if exposed is not None:
            reader.problems.insert(0, exposed)
    if any(p.severity is Severity.ERROR for p in reader.problems):
        return None, reader.problems
    return config, reader.problems


def _syntax_problem(file: str, message: str, text: str) -> Problem:
    m = _DECODE_ERROR_AT.search(message)
    if m is not None:
        line, column = int(m[1]), int(m[2])
        message = message[: m.start()]
        return Problem(Location(file, line), f"TOML syntax error: {message} (column {column})")
    if message.endswith("(at end of document)"):
        message = message.removesuffix("(at end of document)").rstrip()
        return Problem(Location(file, text.count("\n") + 1), f"TOML syntax error: {message}")
    return Problem(Location(file), f"TOML syntax error: {message}")


class _Reader:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.file = str(path)
        self.lines = _Lines(text)
        self.problems: list[Problem] = []
        self.inline_secrets = False

    # -- reporting

    def at(self, line: int) -> Location:
        return Location(self.file, line)

    def error(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.at(line), message))

    def warn(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.at(line), message, Severity.WARNING))

    def key_line(self, table: _Table, key: str) -> int:
        return self.lines.key(table.line, key)

    # -- typed access

    def only(self, table: _Table, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in table.data:
            if key not in allowed:
                self.error(
                    self.key_line(table, key),
                    f"unknown key '{key}' in {table.name}{did_you_mean(key, allowed)}",
                )

    def wrong_type(self, table: _Table, key: str, expected: str) -> None:
        found = _type_name(table.data[key])
        self.error(
            self.key_line(table, key), f"'{key}' in {table.name} must be {expected}, not {found}"
        )

    def string(self, table: _Table, key: str) -> str | None:
        value = table.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.wrong_type(table, key, "a string")
            return None
        return value

    def integer(self, table: _Table, key: str, low: int, high: int) -> int | None:
        value = table.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.wrong_type(table, key, f"an integer from {low} to {high}")
            return None
        if not low <= value <= high:
            self.error(
                self.key_line(table, key),
                f"'{key}' in {table.name} must be from {low} to {high}, not {value}",
            )
            return None
        return value

    def boolean(self, table: _Table, key: str) -> bool | None:
        value = table.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.wrong_type(table, key, "true or false")
            return None
        return value

    def strings(self, table: _Table, key: str) -> list[str] | None:
        value = table.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.wrong_type(table, key, "an array of strings")
            return None
        return list(value)

    def time(self, table: _Table, key: str) -> int | None:
        value = table.data.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except InvalidValueError as e:
                self.error(self.key_line(table, key), f"'{key}' in {table.name}: {e}")
                return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MS:
            self.wrong_type(table, key, 'a time like "10s" or "500ms", or milliseconds')
            return None
        return value

    def table(self, parent: _Table, key: str, allowed: Iterable[str]) -> _Table | None:
        value = parent.data.get(key)
        if value is None:
            return None
        full = f"{parent.name.strip('[]')}.{key}" if parent.name else key
        if not isinstance(value, dict):
            self.wrong_type(parent, key, "a table")
            return None
        lines = self.lines.tables(full)
        table = _Table(value, f"[{full}]", lines[0] if lines else self.key_line(parent, key))
        self.only(table, allowed)
        return table

    def array(
        self,
        parent: _Table,
        key: str,
        allowed: Iterable[str],
        after: int = 0,
        before: int | None = None,
    ) -> list[_Table]:
        """The tables of an array of tables ``[[parent.key]]``, each with its header line."""
        value = parent.data.get(key)
        if value is None:
            return []
        full = f"{parent.name.strip('[]')}.{key}" if parent.name else key
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.wrong_type(parent, key, f"an array of tables ([[{full}]])")
            return []
        lines = self.lines.tables(full, after, before)
        fallback = self.key_line(parent, key)
        tables = []
        for n, item in enumerate(value):
            line = lines[n] if len(lines) == len(value) else fallback
            table = _Table(item, f"[[{full}]]", line)
            self.only(table, allowed)
            tables.append(table)
        return tables

    def parsed(self, table: _Table, key: str, parse: Callable[[str], Any]) -> Any:
        """A string value run through one of the value parsers, or None after an error."""
        text = self.string(table, key)
        if text is None:
            return None
        try:
            return parse(text)
        except InvalidValueError as e:
            self.error(self.key_line(table, key), f"'{key}' in {table.name}: {e}")
            return None

    # -- the document

    def read(self, document: dict[str, Any], node_name: str | None) -> ClusterConfig | None:
        root = _Table(document, "", 0)
        for key in document:
            if key not in _TOP:
                lines = self.lines.tables(key)
                line = lines[0] if lines else self.lines.key(0, key)
                self.error(line, f"unknown table '{key}'{did_you_mean(key, _TOP)}")
        cluster = self.table(root, "cluster", _CLUSTER)
        nodes = self.nodes(cluster)
        udpport = DEFAULT_UDPPORT
        if cluster is not None:
            udpport = self.integer(cluster, "udpport", 1, 65535) or DEFAULT_UDPPORT
        timers_table = self.table(root, "timers", _TIMERS)
        given: dict[str, Setting] = {}
        if timers_table is not None:
            for key in _TIMERS:
                ms = self.time(timers_table, key)
                if ms is not None:
                    given[key] = Setting(ms, self.at(self.key_line(timers_table, key)))
        timers_at = self.at(timers_table.line if timers_table is not None else 0)
        timers, problems = derive_timers(given, timers_at)
        self.problems.extend(problems)
        links = self.links(root, udpport)
        auth = self.auth(root)
        ping_nodes, ping_groups = self.ping(root)
        logging = self.table(root, "logging", _LOGGING)
        metrics_address = self.metrics(root)
        control_group = self.control(root)
        groups = self.groups(root)
        if nodes:
            self.problems.extend(check_groups(groups, nodes, "cluster.toml"))

        local = self.local_node(cluster, nodes, node_name)
        settings = self.cluster_settings(cluster)
        log = self.logging(logging)
        if local is None or auth is None:
            return None
        return ClusterConfig(
            nodes=tuple(nodes),
            local_node=local,
            links=tuple(links),
            auth=auth,
            timers=timers,
            udpport=udpport,
            ping_nodes=tuple(ping_nodes),
            ping_groups=tuple(ping_groups),
            groups=tuple(groups),
            metrics_address=metrics_address,
            control_group=control_group,
            source=self.path,
            **settings,
            **log,
        )

    def nodes(self, cluster: _Table | None) -> list[str]:
        hint = 'list every cluster member: nodes = ["pc1", "pc2"]'
        if cluster is None:
            self.error(0, f"no [cluster] table ({hint})")
            return []
        names = self.strings(cluster, "nodes")
        if names is None:
            if "nodes" not in cluster.data:
                self.error(cluster.line, f"[cluster] has no 'nodes' ({hint})")
            return []
        nodes: list[str] = []
        for name in names:
            folded = name.strip().lower()
            if not folded:
                self.error(
                    self.key_line(cluster, "nodes"), "'nodes' in [cluster] has an empty name"
                )
            elif folded in nodes:
                self.warn(self.key_line(cluster, "nodes"), f"node '{folded}' is listed twice")
            else:
                nodes.append(folded)
        if not nodes and not names:
            self.error(self.key_line(cluster, "nodes"), f"'nodes' in [cluster] is empty ({hint})")
        return nodes

    def local_node(
        self, cluster: _Table | None, nodes: list[str], node_name: str | None
    ) -> str | None:
        written = self.string(cluster, "local_node") if cluster is not None else None
        if node_name is None and written is not None:
            node_name = written
        name, problems = local_node(node_name, self.path.parent)
        self.problems.extend(problems)
        if name is None or not nodes:
            return None
        if name not in nodes:
            line = self.key_line(cluster, "nodes") if cluster is not None else 0
            self.error(
                line,
                f"local node '{name}' is not in the node list (add it to 'nodes' or write its "
                f"name to {self.path.parent / 'nodeinfo'})",
            )
            return None
        return name

    def cluster_settings(self, cluster: _Table | None) -> dict[str, Any]:
        """The optional [cluster] settings, as ClusterConfig keyword arguments."""
        settings: dict[str, Any] = {}
        if cluster is None:
            return settings
        name = self.string(cluster, "name")
        if name is not None:
            settings["cluster"] = name
        failback = cluster.data.get("auto_failback")
        line = self.key_line(cluster, "auto_failback")
        if isinstance(failback, bool):
            settings["auto_failback"] = AutoFailback.ON if failback else AutoFailback.OFF
        elif isinstance(failback, str) and failback.lower() == "legacy":
            settings["auto_failback"] = AutoFailback.LEGACY
        elif isinstance(failback, str):
            try:
                on = parse_bool(failback)
                settings["auto_failback"] = AutoFailback.ON if on else AutoFailback.OFF
            except InvalidValueError:
                self.error(
                    line, f"'auto_failback' in [cluster] is not on, off or legacy: '{failback}'"
                )
        elif failback is not None:
            self.wrong_type(cluster, "auto_failback", '"on", "off" or "legacy"')
        if settings.get("auto_failback", AutoFailback.LEGACY) is AutoFailback.LEGACY:
            self.warn(
                line if failback is not None else cluster.line,
                "auto_failback is 'legacy' (the default when it is not set), which Heartbeat "
                'deprecates: write auto_failback = "on" or "off"',
            )
        method = self.string(cluster, "hbgenmethod")
        if method is not None:
            if method in ("file", "time"):
                settings["hbgenmethod"] = method
            else:
                self.error(
                    self.key_line(cluster, "hbgenmethod"),
                    f"'hbgenmethod' in [cluster] must be \"file\" or \"time\", not '{method}'",
                )
        realtime = self.boolean(cluster, "realtime")
        if realtime is not None:
            settings["realtime"] = realtime
        return settings

    def links(self, root: _Table, udpport: int) -> list[Link]:
        links: list[Link] = []
        tables = self.array(root, "link", _LINK)
        for table in tables:
            link = self.link(table, udpport)
            if link is None:
                continue
            duplicate = next((o for o in links if o.name == link.name), None)
            if duplicate is not None:
                self.warn(
                    table.line,
                    f"link '{link.name}' is already defined on line "
                    f"{duplicate.location.line}; this one is ignored",
                )
                continue
            links.append(link)
        if not tables and "link" not in root.data:
            self.error(
                0,
                'no heartbeat media: add a [[link]] table (kind = "bcast", interface = "eth0")',
            )
        return links

    def link(self, table: _Table, udpport: int) -> Link | None:
        kind_text = self.string(table, "kind")
        if kind_text is None:
            if "kind" not in table.data:
                self.error(
                    table.line, "[[link]] has no 'kind' (bcast, ucast, mcast, ucast6, mcast6)"
                )
            return None
        try:
            kind = LinkKind(kind_text)
        except ValueError:
            kinds = [k.value for k in LinkKind]
            self.error(
                self.key_line(table, "kind"),
                f"'{kind_text}' is not a link kind (bcast, ucast, mcast, ucast6, mcast6)"
                f"{did_you_mean(kind_text, kinds)}",
            )
            return None
        address_key = {
            LinkKind.UCAST: "peer",
            LinkKind.UCAST6: "peer",
            LinkKind.MCAST: "group",
            LinkKind.MCAST6: "group",
        }.get(kind)
        for key in ("peer", "group", "ttl", "loop"):
            applies = key == address_key or (key in ("ttl", "loop") and kind in _MCAST_KINDS)
            if key in table.data and not applies:
                self.error(self.key_line(table, key), f"'{key}' does not apply to a {kind} link")
                return None
        interface = self.parsed(table, "interface", check_interface)
        if interface is None:
            if "interface" not in table.data:
                self.error(table.line, f"the {kind} link has no 'interface'")
            return None
        address = None
        if address_key is not None:
            parse = {
                LinkKind.UCAST: parse_ipv4,
                LinkKind.UCAST6: parse_ipv6,
                LinkKind.MCAST: parse_ipv4_multicast,
                LinkKind.MCAST6: parse_ipv6_multicast,
            }[kind]
            address = self.parsed(table, address_key, parse)
            if address is None:
                if address_key not in table.data:
                    self.error(table.line, f"the {kind} link has no '{address_key}'")
                return None
        port = self.integer(table, "port", 1, 65535) if "port" in table.data else udpport
        ttl = self.integer(table, "ttl", 0, 255) if "ttl" in table.data else 1
        loop = self.boolean(table, "loop") if "loop" in table.data else False
        if port is None or ttl is None or loop is None:
            return None
        return Link(kind, interface, port, address, ttl, loop, self.at(table.line))

    def auth(self, root: _Table) -> Auth | None:
        table = self.table(root, "auth", _AUTH)
        if table is None:
            if "auth" not in root.data:
                self.error(
                    0,
                    "no [auth] table: add [auth] with active = 1, and an [[auth.key]] with "
                    'index = 1, method = "sha256" and a secret',
                )
            return None
        active = self.integer(table, "active", 0, MAX_INDEX)
        keys: dict[int, tuple[AuthKey, int]] = {}
        broken = False
        for key_table in self.array(table, "key", _KEY):
            key = self.auth_key(key_table)
            if key is None:
                broken = True
            elif key.index in keys:
                self.error(
                    key_table.line,
                    f"key {key.index} is already defined on line {keys[key.index][1]}",
                )
            else:
                keys[key.index] = (key, key_table.line)
        if active is None:
            if "active" not in table.data:
                self.error(table.line, "[auth] has no 'active' (the index of the signing key)")
            return None
        if active not in keys:
            if not broken:
                self.error(
                    self.key_line(table, "active"),
                    f"'active' in [auth] names key {active}, "
                    f"but no [[auth.key]] has index = {active}",
                )
            return None
        signing, line = keys[active]
        crc = signing_warning(signing, self.at(line))
        if crc is not None:
            self.problems.append(crc)
        return Auth(active, tuple(k for k, _ in keys.values()))

    def auth_key(self, table: _Table) -> AuthKey | None:
        index = self.integer(table, "index", 0, MAX_INDEX)
        method_text = self.string(table, "method")
        if index is None or method_text is None:
            for missing in ("index", "method"):
                if missing not in table.data:
                    self.error(table.line, f"[[auth.key]] has no '{missing}'")
            return None
        try:
            method = AuthMethod(method_text)
        except ValueError:
            known = [m.value for m in AuthMethod]
            self.error(
                self.key_line(table, "method"),
                f"unknown method '{method_text}' (write sha256, sha1, md5 or crc)"
                f"{did_you_mean(method_text, known)}",
            )
            return None
        given = [k for k in _SECRETS if k in table.data]
        if method is AuthMethod.CRC:
            if given:
                self.error(self.key_line(table, given[0]), "method 'crc' takes no secret")
                return None
            return AuthKey(index, method, b"")
        if len(given) != 1:
            which = "no" if not given else "more than one"
            self.error(
                table.line,
                f"key {index} has {which} secret (give one of secret, secret_hex, secret_file)",
            )
            return None
        secret = self.secret(table, given[0])
        if secret is None:
            return None
        if not secret:
            self.error(self.key_line(table, given[0]), f"the secret of key {index} is empty")
            return None
        assert method in KEYED_METHODS
        return AuthKey(index, method, secret)

    def secret(self, table: _Table, key: str) -> bytes | None:
        text = self.string(table, key)
        if text is None:
            return None
        line = self.key_line(table, key)
        if key == "secret":
            self.inline_secrets = True
            return text.encode("utf-8")
        if key == "secret_hex":
            self.inline_secrets = True
            try:
                return bytes.fromhex(text)
            except ValueError:
                self.error(line, "'secret_hex' in [[auth.key]] is not hexadecimal")
                return None
        path = Path(text)
        if not path.is_absolute():
            path = self.path.parent / path
        try:
            with path.open("rb") as f:
                mode = os.fstat(f.fileno()).st_mode
                data = f.read()
        except OSError as e:
            self.error(line, f"secret_file '{path}' cannot be read ({e.strerror})")
            return None
        exposed = check_private(path, mode)
        if exposed is not None:
            self.problems.append(exposed)
            return None
        # The whole file is the secret, less the line ending an editor or echo adds.
        return data.rstrip(b"\r\n")

    def ping(self, root: _Table) -> tuple[list[str], list[PingGroup]]:
        table = self.table(root, "ping", _PING)
        if table is None:
            return [], []
        nodes = [a for a in self.addresses(table, "nodes") if a is not None]
        groups: list[PingGroup] = []
        for group in self.array(table, "group", _PING_GROUP):
            name = self.string(group, "name")
            addresses = self.addresses(group, "addresses")
            if name is None or not name.strip():
                self.error(group.line, "[[ping.group]] has no 'name'")
            elif not addresses:
                self.error(group.line, f"ping group '{name}' has no 'addresses'")
            elif None not in addresses:
                groups.append(PingGroup(name.lower(), tuple(a for a in addresses if a)))
        return nodes, groups

    def addresses(self, table: _Table, key: str) -> list[str | None]:
        out: list[str | None] = []
        for text in self.strings(table, key) or []:
            try:
                out.append(parse_ipv4(text))
            except InvalidValueError as e:
                self.error(self.key_line(table, key), f"'{key}' in {table.name}: {e}")
                out.append(None)
        return out

    def logging(self, table: _Table | None) -> dict[str, Any]:
        """The [logging] settings, as ClusterConfig keyword arguments."""
        out: dict[str, Any] = {}
        if table is None:
            return out
        for key, field_name in (("file", "logfile"), ("debugfile", "debugfile")):
            value = self.string(table, key)
            if value is not None:
                out[field_name] = value
        facility = self.string(table, "facility")
        if facility is not None and facility != "none":
            if facility in SYSLOG_FACILITIES:
                out["logfacility"] = facility
            else:
                hint = did_you_mean(facility, (*SYSLOG_FACILITIES, "none"))
                self.error(
                    self.key_line(table, "facility"),
                    f"unknown syslog facility '{facility}'{hint}",
                )
        debug = self.integer(table, "debug", 0, 255)
        if debug is not None:
            out["debug"] = debug
        return out

    def metrics(self, root: _Table) -> str | None:
        """The [metrics] address, spelled as ha.cf's ``metrics`` directive; None when off."""
        table = self.table(root, "metrics", _METRICS)
        if table is None:
            return None
        parsed = self.parsed(table, "address", parse_listen_address)
        if parsed is None:
            if "address" not in table.data:
                self.error(table.line, "[metrics] has no 'address' (address = \"127.0.0.1:9694\")")
            return None
        return format_listen_address(*parsed)

    def control(self, root: _Table) -> str | None:
        """The [control] group, as ha.cf's ``control_group``; None: the socket is root's."""
        table = self.table(root, "control", _CONTROL)
        if table is None:
            return None
        group: str | None = self.parsed(table, "group", parse_group)
        if group is None and "group" not in table.data:
            self.error(table.line, "[control] has no 'group' (group = \"hacoreops\")")
        return group

    def groups(self, root: _Table) -> list[Group]:
        groups: list[Group] = []
        tables = self.array(root, "group", _GROUP)
        for n, table in enumerate(tables):
            following = tables[n + 1].line if n + 1 < len(tables) else None
            group = self.group(table, following)
            if group is not None:
                groups.append(group)
        return groups

    def group(self, table: _Table, next_line: int | None) -> Group | None:
        node = self.string(table, "node")
        if node is None:
            if "node" not in table.data:
                self.error(table.line, "[[group]] has no 'node' (its preferred node)")
            return None
        at = self.at(table.line)
        resources: list[Resource] = []
        if "resources" in table.data and "resource" in table.data:
            self.error(table.line, "give a group's resources either as 'resources' or as tables")
            return None
        for spec in self.strings(table, "resources") or []:
            try:
                resources.append(parse_resource(spec, self.at(self.key_line(table, "resources"))))
            except ValueError as e:
                self.error(self.key_line(table, "resources"), str(e))
                return None
        for resource_table in self.array(table, "resource", _RESOURCE, table.line, next_line):
            resource = self.resource(resource_table)
            if resource is None:
                return None
            resources.append(resource)
        if not resources:
            self.error(table.line, f"the group of '{node.lower()}' has no resources")
            return None
        return Group(node.strip().lower(), tuple(resources), at)

    def resource(self, table: _Table) -> Resource | None:
        agent = self.string(table, "agent")
        if not agent:
            if agent is not None or "agent" not in table.data:
                self.error(table.line, "[[group.resource]] has no 'agent'")
            return None
        args = self.strings(table, "args")
        params = table.data.get("params", {})
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            self.error(
                self.key_line(table, "params"),
                "'params' in [[group.resource]] must be a table of strings "
                '(write numbers in quotes: timeout = "20")',
            )
            return None
        interval = self.time(table, "monitor_interval")
        if args is None and "args" in table.data:
            return None
        if interval is None and "monitor_interval" in table.data:
            return None
        return Resource(
            agent,
            tuple(args or ()),
            tuple(params.items()),
            interval,
            self.at(table.line),
        )


# --------------------------------------------------------------------------------------------
# Writing


def to_toml(config: ClusterConfig) -> str:
    """A cluster.toml that reads back to ``config`` (all but its source and ignored lines).

    The local node is left out so that one file serves every node, like ha.cf; the secrets are
    written inline, so the file must be written with mode 600. Heartbeat directives hacore
    ignores are kept as comments, so that nothing disappears without a trace.
    """
    out = [
        "# hacore cluster configuration.",
        "# It holds the cluster's secrets: keep it mode 600.",
        "# The local node is not named here, so the same file serves every node: hacore takes",
        "# it from nodeinfo beside this file, or else from the host name (uname -n).",
    ]
    if config.ignored:
        out.append("# Heartbeat directives not carried over (hacore ignores them):")
        out.extend(f"#   {i.location}: {i.directive} {i.value}".rstrip() for i in config.ignored)
    out.append("")
    out += _section("[cluster]", _cluster_doc(config))
    out += _section("[timers]", _timers_doc(config))
    for link in config.links:
        out += _section("[[link]]", _link_doc(link, config.udpport))
    out += _section("[auth]", {"active": config.auth.active})
    for key in config.auth.keys:
        out += _section("[[auth.key]]", _key_doc(key))
    if config.ping_nodes:
        out += _section("[ping]", {"nodes": list(config.ping_nodes)})
    for ping_group in config.ping_groups:
        out += _section(
            "[[ping.group]]", {"name": ping_group.name, "addresses": list(ping_group.addresses)}
        )
    logging = {
        key: value
        for key, value in (
            ("file", config.logfile),
            ("debugfile", config.debugfile),
            ("facility", config.logfacility),
            ("debug", config.debug or None),
        )
        if value is not None
    }
    if logging:
        out += _section("[logging]", logging)
    if config.metrics_address is not None:
        out += _section("[metrics]", {"address": config.metrics_address})
    if config.control_group is not None:
        out += _section("[control]", {"group": config.control_group})
    for group in config.groups:
        out += _group_sections(group)
    return "\n".join(out)


def _section(header: str, items: dict[str, Any]) -> list[str]:
    """A table as lines: its header, one ``key = value`` line per item, a blank line."""
    return [header, *(f"{_key(k)} = {_value(v)}" for k, v in items.items()), ""]


def _key(key: str) -> str:
    # tomli_w quotes a key when it must; take its spelling from a one-key document.
    return tomli_w.dumps({key: 0}).rsplit(" = ", 1)[0]


def _value(value: Any) -> str:
    """A value on one line; arrays and tables inline (tomli_w would spread arrays out)."""
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    return tomli_w.dumps({"v": value}).removeprefix("v = ").removesuffix("\n")


def _cluster_doc(config: ClusterConfig) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": config.cluster,
        "nodes": list(config.nodes),
        "auto_failback": config.auto_failback.value,
    }
    if config.udpport != DEFAULT_UDPPORT:
        doc["udpport"] = config.udpport
    if config.hbgenmethod != "file":
        doc["hbgenmethod"] = config.hbgenmethod
    if not config.realtime:
        doc["realtime"] = False
    return doc


def _timers_doc(config: ClusterConfig) -> dict[str, Any]:
    t = config.timers
    doc = {"keepalive": format_duration(t.keepalive_ms), "deadtime": format_duration(t.deadtime_ms)}
    # Write the derived timers only where they differ from what they derive to, so that
    # changing deadtime later still moves them, as in ha.cf.
    derived = {
        "warntime": (t.warntime_ms, t.deadtime_ms // 2),
        "initdead": (t.initdead_ms, default_initdead(t.deadtime_ms)),
        "deadping": (t.deadping_ms, t.deadtime_ms),
        "freshness": (t.freshness_ms, DEFAULT_FRESHNESS_MS),
    }
    for key, (value, default) in derived.items():
        if value != default:
            doc[key] = format_duration(value)
    return doc


def _link_doc(link: Link, udpport: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"kind": link.kind.value, "interface": link.interface}
    if link.kind in (LinkKind.UCAST, LinkKind.UCAST6):
        doc["peer"] = link.address
    if link.kind in _MCAST_KINDS:
        doc["group"] = link.address
    if link.port != udpport or link.kind in _MCAST_KINDS:
        doc["port"] = link.port
    if link.kind in _MCAST_KINDS:
        doc["ttl"] = link.ttl
        doc["loop"] = link.loop
    return doc


def _key_doc(key: AuthKey) -> dict[str, Any]:
    doc: dict[str, Any] = {"index": key.index, "method": key.method.value}
    if key.method is AuthMethod.CRC:
        return doc
    try:
        doc["secret"] = key.secret.decode("utf-8")
    except UnicodeDecodeError:
        doc["secret_hex"] = key.secret.hex()
    return doc


def _group_sections(group: Group) -> list[str]:
    # The haresources spelling is shorter; use it when it says everything.
    plain = all(
        not r.params and r.monitor_interval_ms is None and not any("::" in a for a in r.args)
        for r in group.resources
    )
    if plain:
        resources = [r.spec for r in group.resources]
        return _section("[[group]]", {"node": group.preferred_node, "resources": resources})
    out = _section("[[group]]", {"node": group.preferred_node})
    for r in group.resources:
        entry: dict[str, Any] = {"agent": r.agent}
        if r.args:
            entry["args"] = list(r.args)
        if r.params:
            entry["params"] = dict(r.params)
        if r.monitor_interval_ms is not None:
            entry["monitor_interval"] = format_duration(r.monitor_interval_ms)
        out += _section("[[group.resource]]", entry)
    return out
