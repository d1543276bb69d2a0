"""Reading configuration files, shared by every reader in this package: the bytes, the lines,
and the one problem to report when a file cannot be read at all."""

from __future__ import annotations

import os
from pathlib import Path

from hacore.config.errors import Problem
from hacore.config.model import Location

MISSING_HINT = "create it or point --config-dir at the directory that holds it"


class UnreadableError(Exception):
    """A configuration file that could not be read at all; carries the problem to report."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def unreadable(path: Path, error: OSError, missing_hint: str = MISSING_HINT) -> Problem:
    """What to tell a person about a file that could not be opened or read."""
    where = Location(str(path))
    if isinstance(error, FileNotFoundError):
        return Problem(where, f"not found ({missing_hint})")
    if isinstance(error, IsADirectoryError):
        return Problem(where, "is a directory, not a file")
    return Problem(where, f"cannot be read ({error.strerror})")


def read_bytes(path: Path, missing_hint: str = MISSING_HINT) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise UnreadableError(unreadable(path, e, missing_hint)) from None


def read_with_mode(path: Path) -> tuple[bytes, int]:
    """The file's bytes and its mode, taken from the file opened rather than the name (as
    Heartbeat does, fstat after fopen), so that the mode checked is that of what was read.
    Raises OSError."""
    with path.open("rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        return f.read(), mode


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
