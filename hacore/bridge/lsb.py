"""The script bridge: Heartbeat resource scripts and LSB init scripts as Agents.

A bare name in haresources (``httpd``, ``Filesystem::/dev/sdb1::/data::ext4``) that no installed
agent answers to is a script, looked up as Heartbeat's ResourceManager does (reference 1.4):
in each directory of ``$HACORE_RESOURCE_DIRS`` in turn (colon-separated; default
``/etc/ha.d/resource.d:/etc/init.d``), the first regular executable file of that name. The
``::`` arguments are passed before the action: ``script a b start|stop|status``.

What ``status`` means depends on where the script lives:

- **Heartbeat class** (a ``resource.d`` directory): the exit code is ignored and stdout is read,
  with ResourceManager's ``we_own_resource`` patterns: ``*[Nn][Oo][Tt] *[Rr]unning*`` is
  stopped, ``*[Rr]unning*`` or ``*OK*`` is running, anything else is stopped.
- **LSB** (a directory named ``init.d``): the exit code is the answer: 0 running, 3 stopped,
  anything else (1/2 "dead but a pid/lock file remains", 4 "unknown") a failure.

Start and stop follow ResourceManager: start is skipped when status already says running;
a stop that fails is forgiven when status then says stopped ("probably not LSB-compliant",
Heartbeat logs, and carries on). Stop is not skipped on a "stopped" status, because the
Heartbeat rule reads any unrecognised output as stopped, and skipping would leave running a
service whose status line it does not understand.

Neither kind is monitored unless the configuration sets a monitor interval: Heartbeat only ever
asked a script for its status around start and stop, and a script whose status output the
Heartbeat rule misreads would otherwise be "restarted" forever.
"""

from __future__ import annotations

import enum
import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from hacore.agent import (
    Action,
    Agent,
    AgentError,
    ConfigurationError,
    Metadata,
    NotInstalledError,
    OCFResult,
)
from hacore.bridge.process import ScriptResult, base_environment, exit_reason, run_script

__all__ = [
    "DEFAULT_RESOURCE_DIRS",
    "ScriptAgent",
    "ScriptStyle",
    "find_script",
    "heartbeat_status",
    "lsb_agent",
    "lsb_status",
    "resource_dirs",
    "style_of",
]

log = logging.getLogger(__name__)

# Heartbeat's HA_RESOURCEDIR, then INITDIR.
DEFAULT_RESOURCE_DIRS = (Path("/etc/ha.d/resource.d"), Path("/etc/init.d"))

# ResourceManager's `case` patterns. A shell `*` also matches newlines, hence DOTALL; the
# escaped space after NOT is literal, and only the first letter of "running" may be a capital.
_NOT_RUNNING = re.compile(r"[Nn][Oo][Tt] .*[Rr]unning", re.DOTALL)
_RUNNING = re.compile(r"[Rr]unning|OK")

# Script names are file names in a fixed directory: one path component.
_SCRIPT_NAME = re.compile(r"[A-Za-z0-9_+@-][A-Za-z0-9_.+@-]*")

_ARG = re.compile(r"arg([1-9][0-9]*)")


class ScriptStyle(enum.StrEnum):
    HEARTBEAT = "heartbeat"  # status read from stdout, exit codes not meaningful
    LSB = "lsb"  # status and action exit codes as the LSB specifies


def resource_dirs() -> tuple[Path, ...]:
    """``$HACORE_RESOURCE_DIRS`` (colon-separated), else Heartbeat's two directories."""
    value = os.environ.get("HACORE_RESOURCE_DIRS")
    if value is None:
        return DEFAULT_RESOURCE_DIRS
    return tuple(Path(d) for d in value.split(":") if d)


def style_of(directory: Path) -> ScriptStyle:
    """Scripts in a directory named ``init.d`` are LSB init scripts; any other directory holds
    Heartbeat resource scripts (``/etc/ha.d/resource.d``, a node's ``<config>/resource.d``)."""
    return ScriptStyle.LSB if directory.name == "init.d" else ScriptStyle.HEARTBEAT


