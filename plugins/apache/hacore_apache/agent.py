"""The apache resource agent: Debian's apache2 (or any httpd 2.4) as a cluster resource.

It follows ``ocf:heartbeat:apache``: the same parameters where they matter, the same start
(``httpd -DSTATUS <options> -f <configfile>``, then wait until the server answers), the same
stop escalation (SIGWINCH for a graceful stop, then SIGTERM, then SIGKILL, within the stop
timeout). Monitor depth 0 checks that the master lives and that its port accepts a connection;
depth 10 fetches the status URL and matches ``testregex``.

Where it differs from the shell agent, on purpose:

- The instance is the master named by the pid file *and* the process group it leads. A master
  killed with SIGKILL leaves its children serving the port for ever; OCF's monitor then says
  "not running" and its stop hunts them with ``pkill -f``. Here monitor reports such orphans as
  a failure (the cluster's recovery stops the resource, which kills them by pid), and start
  clears them before it launches.
- Start waits for an HTTP answer from the status URL, not for a connect: httpd binds its
  sockets before it forks any child, so a connect succeeds before anything can answer.
- A graceful stop whose children have all finished ends at once (see ``_graceful``) instead of
  at the master's next once-a-second check: a planned move waits tens of milliseconds.

The agent keeps no state: every action reads the envfiles, the configuration and the pid file
again, so a daemon that restarts (or probes) sees a running apache as the one that started it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shlex
import shutil
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from hacore.agent import (
    Agent,
    AgentError,
    ArgumentError,
    ConfigurationError,
    Instance,
    Metadata,
    NotInstalledError,
    OCFResult,
)

from hacore_apache import httpd as launcher
from hacore_apache import processes
from hacore_apache.conf import ApacheConfig, read_config
from hacore_apache.environment import EnvfileError, prepare_directories, source_envfiles
from hacore_apache.metadata import (
    DEFAULT_CONFIGFILE,
    DEFAULT_ENVFILES,
    DEFAULT_HTTPD,
    DEFAULT_TESTREGEX,
    METADATA,
    parameter_problem,
)
from hacore_apache.probe import Answer, NoAnswer, connect, fetch

__all__ = ["DEFAULT_RSCTMP", "Apache"]

log = logging.getLogger(__name__)

# Heartbeat's HA_RSCTMP; the daemon exports each node's own as HACORE_RSCTMP.
DEFAULT_RSCTMP = Path("/run/resource-agents")

# How often start and stop look again: small next to apache's own ~50 ms start.
_POLL = 0.02
# One probe of the server; the monitor's own timeout (20 s) bounds the whole action.
_CONNECT_TIMEOUT = 5.0
_FETCH_TIMEOUT = 5.0
# The share of an action's timeout the agent uses before it gives up with its own message:
# the core cancels at the full timeout, and a cancelled action says nothing useful.
_BUDGET = 0.9


class Apache(Agent):
    """The Apache HTTP server, started, stopped and watched as ``ocf:heartbeat:apache`` does."""

    metadata: ClassVar[Metadata] = METADATA

    def __init__(self, instance: Instance, *, stop_timeout: float | None = None) -> None:
        """``stop_timeout`` (seconds) is the time stop spreads its escalation over: by default
        the meta-data's stop timeout, which the core enforces. Tests shorten it."""
        super().__init__(instance)
        if stop_timeout is None:
            stop_timeout = self.metadata.timeout_ms("stop") / 1000
        self.stop_timeout = stop_timeout

    # ------------------------------------------------------------------ parameters

    @classmethod
    def resolve(cls, params: Mapping[str, str]) -> dict[str, str]:
        resolved = super().resolve(params)
        problem = parameter_problem(resolved)
        if problem:
            raise ConfigurationError(f"apache: {problem}")
        return resolved

    @property
    def configfile(self) -> Path:
        return Path(self.params.get("configfile", DEFAULT_CONFIGFILE))

    @property
    def options(self) -> list[str]:
        return shlex.split(self.params.get("options", ""))

    @property
    def envfiles(self) -> list[Path]:
        return [Path(word) for word in self.params.get("envfiles", "").split()]

    @property
    def testregex(self) -> re.Pattern[str]:
        return re.compile(self.params.get("testregex", DEFAULT_TESTREGEX), re.IGNORECASE)

    def httpd(self) -> Path:
        """The httpd binary; NotInstalledError if it is not there."""
        name = self.params.get("httpd", DEFAULT_HTTPD)
        found = name if "/" in name else shutil.which(name)
        if found is None or not os.access(found, os.X_OK) or os.path.isdir(found):
            raise NotInstalledError(
                f"httpd binary {name} not found or not executable: install apache2 "
                "(apt-get install apache2) or set the httpd parameter"
            )
        return Path(found)

    # ------------------------------------------------------------------ actions

    async def start(self) -> None:
        began = time.monotonic()
        deadline = began + self.metadata.timeout_ms("start") / 1000 * _BUDGET
        httpd = self.httpd()
        setup = await self._setup()
        found = await self._inspect(setup, httpd)
        if found.running:
            log.info("%s: already running (pid %s)", self.instance.name, found.master)
            return
        if found.others:
            log.warning(
                "%s: killing %s, left by master %s, which died",
                self.instance.name,
                _pids(found.others),
                found.pid,
            )
            await self._kill(found.others, deadline)
        mark = await asyncio.to_thread(_prepare, setup)
        launched = await launcher.run(self._argv(httpd, setup), setup.env, deadline)
        if launched.returncode != 0:
            await self._start_failed(httpd, setup, launched, mark, deadline)
        try:
            master = await self._wait_answering(httpd, setup, mark, deadline)
        except AgentError:
            # As OCF's agent: a start that fails leaves nothing running behind it.
            await self._stop(httpd, setup)
            raise
        log.info(
            "%s: started (pid %s) in %.3f s", self.instance.name, master, time.monotonic() - began
        )

    async def stop(self) -> None:
        try:
            setup = await self._setup()
        except NotInstalledError as err:
            # No configuration here: nothing this agent started can be running on this node.
            log.warning("%s: stop: %s; nothing to stop", self.instance.name, err)
            return
        await self._stop(self._httpd_path(), setup)

    async def monitor(self, depth: int = 0) -> OCFResult:
        try:
            setup = await self._setup()
        except NotInstalledError:
            return OCFResult.NOT_RUNNING  # a probe on a node without this configuration
        found = await self._inspect(setup, self._httpd_path())
        if not found.running:
            if found.others:
                raise AgentError(
                    f"apache master {found.pid} is gone but {len(found.others)} of its "
                    f"processes still run ({_pids(found.others)}); stop kills them"
                )
            return OCFResult.NOT_RUNNING
        try:
            await connect(setup.host, setup.port, _CONNECT_TIMEOUT)
        except NoAnswer as err:
            raise AgentError(
                f"apache (pid {found.master}) runs but does not answer: {err}"
            ) from None
        if depth >= 10:
            try:
                answer = await fetch(setup.status_url, _FETCH_TIMEOUT)
            except NoAnswer as err:
                raise AgentError(f"apache (pid {found.master}) status check: {err}") from None
            self._check_answer(answer)
        return OCFResult.SUCCESS

    async def validate(self) -> None:
        httpd = self.httpd()
        missing = [f for f in self.envfiles if not f.is_file() and str(f) != DEFAULT_ENVFILES]
        if missing:
            raise ArgumentError(f"envfile {missing[0]} does not exist on this node")
        setup = await self._setup()
        # As `apache2ctl configtest`: the directories first, or Debian's file fails the test.
        await asyncio.to_thread(prepare_directories, setup.env)
        deadline = time.monotonic() + self.metadata.timeout_ms("validate-all") / 1000 * _BUDGET
        await self._syntax_check(httpd, setup, deadline)

    # ------------------------------------------------------------------ start

    def _argv(self, httpd: Path, setup: _Setup, *, test: bool = False) -> list[str]:
        forced = setup.pid_file if setup.force_pid_file else None
        return launcher.httpd_argv(httpd, self.configfile, self.options, forced, test=test)

    async def _syntax_check(self, httpd: Path, setup: _Setup, deadline: float) -> None:
        """httpd's own ``-t``: ConfigurationError with its words if it fails."""
        tested = await launcher.run(self._argv(httpd, setup, test=True), setup.env, deadline)
        if tested.returncode != 0:
            raise ConfigurationError(
                f"apache configuration {self.configfile}: {launcher.summary(tested.output)}"
            )

    async def _start_failed(
        self, httpd: Path, setup: _Setup, launched: launcher.Done, mark: int, deadline: float
    ) -> None:
        logged = await asyncio.to_thread(launcher.read_since, setup.config.error_log, mark)
        # A configuration that can never start (OCF 6: no failover, a person must act) or one
        # that failed on this node (a port in use, say): httpd's syntax check tells them apart.
        await self._syntax_check(httpd, setup, deadline)
        said = launcher.summary(launched.output + logged)
        raise AgentError(f"{httpd} exited with status {launched.returncode}: {said}")

    async def _wait_answering(self, httpd: Path, setup: _Setup, mark: int, deadline: float) -> int:
        """Wait until the status URL answers; the master's pid. Fails at once if the master
        dies or the answer is wrong (neither mends itself), else at ``deadline``."""
        last = f"no pid file {setup.pid_file} yet"
        while True:
            found = await self._inspect(setup, httpd)
            if found.master is not None:
                try:
                    answer = await fetch(setup.status_url, _fetch_timeout(deadline))
                except NoAnswer as err:
                    last = str(err)
                else:
                    self._check_answer(answer)
                    return found.master
            elif found.pid is not None:
                # Start removed the old pid file: this is the new master's, and it has died.
                said = await self._logged(setup, mark)
                raise AgentError(f"apache (pid {found.pid}) exited just after start: {said}")
            if time.monotonic() >= deadline:
                said = await self._logged(setup, mark)
                raise AgentError(
                    f"apache did not answer {setup.status_url} in time: {last}; error log: {said}"
                )
            await asyncio.sleep(_POLL)

    async def _logged(self, setup: _Setup, mark: int) -> str:
        text = await asyncio.to_thread(launcher.read_since, setup.config.error_log, mark)
        return launcher.summary(text)

    def _check_answer(self, answer: Answer) -> None:
        if not answer.ok:
            raise AgentError(f"{answer.url} answered {answer.status} {answer.reason}")
        if not self.testregex.search(answer.body):
            raise AgentError(
                f"{answer.url} answered {answer.status} but the page does not match testregex "
                f"{self.testregex.pattern!r}"
            )

    # ------------------------------------------------------------------ stop

    async def _stop(self, httpd: Path, setup: _Setup) -> None:
        began = time.monotonic()
        found = await self._inspect(setup, httpd)
        if found.master is not None:
            await self._escalate(httpd, found.master)
            log.info(
                "%s: stopped (pid %s) in %.3f s",
                self.instance.name,
                found.master,
                time.monotonic() - began,
            )
        elif found.others:
            log.warning(
                "%s: master %s is gone; killing what it left: %s",
                self.instance.name,
                found.pid,
                _pids(found.others),
            )
            await self._kill(found.others, began + self.stop_timeout * _BUDGET)
        await asyncio.to_thread(_remove_pid_file, setup.pid_file, found.pid)

    async def _escalate(self, httpd: Path, master: int) -> None:
        """SIGWINCH (finish the requests in flight), then SIGTERM, then SIGKILL to the whole
        group, each within its share of the stop timeout (the graceful stop gets half, as in
        OCF's agent)."""
        began = time.monotonic()
        total = self.stop_timeout * _BUDGET
        log.info("%s: graceful stop: SIGWINCH to %s", self.instance.name, master)
        processes.signal_all([master], signal.SIGWINCH)
        if not await self._graceful(httpd, master, began + total * 0.5):
            log.warning("%s: %s ignored the graceful stop; SIGTERM", self.instance.name, master)
            processes.signal_all([master], signal.SIGTERM)
            await _wait_gone([master], began + total * 0.75)
        # Whatever is left of the group (a master that would not die, children it did not
        # reap) goes now. Looked up by the master's pid: a graceful stop removes the pid file
        # before the master exits.
        found = await asyncio.to_thread(
            processes.inspect_pid, master, httpd, self.configfile, group=True
        )
        if found.all:
            log.warning("%s: SIGKILL to %s", self.instance.name, _pids(found.all))
            await self._kill(found.all, began + self.stop_timeout * (_BUDGET + 1) / 2)

    async def _graceful(self, httpd: Path, master: int, deadline: float) -> bool:
        """Wait for a gracefully stopping master to exit; False at ``deadline``.

        After SIGWINCH the master stops listening at once and its children exit as soon as
        their requests are done, but the master itself notices only at its next once-a-second
        check. When no child is left there is nothing left to be graceful about, so it gets a
        SIGTERM: stop takes tens of milliseconds instead of a second.
        """
        hurried = False
        while processes.alive(master):
            if time.monotonic() >= deadline:
                return False
            if not hurried and not processes.children(master, httpd, self.configfile):
                processes.signal_all([master], signal.SIGTERM)
                hurried = True
            await asyncio.sleep(_POLL)
        return True

    async def _kill(self, pids: tuple[int, ...], deadline: float) -> None:
        processes.signal_all(pids, signal.SIGKILL)
        if not await _wait_gone(pids, max(deadline, time.monotonic() + 1.0)):
            alive = tuple(pid for pid in pids if processes.alive(pid))
            raise AgentError(f"apache processes {_pids(alive)} survive SIGKILL")

    # ------------------------------------------------------------------ looking

    def _httpd_path(self) -> Path:
        """The httpd path that identifies the processes: it need not exist (a binary
        replaced while it runs still names them)."""
        try:
            return self.httpd()
        except NotInstalledError:
            return Path(self.params.get("httpd", DEFAULT_HTTPD))

    async def _inspect(self, setup: _Setup, httpd: Path) -> processes.Processes:
        # The group is scanned only for a dead master's orphans: a live master's children
        # are its own business until stop.
        return await asyncio.to_thread(
            processes.inspect, setup.pid_file, httpd, self.configfile, group=False
        )

    async def _setup(self) -> _Setup:
        try:
            env = await source_envfiles(self.envfiles, os.environ)
        except EnvfileError as err:
            raise ArgumentError(str(err)) from None
        server_root = _server_root_option(self.options)
        try:
            config = await asyncio.to_thread(read_config, self.configfile, env, server_root)
        except OSError as err:
            raise NotInstalledError(
                f"apache configuration {self.configfile}: {err.strerror or err}"
            ) from None
        if self.params.get("pidfile"):
            pid_file, forced = Path(self.params["pidfile"]), True
        elif config.pid_file is not None:
            pid_file, forced = config.pid_file, False
        else:
            # As OCF's agent: without a PidFile httpd would use a compiled-in path that every
            # instance on the machine shares; this one gets its own.
            pid_file, forced = _rsctmp() / f"apache-{self.instance.name}.pid", True
        port = self.params.get("port")
        url = self.params.get("statusurl") or config.status_url(int(port) if port else None)
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        return _Setup(env, config, pid_file, forced, url, host, parts.port or _port_of(url))


