"""Configuration problems: each one line a person can act on, ``file:line: message``."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from hacore.config.model import Location


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    location: Location
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        return f"{self.location}: {prefix}{self.message}"


class ConfigError(Exception):
    """Raised by the readers with every error found (not just the first)."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
