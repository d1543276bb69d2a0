"""Which processes are one apache instance, told from its pid file and /proc.

httpd detaches at start: the master calls setsid(), so it leads a process group that every
child it forks belongs to, and that group outlives a master killed with SIGKILL (its children
keep serving, and keep the port, for ever). So the instance is the master named by the pid
file plus the members of the group it leads. A process counts only if it runs the configured
httpd binary with the configured file on its command line: a stale pid file whose number now
belongs to something else must never get that process signalled.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Processes",
    "alive",
    "children",
    "inspect",
    "inspect_pid",
    "read_pid",
    "signal_all",
]

_PROC = Path("/proc")


@dataclass(frozen=True)
class Processes:
    """One look at an instance. ``pid`` is what the pid file says (None: no usable pid file);
    ``master`` is that pid if it is this instance's live httpd; ``others`` are the instance's
    other live processes (children, or orphans of a dead master)."""

    pid: int | None
    master: int | None
    others: tuple[int, ...] = ()

    @property
    def running(self) -> bool:
        return self.master is not None

    @property
    def all(self) -> tuple[int, ...]:
        return ((self.master,) if self.master is not None else ()) + self.others


def read_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file``, or None if it is missing, empty or not a number (httpd
    truncates it before writing it again, so a reader may catch it empty)."""
    try:
        text = pid_file.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def alive(pid: int) -> bool:
    """Does ``pid`` run? A zombie does not: it has exited and waits only to be reaped."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def inspect(pid_file: Path, httpd: Path, config: Path, *, group: bool = True) -> Processes:
    """Look at the instance whose master writes ``pid_file``. With ``group`` false the process
    group is scanned only when the master is dead (its children go with a live master)."""
    pid = read_pid(pid_file)
    if pid is None:
        return Processes(None, None)
    return inspect_pid(pid, httpd, config, group=group)


def inspect_pid(pid: int, httpd: Path, config: Path, *, group: bool = True) -> Processes:
    """``inspect`` for a master whose pid is known (a graceful stop removes the pid file
    before the master exits)."""
    identity = _Identity(httpd, config)
    master = pid if alive(pid) and identity.matches(pid) else None
    if master is not None and not group:
        return Processes(pid, master)
    others = tuple(
        member for member in _group_members(pid) if member != pid and identity.matches(member)
    )
    return Processes(pid, master, others)


def children(pid: int, httpd: Path, config: Path) -> list[int]:
    """The live children of ``pid`` that are this instance's httpd (not, say, a piped logger
    it started), from every thread's children list."""
    identity = _Identity(httpd, config)
    found: list[int] = []
    try:
        tasks = list((_PROC / str(pid) / "task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            words = (task / "children").read_text().split()
        except OSError:
            continue
        found += [int(w) for w in words if alive(int(w)) and identity.matches(int(w))]
    return found


def signal_all(pids: Iterable[int], sig: int) -> None:
    """Send ``sig`` to each pid; one that has gone meanwhile is no error."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


class _Identity:
    """Whether a process runs this httpd with this configuration, checked through /proc."""

    def __init__(self, httpd: Path, config: Path) -> None:
        self.binary = os.path.realpath(httpd)
        self.config = os.fsencode(config)

    def matches(self, pid: int) -> bool:
        try:
            exe = os.readlink(_PROC / str(pid) / "exe")
            argv = (_PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        # A binary replaced by a package upgrade while running reads as "... (deleted)".
        if exe.removesuffix(" (deleted)") != self.binary:
            return False
        return self.config in argv


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of ``pid`` from /proc/<pid>/stat, or None if it has gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces and parentheses.
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[2])


def _group_members(pgid: int) -> list[int]:
    members: list[int] = []
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is not None and stat[1] == pgid and stat[0] != "Z":
            members.append(int(entry.name))
    return members