@dataclass(frozen=True)
class _Setup:
    """What one action works with, read afresh from the node."""

    env: dict[str, str]
    config: ApacheConfig
    pid_file: Path
    force_pid_file: bool  # passed with -c PidFile: not the configuration's own
    status_url: str
    host: str  # where depth 0 connects: the status URL's host and port
    port: int


def _port_of(url: str) -> int:
    return 443 if url.startswith("https:") else 80


def _server_root_option(options: list[str]) -> Path | None:
    """httpd's ``-d serverroot`` among the options, if any."""
    for index, word in enumerate(options):
        if word == "-d" and index + 1 < len(options):
            return Path(options[index + 1])
        if word.startswith("-d") and len(word) > 2:
            return Path(word[2:])
    return None


def _rsctmp() -> Path:
    return Path(os.environ.get("HACORE_RSCTMP") or DEFAULT_RSCTMP)


def _prepare(setup: _Setup) -> int:
    """Ready the node for a launch; where the error log ends before it."""
    prepare_directories(setup.env)
    setup.pid_file.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    # A crashed master left it; the only pid start may read is the new master's.
    setup.pid_file.unlink(missing_ok=True)
    return launcher.log_size(setup.config.error_log)


def _remove_pid_file(pid_file: Path, pid: int | None) -> None:
    # Only the file naming the master just stopped: a newer one would belong to someone else.
    if pid is not None and processes.read_pid(pid_file) == pid:
        pid_file.unlink(missing_ok=True)


async def _wait_gone(pids: tuple[int, ...] | list[int], deadline: float) -> bool:
    """Poll until none of ``pids`` runs; False if some still do at ``deadline``."""
    while any(processes.alive(pid) for pid in pids):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL)
    return True


def _fetch_timeout(deadline: float) -> float:
    return max(0.5, min(_FETCH_TIMEOUT, deadline - time.monotonic()))


def _pids(pids: tuple[int, ...]) -> str:
    return ", ".join(str(pid) for pid in pids)
