"""Which notifiers to run: the ``[[notifier]]`` entries of notify.toml.

The cluster configuration has no notifier section, so hacore-notify reads a small file of its own:
the one named by ``HACORE_NOTIFY_CONFIG`` if set, else ``notify.toml`` next to the cluster
configuration (``/etc/ha.d/notify.toml``, or beside ``cluster.toml``). No file means no notifiers.

::

    [[notifier]]
    kind = "exec"                               # never through a shell
    command = ["/usr/local/sbin/ha-notify", "--page"]
    timeout = "5s"                              # killed (its process group) when it runs longer

    [[notifier]]
    kind = "webhook"
    url = "https://hooks.example.org/hacore"
    events = ["resource"]                       # "node", "resource" or both (the default)

    [[notifier]]
    kind = "mail"
    smtp = "localhost:25"
    from = "hacore@pc1.example.org"             # default hacore@<local node>
    to = ["ops@example.org"]

Every problem is reported with the file and the notifier it is in, and refuses the daemon's start
(through ``hacore_config_validate``), so a typo never becomes a notifier that silently never fires.
"""

from __future__ import annotations

import enum
import os
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hacore.config.model import ClusterConfig
from hacore.config.suggest import did_you_mean
from hacore.config.values import MAX_MS, InvalidValueError, parse_duration

__all__ = [
    "CONFIG_ENV",
    "CONFIG_NAME",
    "EventKind",
    "ExecSettings",
    "MailSettings",
    "NotifierSettings",
    "WebhookSettings",
    "load_settings",
    "settings_path",
]

CONFIG_ENV = "HACORE_NOTIFY_CONFIG"
CONFIG_NAME = "notify.toml"

DEFAULT_TIMEOUT_MS = {"exec": 5000, "webhook": 5000, "mail": 10_000}  # SMTP takes more round trips
SMTP_PORT = 25

_COMMON = ("kind", "name", "events", "timeout")
_KEYS = {
    "exec": (*_COMMON, "command"),
    "webhook": (*_COMMON, "url"),
    "mail": (*_COMMON, "smtp", "from", "to"),
}


class EventKind(enum.StrEnum):
    NODE = "node"
    RESOURCE = "resource"


@dataclass(frozen=True)
class ExecSettings:
    name: str
    events: frozenset[EventKind]
    timeout_ms: int
    command: tuple[str, ...]


@dataclass(frozen=True)
class WebhookSettings:
    name: str
    events: frozenset[EventKind]
    timeout_ms: int
    url: str


@dataclass(frozen=True)
class MailSettings:
    name: str
    events: frozenset[EventKind]
    timeout_ms: int
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]


NotifierSettings = ExecSettings | WebhookSettings | MailSettings


def settings_path(config: ClusterConfig) -> tuple[Path, bool]:
    """The notify.toml to read, and whether it was named explicitly (then it must exist)."""
    named = os.environ.get(CONFIG_ENV)
    if named:
        return Path(named), True
    source = config.source
    directory = source if source.is_dir() else source.parent
    return directory / CONFIG_NAME, False


def load_settings(config: ClusterConfig) -> tuple[tuple[NotifierSettings, ...], list[str]]:
    """The configured notifiers, and one message per problem (then no notifier at all)."""
    path, named = settings_path(config)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if named:
            return (), [f"{path}: not found (named by {CONFIG_ENV})"]
        return (), []
    except (OSError, UnicodeDecodeError) as err:
        return (), [f"{path}: cannot be read: {err}"]
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        return (), [f"{path}: {err}"]
    reader = _Reader(str(path), config.local_node)
    notifiers = reader.document(document)
    return (() if reader.problems else notifiers), reader.problems