def find_script(name: str) -> Path | None:
    """The script a bare haresources name stands for, or None (ResourceManager's ``scriptpath``:
    the first directory holding a regular executable file of that name)."""
    if not _SCRIPT_NAME.fullmatch(name):
        return None
    for directory in resource_dirs():
        path = directory / name
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def heartbeat_status(stdout: str) -> OCFResult:
    """Heartbeat's reading of a ``status`` output: SUCCESS (running) or NOT_RUNNING."""
    if _NOT_RUNNING.search(stdout):
        return OCFResult.NOT_RUNNING
    if _RUNNING.search(stdout):
        return OCFResult.SUCCESS
    return OCFResult.NOT_RUNNING


def lsb_status(returncode: int) -> OCFResult | None:
    """The LSB reading of a ``status`` exit code: SUCCESS, NOT_RUNNING, or None (failed or
    unknown: 1 and 2 are "dead, but a pid or lock file remains", 4 "status unknown")."""
    return {0: OCFResult.SUCCESS, 3: OCFResult.NOT_RUNNING}.get(returncode)


_LSB_STATUS_MEANING = {
    1: "program is dead and a pid file exists",
    2: "program is dead and a lock file exists",
    4: "program or service status is unknown",
}


class ScriptAgent(Agent):
    """Base of the classes ``lsb_agent`` makes; one subclass per script."""

    metadata: ClassVar[Metadata]
    script: ClassVar[Path]
    style: ClassVar[ScriptStyle]

    # -- configuration ---------------------------------------------------------------------

    @classmethod
    def parse_args(cls, args: Sequence[str]) -> dict[str, str]:
        """``name::a::b`` gives ``arg1=a``, ``arg2=b``: any number, passed in that order."""
        return {f"arg{i}": value for i, value in enumerate(args, start=1)}

    @classmethod
    def resolve(cls, params: Mapping[str, str]) -> dict[str, str]:
        """Only ``arg1`` ... ``argN``, without gaps (a TOML configuration names them so)."""
        name = cls.metadata.name
        numbers: list[int] = []
        for key, value in params.items():
            match = _ARG.fullmatch(key)
            if match is None:
                raise ConfigurationError(
                    f"{name}: unknown parameter '{key}' (a script takes positional arguments "
                    f"only: {name}::a::b in haresources, arg1, arg2, ... in TOML)"
                )
            if "\0" in value:
                raise ConfigurationError(f"{name}: parameter '{key}' holds a NUL byte")
            numbers.append(int(match.group(1)))
        numbers.sort()
        if numbers != list(range(1, len(numbers) + 1)):
            missing = min(set(range(1, len(numbers) + 1)) - set(numbers))
            raise ConfigurationError(f"{name}: arg{missing} is missing (arguments are positional)")
        return {f"arg{n}": params[f"arg{n}"] for n in numbers}

    @property
    def args(self) -> list[str]:
        return [self.params[f"arg{n}"] for n in range(1, len(self.params) + 1)]

    # -- actions ---------------------------------------------------------------------------

    async def start(self) -> None:
        # ResourceManager: `we_own_resource $j || doscript $j start`.
        if await self._running_quietly():
            log.info("%s: status says running; start skipped", self._what("start"))
            return
        done = await self._run("start")
        if done.returncode != 0:
            raise self._failure(done, "start")

    async def stop(self) -> None:
        done = await self._run("stop")
        if done.returncode == 0:
            return
        if await self._running_quietly() is False:
            log.warning(
                "%s failed (%s) but status says stopped: the script is probably not "
                "LSB-compliant (stop must succeed when already stopped)",
                self._what("stop"),
                done.describe_exit(),
            )
            return
        raise self._failure(done, "stop")

    async def monitor(self, depth: int = 0) -> OCFResult:
        done = await self._run("status")
        if self.style is ScriptStyle.HEARTBEAT:
            return heartbeat_status(done.stdout)
        result = lsb_status(done.returncode)
        if result is None:
            meaning = _LSB_STATUS_MEANING.get(done.returncode, "not an LSB status code")
            reason = exit_reason(done)
            raise AgentError(
                f"{self._what('status')}: {done.describe_exit()} ({meaning})"
                + (f": {reason}" if reason else "")
            )
        return result

    async def validate(self) -> None:
        if not (self.script.is_file() and os.access(self.script, os.X_OK)):
            raise NotInstalledError(f"{self.metadata.name}: {self.script} is not executable")

    # -- running the script ----------------------------------------------------------------

    async def _running_quietly(self) -> bool | None:
        """Status as start and stop use it: True, False, or None when it cannot tell."""
        try:
            return await self.monitor() is OCFResult.SUCCESS
        except AgentError as err:
            log.info("%s", err)
            return None

    async def _run(self, action: str) -> ScriptResult:
        argv = [str(self.script), *self.args, action]
        try:
            done = await run_script(argv, base_environment())
        except OSError as err:
            raise NotInstalledError(
                f"{self._what(action)}: cannot run {self.script}: {err.strerror or err}"
            ) from None
        log.debug("%s: %s in %.3f s", self._what(action), done.describe_exit(), done.seconds)
        return done

    def _failure(self, done: ScriptResult, action: str) -> AgentError:
        reason = exit_reason(done)
        message = f"{self._what(action)}: {done.describe_exit()}" + (
            f": {reason}" if reason else ""
        )
        # LSB init scripts share OCF's codes 1-7 for actions other than status; a Heartbeat
        # script's codes mean nothing beyond "failed" (ResourceManager only logs them).
        result = OCFResult.ERR_GENERIC
        if self.style is ScriptStyle.LSB and 1 <= done.returncode <= 7:
            result = OCFResult(done.returncode)
        return AgentError.from_result(result, message)

    def _what(self, action: str) -> str:
        args = "".join(f" {a}" for a in self.args)
        return f"{self.script}{args} {action} (instance {self.instance.name})"


