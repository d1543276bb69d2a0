"""Dummy: the agent that manages nothing but a state file, like ClusterLabs' heartbeat/Dummy.

It is hacore's no-op driver: the resource manager's tests use it to start, stop and fail
resources without touching the network, and its test parameters make it misbehave on demand:
``fail_start`` refuses to start, ``fail_monitor_file`` makes monitor fail while that file
exists (so a test can break a running resource from outside), ``hang`` makes one action never
return (to test the core's timeouts) and ``op_sleep`` makes every action slow.
"""

from __future__ import annotations

import asyncio
import math
import os
from pathlib import Path
from typing import ClassVar

from hacore.agent import (
    Action,
    Agent,
    AgentError,
    ArgumentError,
    ConfigurationError,
    Instance,
    Metadata,
    OCFResult,
    Parameter,
    ParamType,
    is_true,
)

__all__ = ["DEFAULT_RSCTMP", "Dummy", "rsctmp"]

# Heartbeat's HA_RSCTMP: cleared at boot, so a state file never outlives the machine's uptime,
# just as the resource it stands for does not.
DEFAULT_RSCTMP = Path("/run/resource-agents")

HANGABLE = ("start", "stop", "monitor", "validate-all")


def rsctmp() -> Path:
    """Where agents keep state files: ``$HACORE_RSCTMP``, else /run/resource-agents."""
    return Path(os.environ.get("HACORE_RSCTMP") or DEFAULT_RSCTMP)


class Dummy(Agent):
    """A resource that is "running" while its state file exists."""

    metadata: ClassVar[Metadata] = Metadata(
        name="Dummy",
        shortdesc="Example stateless resource agent",
        longdesc=(
            "A resource that does nothing but keep a state file: running while the file exists. "
            "Its test parameters make it fail or hang on demand, for testing the cluster."
        ),
        parameters=(
            Parameter(
                "state",
                "State file",
                "Location of the state file. Default: $HACORE_RSCTMP (else "
                "/run/resource-agents)/Dummy-<instance>.state.",
                unique=True,
            ),
            Parameter(
                "fake",
                "Fake attribute",
                "An attribute with no effect: changing it changes the resource's definition.",
                default="dummy",
            ),
            Parameter(
                "op_sleep",
                "Operation sleep duration in seconds",
                "Seconds (a fraction is allowed) that every action sleeps before doing its work, "
                "to simulate a slow resource.",
                default="0",
            ),
            Parameter(
                "fail_start",
                "Fail to start",
                "If true, start fails with a generic error (OCF 1) and the resource stays stopped.",
                type=ParamType.BOOLEAN,
                default="false",
            ),
            Parameter(
                "fail_monitor_file",
                "Monitor failure trigger",
                "While this file exists, monitor fails with a generic error (OCF 1): create it to "
                "simulate a resource that broke while running.",
            ),
            Parameter(
                "hang",
                "Action that never returns",
                f"The action ({', '.join(HANGABLE)}) that never returns, to test the timeouts "
                "the cluster enforces.",
                type=ParamType.SELECT,
                choices=HANGABLE,
            ),
        ),
        actions=(
            Action("start", 20_000),
            Action("stop", 20_000),
            Action("monitor", 20_000, interval_ms=10_000),
            Action("validate-all", 20_000),
            Action("meta-data", 5_000),
        ),
        positional=("state",),
    )

    def __init__(self, instance: Instance) -> None:
        super().__init__(instance)
        self.state_file = Path(
            self.params.get("state") or rsctmp() / f"Dummy-{instance.name}.state"
        )

    async def start(self) -> None:
        await self._act("start")
        if self.state_file.exists():
            return
        if is_true(self.params.get("fail_start")):
            raise AgentError(f"{self.instance.name}: start refused (fail_start is set)")
        # A touch on local storage is too quick to be worth a thread.
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.touch()

    async def stop(self) -> None:
        await self._act("stop")
        self.state_file.unlink(missing_ok=True)

    async def monitor(self, depth: int = 0) -> OCFResult:
        await self._act("monitor")
        trigger = self.params.get("fail_monitor_file")
        if trigger and Path(trigger).exists():
            raise AgentError(f"{self.instance.name}: monitor failed ({trigger} exists)")
        return OCFResult.SUCCESS if self.state_file.exists() else OCFResult.NOT_RUNNING

    async def validate(self) -> None:
        await self._act("validate-all")
        directory = self.state_file.parent
        # Like heartbeat/Dummy: the state directory must be usable on this node (OCF 2 if not).
        existing = next((d for d in (directory, *directory.parents) if d.exists()), None)
        if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise ArgumentError(
                f"{self.instance.name}: state file {self.state_file} is not writable"
            )

    async def _act(self, action: str) -> None:
        """What every action does first: the configured delay, or hanging for good."""
        await asyncio.sleep(self._op_sleep())
        if self.params.get("hang") == action:
            await asyncio.Event().wait()  # until the caller's timeout cancels us

    def _op_sleep(self) -> float:
        value = self.params.get("op_sleep", "0")
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ConfigurationError(
                f"{self.instance.name}: op_sleep must be a number of seconds, not '{value}'"
            )
        return seconds
