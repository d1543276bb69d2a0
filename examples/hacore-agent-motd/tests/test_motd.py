"""The Motd agent: the conformance kit (hacore's pytest plugin), then its own behaviour."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hacore.agent import AgentError, ConfigurationError, Instance, OCFResult
from hacore.testing.pytest_plugin import AgentConformance

from hacore_motd import Motd


def test_motd_passes_the_conformance_kit(
    agent_conformance: AgentConformance, tmp_path: Path
) -> None:
    report = agent_conformance(Motd, {"path": str(tmp_path / "motd.d" / "hacore")})
    assert report.passed


def _agent(path: Path, **params: str) -> Motd:
    # As the core does: the parameters are resolved (defaults filled in) before the agent is made.
    return Motd(Instance("motd", Motd.resolve({"path": str(path), **params})))


def test_a_running_motd_holds_the_message_and_stop_removes_it(tmp_path: Path) -> None:
    path = tmp_path / "motd"
    agent = _agent(path, message="pc1 serves www")
    asyncio.run(agent.start())
    assert path.read_text() == "pc1 serves www\n"
    asyncio.run(agent.stop())
    assert not path.exists()


def test_a_banner_overwritten_by_someone_else_is_a_failure_not_a_stop(tmp_path: Path) -> None:
    path = tmp_path / "motd"
    agent = _agent(path)
    asyncio.run(agent.start())
    path.write_text("something else\n")
    with pytest.raises(AgentError, match="does not hold the message"):
        asyncio.run(agent.monitor())
    asyncio.run(agent.stop())
    assert asyncio.run(agent.monitor()) is OCFResult.NOT_RUNNING


def test_a_relative_path_can_never_work_and_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not absolute"):
        asyncio.run(_agent(Path("motd")).validate())
