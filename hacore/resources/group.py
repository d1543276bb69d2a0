"""One resource group on this node: start left to right, stop right to left, probe, monitor,
restart in place. Every action goes through the Runner (off the keepalive path, under its
timeout); operations on one group are serialised by a lock, different groups run in parallel.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from hacore.agent import Agent, AgentError, ConfigurationError, OCFResult
from hacore.resources.binding import BoundGroup, BoundResource
from hacore.resources.runner import ActionTimeout, Runner
from hacore.resources.stats import OK, ActionStats

log = logging.getLogger(__name__)


class GroupState(enum.StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    STARTED = "started"
    STOPPING = "stopping"
    FAILED = "failed"  # a stop failed: it may still run here, so it stays ours until cleanup
    BLOCKED = "blocked"  # a configuration error: it must not run anywhere until fixed


class Outcome(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"  # generic failure: another node may do better
    BLOCKED = "blocked"  # configuration error: no node will do better


@dataclass
class ResourceRuntime:
    bound: BoundResource
    agent: Agent
    state: str = "stopped"  # "stopped" / "started" / "failed", for status


Notify = Callable[[str, str, str, OCFResult, str], None]


class GroupRuntime:
    def __init__(
        self,
        bound: BoundGroup,
        runner: Runner,
        notify: Notify | None = None,
        stats: ActionStats | None = None,
    ) -> None:
        self.bound = bound
        self.key = bound.key
        self.runner = runner
        self.resources = [ResourceRuntime(r, r.agent()) for r in bound.resources]
        self.state = GroupState.STOPPED
        self.failcount = 0
        self.lock = asyncio.Lock()
        self._notify = notify
        self._stats = stats

    @property
    def holds(self) -> bool:
        """True while any resource may be running here: peers must not start the group."""
        return self.state not in (GroupState.STOPPED, GroupState.BLOCKED)

    # ------------------------------------------------------------------ actions

    async def _act(self, res: ResourceRuntime, action: str, depth: int = 0) -> OCFResult:
        what = f"{res.bound.name} {action}"
        agent = res.agent

        async def run() -> OCFResult:
            # Runs in the group's worker thread, never on the daemon's loop.
            if action == "start":
                await agent.start()
                return OCFResult.SUCCESS
            if action == "stop":
                await agent.stop()
                return OCFResult.SUCCESS
            if action == "validate-all":
                await agent.validate()
                return OCFResult.SUCCESS
            return await agent.monitor(depth)

        timeout = res.bound.timeout_s("monitor" if action == "probe" else action)
        started = time.monotonic()
        ended: str | None = None  # how it ended, for the stats; stays None if cancelled
        try:
            result = await self.runner.call(self.key, what, run, timeout)
            found_down = action == "monitor" and not result.running
            ended = result.name.lower() if found_down else OK
        except ActionTimeout as err:
            ended = "timeout"
            self._report(res, action, OCFResult.ERR_GENERIC, str(err))
            raise AgentError(str(err)) from None
        except AgentError as err:
            ended = err.result.name.lower()
            self._report(res, action, err.result, str(err))
            raise
        except Exception as err:  # a bug in an agent is that agent's failure, not ours
            ended = OCFResult.ERR_GENERIC.name.lower()
            # One line for the operator; the traceback, for the agent's author, at debug level.
            log.error("%s raised %r: a bug in the agent (traceback with debug on)", what, err)
            log.debug("%s: traceback", what, exc_info=True)
            self._report(res, action, OCFResult.ERR_GENERIC, repr(err))
            raise AgentError(f"{what}: {err!r}") from None
        finally:
            if self._stats is not None and ended is not None:
                agent_name = res.bound.resource.agent
                self._stats.record(agent_name, action, time.monotonic() - started, ended)
        if action not in ("monitor", "probe"):
            self._report(res, action, result, "")
        return result

    def _report(self, res: ResourceRuntime, action: str, result: OCFResult, detail: str) -> None:
        if result is not OCFResult.SUCCESS:
            log.warning("%s %s: %s %s", res.bound.name, action, result.name, detail)
        else:
            log.info("%s %s: ok", res.bound.name, action)
        if self._notify is not None:
            self._notify(self.key, res.bound.resource.spec, action, result, detail)

    # ------------------------------------------------------------------ group operations

    @property
    def incomplete(self) -> bool:
        """Started, but a probe found some of its resources stopped: ours (something of it runs
        here), yet not serving until the missing ones are started too (``start``)."""
        return self.state is GroupState.STARTED and any(
            r.state == "stopped" for r in self.resources
        )

    async def probe(self) -> None:
        """At start-up: find what still runs here (a daemon restart must not start a second
        copy nor leave an orphan). Any running resource makes the group ours; if only some run,
        the group is ``incomplete`` until ``start`` (or ``stop``) is asked of it."""
        async with self.lock:
            running = False
            for res in self.resources:
                try:
                    result = await self._act(res, "probe")
                except AgentError:
                    result = OCFResult.ERR_GENERIC  # unknown: assume it may run, stop cleans up
                res.state = "started" if result is not OCFResult.NOT_RUNNING else "stopped"
                running |= result is not OCFResult.NOT_RUNNING
            if running:
                log.warning("group %s found running at start-up", self.key)
                self.state = GroupState.STARTED

    async def start(self) -> Outcome:
        """Start the group, left to right; on an ``incomplete`` group, start the resources
        found stopped, in order (as Pacemaker starts what its probes found missing)."""
        async with self.lock:
            completing = self.state is GroupState.STARTED and self.incomplete
            if self.state is not GroupState.STOPPED and not completing:
                return Outcome.OK
            todo = [
                (index, res)
                for index, res in enumerate(self.resources)
                if not completing or res.state == "stopped"
            ]
            self.state = GroupState.STARTING
            if completing:
                names = ", ".join(res.bound.name for _, res in todo)
                log.warning("completing group %s: starting %s", self.key, names)
            else:
                log.info("starting group %s", self.key)
            for index, res in todo:
                try:
                    await self._act(res, "start")
                    res.state = "started"
                except AgentError as err:
                    res.state = "failed"
                    log.error("giving up group %s: %s failed to start", self.key, res.bound.name)
                    blocked = isinstance(err, ConfigurationError)
                    # Completing, resources after this one may run too: stop them all.
                    last = len(self.resources) - 1 if completing else index
                    stopped = await self._stop_from(last)
                    if not stopped:
                        self.state = GroupState.FAILED
                        return Outcome.FAILED
                    self.state = GroupState.BLOCKED if blocked else GroupState.STOPPED
                    return Outcome.BLOCKED if blocked else Outcome.FAILED
            self.state = GroupState.STARTED
            log.info("group %s started", self.key)
            return Outcome.OK

    async def reannounce(self) -> None:
        """Run start again on a started group's resources, which must succeed and change
        nothing on a running resource (OCF), while an address agent's start on an address it
        holds sends its gratuitous ARP again: after another node held our address too, clients
        may still send to that node's MAC. A failure is left to the monitor."""
        async with self.lock:
            if self.state is not GroupState.STARTED:
                return
            for res in self.resources:
                if res.state != "started":
                    continue
                try:
                    await self._act(res, "start")
                except AgentError:
                    return  # reported by _act; the monitor decides what it means

    async def stop(self) -> Outcome:
        async with self.lock:
            if self.state in (GroupState.STOPPED, GroupState.BLOCKED):
                return Outcome.OK
            self.state = GroupState.STOPPING
            log.info("stopping group %s", self.key)
            if await self._stop_from(len(self.resources) - 1):
                self.state = GroupState.STOPPED
                log.info("group %s stopped", self.key)
                return Outcome.OK
            self.state = GroupState.FAILED
            return Outcome.FAILED

    async def _stop_from(self, last: int) -> bool:
        """Stop resources ``last`` down to 0; True if all stopped. A failed stop is retried
        once (Heartbeat retries too); if it still fails the group is left FAILED and held."""
        for res in reversed(self.resources[: last + 1]):
            for attempt in (1, 2):
                try:
                    await self._act(res, "stop")
                    res.state = "stopped"
                    break
                except AgentError:
                    if attempt == 2:
                        log.critical(
                            "%s will not stop: group %s stays here, unmanaged, until "
                            "'hactl resource cleanup'",
                            res.bound.name,
                            self.key,
                        )
                        return False
        return True

    async def restart_from(self, index: int) -> Outcome:
        """Restart in place: stop the failed resource and those after it, start them again."""
        async with self.lock:
            if self.state is not GroupState.STARTED:
                return Outcome.OK
            self.state = GroupState.STARTING
            for res in reversed(self.resources[index:]):
                try:
                    await self._act(res, "stop")
                    res.state = "stopped"
                except AgentError:
                    self.state = GroupState.FAILED
                    return Outcome.FAILED
            for res in self.resources[index:]:
                try:
                    await self._act(res, "start")
                    res.state = "started"
                except AgentError as err:
                    res.state = "failed"
                    self.state = GroupState.STARTED  # let stop() clean up from here
                    return (
                        Outcome.BLOCKED if isinstance(err, ConfigurationError) else Outcome.FAILED
                    )
            self.state = GroupState.STARTED
            return Outcome.OK

    async def check(self) -> int | None:
        """Run one monitor round; the index of the first failed resource, or None."""
        if self.state is not GroupState.STARTED or self.lock.locked():
            return None
        for index, res in enumerate(self.resources):
            try:
                result = await self._act(res, "monitor")
            except AgentError:
                result = OCFResult.ERR_GENERIC
            if self.state is not GroupState.STARTED:
                return None  # stopped meanwhile: the result means nothing now
            if not result.running:
                res.state = "failed"
                if result is OCFResult.NOT_RUNNING:
                    self._report(res, "monitor", result, "not running")
                return index
        return None

    def cleanup(self) -> None:
        """Forget failures (``hactl resource cleanup``): a FAILED/BLOCKED group is re-probed."""
        self.failcount = 0
        if self.state is GroupState.BLOCKED:
            self.state = GroupState.STOPPED
