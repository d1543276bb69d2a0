"""hacore's pytest plugin (entry point ``pytest11``): fixtures for agent authors' own tests.

Installed with hacore, so an agent distribution's tests can simply ask for the fixture::

    def test_my_agent_conforms(agent_conformance):
        agent_conformance(MyAgent, {"path": "/srv/data"})
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import pytest

from hacore.agent import Agent
from hacore.testing.conformance import ConformanceReport, run_conformance


class AgentConformance(Protocol):
    def __call__(
        self,
        agent_cls: type[Agent],
        params: Mapping[str, str],
        instance: str = "conformance",
        *,
        timeout: float | None = None,
    ) -> ConformanceReport: ...


@pytest.fixture
def agent_conformance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AgentConformance:
    """Run the conformance suite on an agent and fail the test, with the report, if it fails.

    Call it as ``agent_conformance(MyAgent, params)`` (``instance=`` and ``timeout=`` as for
    ``hacore.testing.check_agent``); it returns the report when every check passed. State files
    go to a fresh ``$HACORE_RSCTMP`` under the test's tmp_path, so tests never share a resource.
    """
    monkeypatch.setenv("HACORE_RSCTMP", str(tmp_path / "rsctmp"))

    def run(
        agent_cls: type[Agent],
        params: Mapping[str, str],
        instance: str = "conformance",
        *,
        timeout: float | None = None,
    ) -> ConformanceReport:
        report = run_conformance(agent_cls, params, instance, timeout=timeout)
        if not report.passed:
            pytest.fail(report.render(), pytrace=False)
        return report

    return run
