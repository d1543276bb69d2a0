"""The conformance suite (hacore.testing): what passes, what fails which check, and how fast."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from hacore.agent import AgentError, ConfigurationError, Metadata, OCFResult, Parameter
from hacore.testing import ConformanceReport, Dummy, run_conformance
from hacore.testing.conformance import XMLCheckMethod, check_metadata_xml
from hacore.testing.pytest_plugin import AgentConformance

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def rsctmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test's Dummy state files in a directory of its own."""
    path = tmp_path / "rsctmp"
    monkeypatch.setenv("HACORE_RSCTMP", str(path))
    return path


def failed(report: ConformanceReport) -> list[str]:
    return [c.name for c in report.failures]


class StopNotIdempotent(Dummy):
    async def stop(self) -> None:
        if not self.state_file.exists():
            raise AgentError(f"{self.state_file} does not exist")
        await super().stop()


class StartNotIdempotent(Dummy):
    async def start(self) -> None:
        if self.state_file.exists():
            raise AgentError("already running")
        await super().start()


class AlwaysRunning(Dummy):
    async def monitor(self, depth: int = 0) -> OCFResult:
        return OCFResult.SUCCESS


class StateInMemory(Dummy):
    """Keeps its state on the object: a new daemon (a new object) would not see it running."""

    running = False

    async def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        self.running = False

    async def monitor(self, depth: int = 0) -> OCFResult:
        return OCFResult.SUCCESS if self.running else OCFResult.NOT_RUNNING


class Crashes(Dummy):
    async def start(self) -> None:
        raise ZeroDivisionError("division by zero")


class InvalidOnThisNode(Dummy):
    async def validate(self) -> None:
        raise ConfigurationError("no such interface: eth9")


def test_dummy_passes_through_the_pytest_fixture(agent_conformance: AgentConformance) -> None:
    report = agent_conformance(Dummy, {})

    assert report.passed
    assert [c.name for c in report.checks] == [
        "metadata_xml",
        "metadata_descriptions",
        "metadata_actions",
        "parameters",
        "validate",
        "probe",
        "start",
        "monitor_started",
        "start_again",
        "monitor_started_again",
        "stop",
        "monitor_stopped",
        "stop_again",
        "monitor_stopped_again",
        "restart",
        "monitor_restarted",
        "stop_restarted",
        "monitor_final",
    ]


def test_dummy_passes_with_an_explicit_state_file(tmp_path: Path) -> None:
    state = tmp_path / "deep" / "dir" / "dummy.state"

    report = run_conformance(Dummy, {"state": str(state)})

    assert report.passed, report.render()
    assert not state.exists()


def test_a_stop_that_fails_when_stopped_fails_only_the_idempotency_check() -> None:
    report = run_conformance(StopNotIdempotent, {})

    assert failed(report) == ["stop_again"]
    assert report.check("stop_again").detail.startswith("raised AgentError (OCF 1 ERR_GENERIC): ")


def test_a_start_that_fails_when_started_fails_the_idempotency_check() -> None:
    report = run_conformance(StartNotIdempotent, {})

    assert failed(report) == ["start_again"]


def test_a_monitor_that_cannot_tell_stopped_from_running_fails_the_stopped_checks() -> None:
    report = run_conformance(AlwaysRunning, {})

    assert failed(report) == ["probe", "monitor_stopped", "monitor_stopped_again", "monitor_final"]
    assert report.check("probe").detail == "returned SUCCESS"


def test_state_kept_in_the_agent_object_is_not_state() -> None:
    report = run_conformance(StateInMemory, {})

    assert "monitor_started" in failed(report)


def test_an_unexpected_exception_is_reported_not_raised() -> None:
    report = run_conformance(Crashes, {})

    assert report.check("start").detail == (
        "raised ZeroDivisionError (not an AgentError): division by zero"
    )
    assert not report.passed


def test_a_hanging_action_is_reported_as_a_timeout_quickly() -> None:
    began = time.monotonic()

    report = run_conformance(Dummy, {"hang": "stop"}, timeout=0.05)

    assert time.monotonic() - began < 2
    assert report.check("stop").detail == "timed out after 0.05 s"
    assert "stop_again" in failed(report)
    assert report.check("start").passed