_classes: dict[tuple[Path, ScriptStyle], type[ScriptAgent]] = {}
_classes_lock = threading.Lock()


def lsb_agent(path: Path, style: ScriptStyle | None = None) -> type[ScriptAgent]:
    """The Agent class for the script at ``path``; ``style`` defaults to ``style_of`` its
    directory. One class per script and style."""
    path = Path(path)
    style = style or style_of(path.parent)
    with _classes_lock:
        found = _classes.get((path, style))
        if found is None:
            found = _classes[(path, style)] = _make_class(path, style)
        return found


def _make_class(path: Path, style: ScriptStyle) -> type[ScriptAgent]:
    kind = "Heartbeat resource script" if style is ScriptStyle.HEARTBEAT else "LSB init script"
    rule = (
        "status is read from its output (running / OK / not running), as Heartbeat did"
        if style is ScriptStyle.HEARTBEAT
        else "status is its exit code (0 running, 3 stopped), as the LSB specifies"
    )
    metadata = Metadata(
        name=path.name,
        shortdesc=f"{kind} {path}",
        longdesc=(
            f"Runs '{path} [arguments] start|stop|status'; {rule}. Arguments come from "
            f"haresources ({path.name}::a::b) or, in TOML, from arg1, arg2, ..."
        ),
        # Heartbeat never timed scripts out, and an init script for a database may take tens of
        # seconds to stop; a generous bound, since a stop that times out blocks the group.
        actions=(
            Action("start", 60_000),
            Action("stop", 60_000),
            Action("monitor", 20_000),  # no interval: see the module docstring
            Action("validate-all", 5_000),
            Action("meta-data", 5_000),
        ),
    )
    namespace = {
        "metadata": metadata,
        "script": path,
        "style": style,
        "__module__": __name__,
        "__doc__": f"{kind} {path}",
    }
    class_name = re.sub(r"\W", "_", f"{style.value.upper()}_{path.name}")
    return type(class_name, (ScriptAgent,), namespace)
