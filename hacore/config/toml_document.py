"""A cluster.toml being read: its tables, typed access to their keys, and every problem found,
each located at its line.

tomllib gives values without positions, so problems are located by looking for the table
header and the "key =" line in the text. Unusual spellings (dotted keys, inline tables) fall
back to the enclosing table's line.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hacore.config.errors import Problem, Severity
from hacore.config.model import Location
from hacore.config.suggest import did_you_mean
from hacore.config.values import MAX_MS, InvalidValueError, parse_duration

_E = TypeVar("_E", bound=enum.Enum)

_HEADER = re.compile(r"\s*(\[\[?)\s*([A-Za-z0-9_\-.\"' ]+?)\s*\]\]?\s*(#.*)?")


class Lines:
    """The table headers of the text, to find the line of a table or a key."""

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
class Table:
    """A TOML table being read: its values, what to call it in messages, its header line."""

    data: dict[str, Any]
    name: str
    line: int

    def dotted(self, key: str) -> str:
        """The dotted name of the table ``key`` within this one: ``auth.key`` in ``[auth]``."""
        return f"{self.name.strip('[]')}.{key}" if self.name else key


def type_name(value: object) -> str:
    """What a TOML value is, as a message names it."""
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


class Document:
    """A cluster.toml being read, and the problems found in it so far."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.file = str(path)
        self.lines = Lines(text)
        self.problems: list[Problem] = []
        self.inline_secrets = False

    # -- reporting

    def at(self, line: int) -> Location:
        return Location(self.file, line)

    def error(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.at(line), message))

    def warn(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.at(line), message, Severity.WARNING))

    def key_line(self, table: Table, key: str) -> int:
        return self.lines.key(table.line, key)

    # -- typed access

    def only(self, table: Table, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in table.data:
            if key not in allowed:
                self.error(
                    self.key_line(table, key),
                    f"unknown key '{key}' in {table.name}{did_you_mean(key, allowed)}",
                )

    def wrong_type(self, table: Table, key: str, expected: str) -> None:
        found = type_name(table.data[key])
        self.error(
            self.key_line(table, key), f"'{key}' in {table.name} must be {expected}, not {found}"
        )

    def string(self, table: Table, key: str) -> str | None:
        value = table.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.wrong_type(table, key, "a string")
            return None
        return value

    def integer(self, table: Table, key: str, low: int, high: int) -> int | None:
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

    def boolean(self, table: Table, key: str) -> bool | None:
        value = table.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.wrong_type(table, key, "true or false")
            return None
        return value

    def strings(self, table: Table, key: str) -> list[str] | None:
        value = table.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.wrong_type(table, key, "an array of strings")
            return None
        return list(value)

    def member(self, table: Table, key: str, text: str, kind: type[_E], message: str) -> _E | None:
        """``text``, the value of ``key``, as a member of the enum ``kind``; if it is none, None
        after reporting ``message`` with a "did you mean" hint."""
        try:
            return kind(text)
        except ValueError:
            known = [m.value for m in kind]
            self.error(self.key_line(table, key), message + did_you_mean(text, known))
            return None

    def time(self, table: Table, key: str) -> int | None:
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

    def table(self, parent: Table, key: str, allowed: Iterable[str]) -> Table | None:
        value = parent.data.get(key)
        if value is None:
            return None
        full = parent.dotted(key)
        if not isinstance(value, dict):
            self.wrong_type(parent, key, "a table")
            return None
        lines = self.lines.tables(full)
        table = Table(value, f"[{full}]", lines[0] if lines else self.key_line(parent, key))
        self.only(table, allowed)
        return table

    def array(
        self,
        parent: Table,
        key: str,
        allowed: Iterable[str],
        after: int = 0,
        before: int | None = None,
    ) -> list[Table]:
        """The tables of an array of tables ``[[parent.key]]``, each with its header line."""
        value = parent.data.get(key)
        if value is None:
            return []
        full = parent.dotted(key)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.wrong_type(parent, key, f"an array of tables ([[{full}]])")
            return []
        lines = self.lines.tables(full, after, before)
        fallback = self.key_line(parent, key)
        tables = []
        for n, item in enumerate(value):
            line = lines[n] if len(lines) == len(value) else fallback
            table = Table(item, f"[[{full}]]", line)
            self.only(table, allowed)
            tables.append(table)
        return tables

    def parsed(self, table: Table, key: str, parse: Callable[[str], Any]) -> Any:
        """A string value run through one of the value parsers, or None after an error."""
        text = self.string(table, key)
        if text is None:
            return None
        try:
            return parse(text)
        except InvalidValueError as e:
            self.error(self.key_line(table, key), f"'{key}' in {table.name}: {e}")
            return None