def test_missing_parameters_stop_the_suite_before_any_action() -> None:
    class NeedsIp(Dummy):
        metadata = Metadata(
            "NeedsIp",
            "Needs an address",
            parameters=(*Dummy.metadata.parameters, Parameter("ip", "The address", required=True)),
        )

    report = run_conformance(NeedsIp, {})

    assert failed(report) == ["parameters"]
    assert report.check("parameters").detail == "NeedsIp: parameter 'ip' is required"
    with pytest.raises(KeyError, match="no check 'start'"):
        report.check("start")


def test_a_failing_validate_stops_the_suite() -> None:
    report = run_conformance(InvalidOnThisNode, {})

    assert failed(report) == ["validate"]
    assert "ConfigurationError (OCF 6 ERR_CONFIGURED): no such interface: eth9" in (
        report.check("validate").detail
    )
    assert report.checks[-1].name == "validate"


def test_a_parameter_without_description_is_reported() -> None:
    class Undocumented(Dummy):
        metadata = Metadata("Undocumented", "Undocumented", parameters=(Parameter("x", " "),))

    report = run_conformance(Undocumented, {})

    assert failed(report) == ["metadata_descriptions"]
    assert report.check("metadata_descriptions").detail == "no shortdesc: x"


def test_a_resource_left_running_by_a_failed_step_is_stopped_at_the_end(rsctmp: Path) -> None:
    class ThirdStopFails(Dummy):
        stops = 0  # on the class: the suite makes a new agent object for every action

        async def stop(self) -> None:
            type(self).stops += 1
            if type(self).stops == 3:
                raise AgentError("stuck")
            await super().stop()

    report = run_conformance(ThirdStopFails, {})

    assert failed(report) == ["stop_restarted", "monitor_final"]
    assert ThirdStopFails.stops == 4
    assert not any(rsctmp.glob("*.state"))


def test_the_report_reads_like_ocf_tester() -> None:
    text = run_conformance(StopNotIdempotent, {}).render()

    assert text.splitlines()[0] == "Dummy (instance 'conformance'): failed 1 check(s)"
    assert "  FAIL stop_again — stop of a stopped resource succeeds: raised AgentError" in text
    assert "  ok   start — start succeeds" in text


def test_the_fixture_fails_the_test_with_the_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from hacore.agent import AgentError
        from hacore.testing import Dummy

        class Sloppy(Dummy):
            async def stop(self):
                if not self.state_file.exists():
                    raise AgentError("not running")
                await super().stop()

        def test_sloppy(agent_conformance):
            agent_conformance(Sloppy, {})
        """
    )

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*Dummy (instance 'conformance'): failed 1 check(s)",
            "*FAIL stop_again — stop of a stopped resource succeeds: raised AgentError*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


# -------------------------------------------------------------------------------------------------
# Meta-data validation, with and without the DTD
# -------------------------------------------------------------------------------------------------

BAD_ACTION = Dummy.metadata.to_xml().replace('"validate-all"', '"validate"')


def test_without_the_dtd_the_structure_is_checked_and_the_report_says_so(tmp_path: Path) -> None:
    verdict = check_metadata_xml(Dummy.metadata.to_xml(), dtd=tmp_path / "ra-api-1.dtd")

    assert verdict.ok
    assert verdict.method is XMLCheckMethod.STRUCTURE
    assert verdict.detail.startswith("structural check only (")


def test_the_structural_check_finds_what_the_dtd_forbids(tmp_path: Path) -> None:
    verdict = check_metadata_xml(BAD_ACTION, dtd=tmp_path / "ra-api-1.dtd")

    assert not verdict.ok
    assert verdict.detail == "action 'validate' is not an OCF 1.0 action name"


def test_the_structural_check_finds_broken_xml(tmp_path: Path) -> None:
    verdict = check_metadata_xml("<resource-agent", dtd=tmp_path / "ra-api-1.dtd")

    assert not verdict.ok
    assert verdict.detail.startswith("not well-formed XML: ")


def test_the_dtd_check_finds_an_action_name_the_dtd_does_not_allow() -> None:
    if os.environ.get("HACORE_NO_DTD") == "1":
        pytest.skip("HACORE_NO_DTD=1: no xmllint and ra-api-1.dtd on this machine")

    verdict = check_metadata_xml(BAD_ACTION)

    assert (verdict.ok, verdict.method) == (False, XMLCheckMethod.DTD)
    assert 'Value "validate" for attribute name of action is not among the enumerated set' in (
        verdict.detail
    )
