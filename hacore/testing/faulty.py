"""Faulty: a Dummy that misbehaves in the ways the fault-injection tests need (issue 7).

Dummy already refuses to start (``fail_start``), fails its monitor on demand
(``fail_monitor_file``) and hangs (``hang``). Faulty adds what a buggy agent does besides:

- ``fail_stop``: stop fails (OCF 1) and the resource stays "running" (its state file stays);
- ``crash``: the named action raises an exception that is not an ``AgentError`` (a bug);
- ``exit``: the named action calls ``sys.exit`` (an agent that tries to end the process).

Its actions time out quickly (3 s), so a test of a hung agent does not wait Dummy's 20 s. It is
registered as the agent ``Faulty`` (entry point ``hacore.agents``) for the lab's daemons, which
find agents by entry point only; nothing in a production configuration should name it.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import ClassVar

from hacore.agent import Action, AgentError, Metadata, Parameter, ParamType, is_true
from hacore.testing.dummy import HANGABLE, Dummy

__all__ = ["ACTION_TIMEOUT_MS", "Faulty"]

ACTION_TIMEOUT_MS = 3_000


class Faulty(Dummy):
    metadata: ClassVar[Metadata] = dataclasses.replace(
        Dummy.metadata,
        name="Faulty",
        shortdesc="A Dummy that fails, crashes or exits on demand (tests only)",
        longdesc=(
            "Dummy's state file and test parameters, plus a stop that fails, an action that "
            "raises a bug's exception and one that calls sys.exit. Short timeouts."
        ),
        parameters=(
            *Dummy.metadata.parameters,
            Parameter(
                "fail_stop",
                "Fail to stop",
                "If true, stop fails with a generic error (OCF 1) and the state file stays.",
                type=ParamType.BOOLEAN,
                default="false",
            ),
            Parameter(
                "crash",
                "Action that raises",
                "The action that raises a RuntimeError, as a bug in an agent would.",
                type=ParamType.SELECT,
                choices=HANGABLE,
            ),
            Parameter(
                "exit",
                "Action that calls sys.exit",
                "The action that raises SystemExit, as an agent calling sys.exit() would.",
                type=ParamType.SELECT,
                choices=HANGABLE,
            ),
        ),
        actions=(
            Action("start", ACTION_TIMEOUT_MS),
            Action("stop", ACTION_TIMEOUT_MS),
            Action("monitor", ACTION_TIMEOUT_MS, interval_ms=10_000),
            Action("validate-all", ACTION_TIMEOUT_MS),
            Action("meta-data", 5_000),
        ),
    )

    async def _act(self, action: str) -> None:
        await super()._act(action)
        if self.params.get("crash") == action:
            raise RuntimeError(f"{self.instance.name}: {action} crashed (crash={action})")
        if self.params.get("exit") == action:
            sys.exit(f"{self.instance.name}: {action} called sys.exit (exit={action})")

    async def stop(self) -> None:
        if is_true(self.params.get("fail_stop")):
            await self._act("stop")
            raise AgentError(f"{self.instance.name}: stop refused (fail_stop is set)")
        await super().stop()
