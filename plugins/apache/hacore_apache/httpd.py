"""Running httpd's own command line, and reading what it says.

httpd reads its configuration, opens its logs and binds its sockets in the foreground, then
forks a master that detaches (setsid) and reads the configuration again. So the launched
process exits within tens of milliseconds: with status 1 and the reason on stderr or in the
error log for anything found before the fork (a syntax error, a port in use, an address that is
not there), with 0 once the master is on its way. Nothing here goes through a shell.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hacore.agent import AgentError, NotInstalledError

__all__ = ["Done", "httpd_argv", "log_size", "read_since", "run", "summary"]

# How much of httpd's own words an error carries.
_LINES = 12
_CHARS = 1500
_READ = 64 * 1024
# "[time] [module:level] [pid N:tid N] [client a:p] message" -> "message"
_LOG_PREFIX = re.compile(r"^(?:\[[^\]]*\] ){2,4}")


@dataclass(frozen=True)
class Done:
    returncode: int
    output: str  # stdout and stderr, interleaved


def httpd_argv(
    httpd: Path,
    configfile: Path,
    options: list[str],
    pid_file: Path | None = None,
    *,
    test: bool = False,
) -> list[str]:
    """httpd's command line, as OCF's agent builds it (``test``: ``-t``, the syntax check)."""
    argv = [str(httpd), *(["-t"] if test else []), "-DSTATUS", *options, "-f", str(configfile)]
    if pid_file is not None:
        # -c applies after the configuration is read, so this PidFile wins over its own.
        argv += ["-c", f'PidFile "{pid_file}"']
    return argv


async def run(argv: list[str], env: Mapping[str, str], deadline: float) -> Done:
    """Run httpd (it returns at once, see above) and collect what it said. NotInstalledError
    if it cannot be executed; AgentError if it has not returned by ``deadline``."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=dict(env),
            cwd="/",  # the master keeps the launcher's directory busy otherwise
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as err:
        raise NotInstalledError(f"cannot run {argv[0]}: {err.strerror or err}") from None
    try:
        async with asyncio.timeout(max(1.0, deadline - time.monotonic())):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AgentError(f"{argv[0]} did not return: does it stay in the foreground?") from None
    code = proc.returncode if proc.returncode is not None else -1
    return Done(code, out.decode(errors="replace"))


def log_size(path: Path | None) -> int:
    """Where the error log ends now, to read what a start adds to it."""
    if path is None:
        return 0
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_since(path: Path | None, mark: int) -> str:
    """What httpd wrote to its error log after ``mark`` (a log rotated meanwhile: all of it)."""
    if path is None:
        return ""
    try:
        with path.open("rb") as f:
            f.seek(mark if f.seek(0, os.SEEK_END) >= mark else 0)
            return f.read(_READ).decode(errors="replace")
    except OSError:
        return ""


def summary(text: str) -> str:
    """httpd's messages on one line: the last few, without log prefixes and blank lines."""
    lines = [_LOG_PREFIX.sub("", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line and line != "Syntax OK"][-_LINES:]
    joined = ""
    for line in lines:
        # httpd splits "Syntax error on line 3 of f:" and its reason over two lines.
        joined += (" " if joined.endswith(":") else "; " if joined else "") + line
    return joined[:_CHARS] or "no message (see the error log)"