class _Reader:
    def __init__(self, file: str, local_node: str) -> None:
        self.file = file
        self.local_node = local_node
        self.problems: list[str] = []

    def document(self, document: Mapping[str, Any]) -> tuple[NotifierSettings, ...]:
        for key in document:
            if key != "notifier":
                self.problems.append(
                    f"{self.file}: unknown section '{key}'{did_you_mean(key, ['notifier'])}; "
                    "write each notifier as a [[notifier]] table"
                )
        entries = document.get("notifier", [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            self.problems.append(f"{self.file}: write each notifier as a [[notifier]] table")
            return ()
        found = [self.notifier(i, entry) for i, entry in enumerate(entries, 1)]
        notifiers = tuple(n for n in found if n is not None)
        names = [n.name for n in notifiers]
        for name in sorted({n for n in names if names.count(n) > 1}):
            self.problems.append(f"{self.file}: two notifiers are named '{name}'")
        return notifiers

    def notifier(self, index: int, entry: Mapping[str, Any]) -> NotifierSettings | None:
        kind = entry.get("kind")
        where = f"{self.file}: notifier #{index}"
        if kind not in _KEYS:
            hint = did_you_mean(kind, _KEYS) if isinstance(kind, str) else ""
            self.problems.append(
                f"{where}: 'kind' must be one of {', '.join(_KEYS)}, not {kind!r}{hint}"
            )
            return None
        name = entry.get("name", f"{kind} #{index}")
        if not isinstance(name, str) or not name.strip():
            self.problems.append(f"{where}: 'name' must be a non-empty string")
            return None
        where = f"{self.file}: notifier '{name}'"
        before = len(self.problems)
        for key in entry:
            if key not in _KEYS[kind]:
                self.problems.append(
                    f"{where}: unknown key '{key}'{did_you_mean(key, _KEYS[kind])}"
                )
        events = self.events(where, entry.get("events", [k.value for k in EventKind]))
        timeout_ms = self.timeout(where, entry.get("timeout", DEFAULT_TIMEOUT_MS[kind]))
        settings: NotifierSettings | None = None
        if kind == "exec":
            command = self.command(where, entry.get("command"))
            settings = ExecSettings(name, events, timeout_ms, command)
        elif kind == "webhook":
            url = self.url(where, entry.get("url"))
            settings = WebhookSettings(name, events, timeout_ms, url)
        else:
            host, port = self.smtp(where, entry.get("smtp", f"localhost:{SMTP_PORT}"))
            sender = entry.get("from", f"hacore@{self.local_node}")
            if not isinstance(sender, str) or "@" not in sender:
                self.problems.append(f"{where}: 'from' must be a mail address, not {sender!r}")
            recipients = entry.get("to")
            if (
                not isinstance(recipients, list)
                or not recipients
                or not all(isinstance(r, str) and "@" in r for r in recipients)
            ):
                self.problems.append(
                    f"{where}: 'to' must be a list of mail addresses, like [\"ops@example.org\"]"
                )
                recipients = []
            settings = MailSettings(
                name, events, timeout_ms, host, port, str(sender), tuple(recipients)
            )
        return settings if len(self.problems) == before else None

    def events(self, where: str, value: object) -> frozenset[EventKind]:
        kinds = [k.value for k in EventKind]
        if not isinstance(value, list) or not value or not all(v in kinds for v in value):
            self.problems.append(
                f"{where}: 'events' must be a list of {' and '.join(repr(k) for k in kinds)}, "
                f"not {value!r}"
            )
            return frozenset()
        return frozenset(EventKind(v) for v in value)

    def timeout(self, where: str, value: object) -> int:
        problem = f'{where}: \'timeout\' must be a time like "5s" or "500ms", not {value!r}'
        if isinstance(value, str):
            try:
                ms = parse_duration(value)
            except InvalidValueError as err:
                self.problems.append(f"{where}: 'timeout': {err}")
                return 0
        elif isinstance(value, int) and not isinstance(value, bool):
            ms = value  # milliseconds, as everywhere in cluster.toml
        else:
            self.problems.append(problem)
            return 0
        if not 0 < ms <= MAX_MS:
            self.problems.append(f"{where}: 'timeout' must be more than 0, not {value!r}")
        return ms

    def command(self, where: str, value: object) -> tuple[str, ...]:
        if isinstance(value, str):
            self.problems.append(
                f'{where}: \'command\' must be a list like ["/path/to/script", "arg"]: '
                "it is run directly, never through a shell"
            )
            return ()
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            self.problems.append(
                f"{where}: 'command' must be a non-empty list of strings, "
                'like ["/path/to/script", "arg"]'
            )
            return ()
        program = Path(value[0])
        # An absolute path, so that what runs does not depend on the daemon's PATH.
        if not program.is_absolute():
            self.problems.append(f"{where}: the program '{program}' must be an absolute path")
        elif not program.is_file():
            self.problems.append(f"{where}: the program '{program}' does not exist")
        elif not os.access(program, os.X_OK):
            self.problems.append(
                f"{where}: the program '{program}' is not executable (chmod +x it)"
            )
        return tuple(value)

    def url(self, where: str, value: object) -> str:
        parsed = urllib.parse.urlsplit(value) if isinstance(value, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
            self.problems.append(
                f"{where}: 'url' must be an http:// or https:// address, not {value!r}"
            )
            return ""
        return str(value)

    def smtp(self, where: str, value: object) -> tuple[str, int]:
        problem = f'{where}: \'smtp\' must be "host" or "host:port", not {value!r}'
        if not isinstance(value, str) or not value:
            self.problems.append(problem)
            return "", SMTP_PORT
        # urlsplit knows "[2001:db8::25]:25" as well as "mail.example.org:587".
        try:
            parsed = urllib.parse.urlsplit(f"//{value}")
            port = parsed.port or SMTP_PORT
        except ValueError:
            self.problems.append(problem)
            return "", SMTP_PORT
        if not parsed.hostname or parsed.path or parsed.username:
            self.problems.append(problem)
            return "", SMTP_PORT
        return parsed.hostname, port
