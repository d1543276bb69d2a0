"""Running one resource script: an argv list, a known environment, killed whole when abandoned.

Shared by the OCF and the LSB/Heartbeat bridges. Three rules shape it:

- **No shell.** The script is executed directly from an argv list; parameters reach it as
  argv words or environment values, never spliced into a command line.
- **Nothing outlives an abandoned action.** Each script leads its own process group (a new
  session). When the awaiting task is cancelled (the core's timeout) the whole group gets
  SIGKILL, as Pacemaker's executor does on a timeout, so a hung ``sleep`` or ``wget`` started by
  the script dies with it. A daemon the script started properly (``setsid``, ``start-stop-daemon
  --background``) has left the group: it is the resource, and it is not touched.
- **Output goes to files, not pipes.** A script that starts something in the background
  (IPaddr2's ``send_arp``, an init script's daemon that forgot to close stdout) leaves that child
  holding the script's stdout. With a pipe the action would wait for EOF until the child exits,
  and closing the read end later would kill the child with SIGPIPE. An anonymous temporary file
  is read once the script exits, whatever its children do afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = [
    "DEFAULT_RSCTMP",
    "EXIT_REASON_PREFIX",
    "OUTPUT_LIMIT",
    "SAFE_PATH",
    "ScriptResult",
    "ScriptTimeout",
    "base_environment",
    "exit_reason",
    "rsctmp",
    "run_script",
    "run_script_sync",
]

# Resource-agents' ocf-directories default; cleared at boot, like the resources it tracks.
DEFAULT_RSCTMP = Path("/run/resource-agents")

# A fixed PATH: the daemon's own may be a developer's or a venv's, and an agent that runs `ip`
# or `ps` must find the system's.
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Logging settings Heartbeat exported to its scripts (ha.cf's logfacility/logfile/debugfile);
# passed on when the daemon has them, so `ha_log` in a script goes where the user expects.
_PASSED_ON = ("HA_LOGFACILITY", "HA_LOGFILE", "HA_DEBUGLOG", "HA_debug", "HA_LOGD")

# Bytes of each stream kept (the end of it: exit reasons and status lines come last).
OUTPUT_LIMIT = 64 * 1024

# What an OCF agent prints to stderr before an error exit (``ocf_exit_reason``).
EXIT_REASON_PREFIX = "ocf-exit-reason:"
_REASON_LIMIT = 1000  # characters of script output quoted in an error message

# How long to wait for a SIGKILLed script to be reaped. Only a process stuck in the kernel
# (uninterruptible I/O) takes longer; it is left to the kernel rather than hold up the caller.
_REAP_TIMEOUT = 5.0


class ScriptTimeout(Exception):  # noqa: N818 - reads as the condition, as TimeoutError does
    """A synchronous run did not finish in time (its process group has been killed)."""

    def __init__(self, argv: Sequence[str], timeout: float) -> None:
        super().__init__(f"{' '.join(argv)} did not finish within {timeout:g} s")


@dataclass(frozen=True)
class ScriptResult:
    argv: tuple[str, ...]
    returncode: int  # negative: killed by that signal (subprocess's convention)
    stdout: str
    stderr: str
    seconds: float

    def describe_exit(self) -> str:
        """``exit 6`` or ``killed by SIGSEGV``."""
        if self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"killed by {name}"
        return f"exit {self.returncode}"


def exit_reason(done: ScriptResult) -> str:
    """What a failed run said about why: its ``ocf-exit-reason:`` lines, else the end of its
    stderr, else of its stdout; at most about 1000 characters, on one line."""
    lines = done.stderr.splitlines()
    reasons = [
        ln[len(EXIT_REASON_PREFIX) :].strip() for ln in lines if ln.startswith(EXIT_REASON_PREFIX)
    ]
    chosen = reasons or [ln.strip() for ln in lines if ln.strip()]
    chosen = chosen or [ln.strip() for ln in done.stdout.splitlines() if ln.strip()]
    text = "; ".join(chosen)
    if len(text) > _REASON_LIMIT:
        text = "..." + text[-_REASON_LIMIT:]
    return text


def rsctmp() -> Path:
    """Where scripts keep pid and state files (their ``HA_RSCTMP``): ``$HACORE_RSCTMP``, else
    ``$HA_RSCTMP``, else /run/resource-agents — the directory the daemon gives native agents."""
    return Path(os.environ.get("HACORE_RSCTMP") or os.environ.get("HA_RSCTMP") or DEFAULT_RSCTMP)


def base_environment() -> dict[str, str]:
    """The environment every script starts from; callers add their own variables.

    Built from nothing rather than inherited: the daemon's environment (a venv's PATH, a stray
    ``OCF_RESKEY_*`` from the shell that started it) must not change what an agent does.
    ``LC_ALL=C`` because Heartbeat's status rule reads English words on stdout, and
    ocf-shellfuncs sets it anyway.
    """
    directory = rsctmp()
    # Agents write pid and state files there and most assume it exists (tmpfiles.d makes it on
    # a Debian boot; a container or a test directory may not have it yet).
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    env = {"PATH": SAFE_PATH, "LC_ALL": "C", "HA_RSCTMP": str(directory)}
    for name in _PASSED_ON:
        value = os.environ.get(name)
        if value is not None:
            env[name] = value
    return env


def _spawn(
    argv: Sequence[str], env: Mapping[str, str], out: IO[bytes], err: IO[bytes]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
        env=dict(env),
        # Not the caller's directory: a script must not depend on it, nor keep it busy.
        cwd="/",
        close_fds=True,
        # Its own process group, so that the whole group can be killed (see the module doc).
        start_new_session=True,
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # Only while the leader is unreaped (poll() reaps it if it has exited): a zombie still holds
    # its pid, so the group id cannot have been taken by an unrelated process meanwhile.
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _tail(file: IO[bytes], limit: int) -> str:
    size = file.seek(0, os.SEEK_END)
    file.seek(max(0, size - limit))
    return file.read(limit).decode("utf-8", errors="replace")


def _result(
    argv: Sequence[str],
    returncode: int,
    out: IO[bytes],
    err: IO[bytes],
    *,
    began: float,
    limit: int,
) -> ScriptResult:
    return ScriptResult(
        tuple(argv), returncode, _tail(out, limit), _tail(err, limit), time.monotonic() - began
    )


async def run_script(
    argv: Sequence[str], env: Mapping[str, str], *, output_limit: int = OUTPUT_LIMIT
) -> ScriptResult:
    """Run ``argv`` to completion and return its exit status and output.

    There is no timeout here: the core enforces every action's timeout by cancelling the task,
    and cancellation kills the script's whole process group before it propagates. Raises
    OSError when the script cannot be executed at all (missing, not executable, bad format).
    """
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began = time.monotonic()
        # Popen forks from this thread, so the script inherits this thread's network namespace
        # (the namespace tests run their event loop in a thread that has entered one).
        proc = _spawn(argv, env, out, err)
        try:
            returncode = await _wait(loop, proc)
        except BaseException:
            _kill_group(proc)
            await _reap(loop, proc)
            raise
        return _result(argv, returncode, out, err, began=began, limit=output_limit)


async def _wait(loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes]) -> int:
    """Wait for ``proc`` to exit without a thread per process: a pidfd becomes readable when
    the process exits (Linux 5.3+). The leader is reaped only after that, by ``proc.wait``."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:  # an old kernel, or a sandbox that forbids pidfd_open
        return await asyncio.shield(asyncio.to_thread(proc.wait))
    exited: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(pidfd, ready)
    try:
        await exited
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    return proc.wait()


async def _reap(loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes]) -> None:
    # After SIGKILL the leader dies at once unless it is stuck in the kernel; bound the wait so
    # a cancelled action returns promptly either way. A task cancelled twice stops waiting.
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        async with asyncio.timeout(_REAP_TIMEOUT):
            await _wait(loop, proc)


def run_script_sync(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    timeout: float,
    output_limit: int = OUTPUT_LIMIT,
) -> ScriptResult:
    """``run_script`` for synchronous callers (reading meta-data while an agent is loaded):
    raises ScriptTimeout after ``timeout`` seconds, once the process group has been killed."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began = time.monotonic()
        proc = _spawn(argv, env, out, err)
        try:
            returncode = proc.wait(timeout)
        except BaseException as caught:
            _kill_group(proc)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(_REAP_TIMEOUT)
            if isinstance(caught, subprocess.TimeoutExpired):
                raise ScriptTimeout(argv, timeout) from None
            raise
        return _result(argv, returncode, out, err, began=began, limit=output_limit)
