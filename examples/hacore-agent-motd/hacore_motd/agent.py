"""The ``Motd`` agent: a message-of-the-day banner that says "this node serves the cluster".

Put it last in a group (``pc1 IPaddr::203.0.113.55/24/eth0 apache Motd``) and whoever logs in
to the node that holds the group reads so at once. The resource is one file: running while the
file holds the message, stopped while it is absent. Small, but a complete agent: meta-data,
idempotent start and stop, a monitor that tells running, stopped and broken apart, and a
validate that refuses parameters that can never work.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import ClassVar

from hacore.agent import (
    Action,
    Agent,
    AgentError,
    ArgumentError,
    ConfigurationError,
    Metadata,
    OCFResult,
    Parameter,
)

DEFAULT_PATH = "/run/motd.d/hacore"  # pam_motd shows every file of /run/motd.d at login
DEFAULT_MESSAGE = "This node holds the cluster's resources (hacore)."


class Motd(Agent):
    metadata: ClassVar[Metadata] = Metadata(
        name="Motd",
        shortdesc="A login banner on the node that holds the group",
        longdesc=(
            "Writes a message of the day to a file while the resource runs and removes it when "
            "it stops, so that whoever logs in to the node that holds the group is told."
        ),
        parameters=(
            Parameter(
                "path",
                "Banner file",
                "Absolute path of the file that holds the message while the resource runs "
                f"(default {DEFAULT_PATH}; pam_motd shows the files of /run/motd.d).",
                default=DEFAULT_PATH,
                unique=True,
            ),
            Parameter(
                "message",
                "The message",
                "One line of text written to the file.",
                default=DEFAULT_MESSAGE,
            ),
        ),
        actions=(
            Action("start", 10_000),
            Action("stop", 10_000),
            Action("monitor", 10_000, interval_ms=30_000),
            Action("validate-all", 10_000),
            Action("meta-data", 5_000),
        ),
        positional=("path",),
    )

    @property
    def path(self) -> Path:
        return Path(self.params["path"])

    @property
    def text(self) -> str:
        return self.params["message"] + "\n"

    async def start(self) -> None:
        # File I/O goes to a thread: the agent runs in the daemon's event loop.
        await asyncio.to_thread(self._write)

    async def stop(self) -> None:
        await asyncio.to_thread(self.path.unlink, missing_ok=True)  # stopped stops fine

    async def monitor(self, depth: int = 0) -> OCFResult:
        try:
            found = await asyncio.to_thread(self.path.read_text)
        except FileNotFoundError:
            return OCFResult.NOT_RUNNING
        except OSError as err:
            raise AgentError(f"{self.path}: {err.strerror}") from None
        if found != self.text:
            # Somebody else's file, or ours overwritten: neither running nor cleanly stopped.
            raise AgentError(f"{self.path} does not hold the message any more")
        return OCFResult.SUCCESS

    async def validate(self) -> None:
        if not self.path.is_absolute():
            raise ConfigurationError(f"path '{self.path}' is not absolute")
        if "\n" in self.params["message"] or not self.params["message"].strip():
            raise ConfigurationError("message must be one line of text")
        if self.path.parent.exists() and not self.path.parent.is_dir():
            raise ArgumentError(f"{self.path.parent} is not a directory on this node")

    def _write(self) -> None:
        """Write the whole message or nothing: a login never shows half a banner."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            partial.write_text(self.text)
            partial.chmod(0o644)
            partial.replace(self.path)  # starting a started resource rewrites the same text
        except OSError as err:
            partial.unlink(missing_ok=True)
            raise AgentError(f"{self.path}: {err.strerror}") from None
