"""The conformance suite every resource agent must pass: ocf-tester's checks, for Python agents.

ClusterLabs' ``ocf-tester`` turns the OCF contract into a fixed sequence of calls; this module
runs the same sequence against an ``Agent`` class and reports each step as a named check:

1. meta-data is valid OCF 1.0 XML (``xmllint --dtdvalid ra-api-1.dtd`` when xmllint and the DTD
   of Debian's resource-agents are installed, else a structural check), describes every
   parameter, and declares the mandatory actions;
2. the given parameters resolve, and ``validate`` succeeds (unimplemented is tolerated);
3. monitor of the stopped resource is NOT_RUNNING; start, monitor SUCCESS, start again (it must
   be idempotent), monitor SUCCESS, stop, monitor NOT_RUNNING, stop again (idempotent), monitor
   NOT_RUNNING; then a second start/stop cycle.

As ocf-tester runs a new process per action, every action here runs on a **new** agent object:
an agent must find its resource's state on the node, not in memory, or a restarted daemon's
probe would not see what it had started. Every action runs under its meta-data timeout (or the
``timeout`` given), and the suite never raises for what an agent does: a failure, an exception
or a hang is a failed check with a detail saying what happened.
"""

from __future__ import annotations

import asyncio
import enum
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from hacore.agent import (
    Agent,
    AgentError,
    ConfigurationError,
    Instance,
    Metadata,
    OCFResult,
)

__all__ = [
    "DTD_PATH",
    "Check",
    "ConformanceReport",
    "MetadataCheck",
    "XMLCheckMethod",
    "check_agent",
    "check_metadata_xml",
    "run_conformance",
]

# Installed by Debian's resource-agents package; ocf-tester validates against it.
DTD_PATH = Path("/usr/share/resource-agents/ra-api-1.dtd")

MANDATORY_ACTIONS = ("start", "stop", "monitor", "meta-data")

# The 1.0 DTD's enumerations, for the structural check when xmllint is not available.
_DTD_ACTIONS = frozenset(
    {
        *("start", "stop", "recover", "monitor", "restart", "migrate_to", "migrate_from"),
        *("promote", "demote", "notify", "status", "reload", "meta-data", "usage", "methods"),
        "validate-all",
    }
)
_DTD_CONTENT_TYPES = frozenset({"string", "integer", "boolean", "time"})


# -------------------------------------------------------------------------------------------------
# Meta-data XML
# -------------------------------------------------------------------------------------------------


class XMLCheckMethod(enum.StrEnum):
    DTD = "dtd"  # xmllint against ra-api-1.dtd, as ocf-tester does
    STRUCTURE = "structure"  # xml.etree and the DTD's rules re-stated here


@dataclass(frozen=True)
class MetadataCheck:
    ok: bool
    method: XMLCheckMethod
    detail: str


def check_metadata_xml(xml: str, dtd: Path = DTD_PATH) -> MetadataCheck:
    """Is ``xml`` valid OCF 1.0 meta-data? Validated with xmllint against ``dtd`` when both are
    installed (``method`` DTD), else checked structurally (``method`` STRUCTURE)."""
    xmllint = shutil.which("xmllint")
    if xmllint is None or not dtd.is_file():
        problems = _structure_problems(xml)
        missing = "xmllint" if xmllint is None else str(dtd)
        how = f"structural check only ({missing} not found)"
        detail = "; ".join(problems) if problems else how
        return MetadataCheck(not problems, XMLCheckMethod.STRUCTURE, detail)
    # Run next to the DTD, so that the document's own relative DOCTYPE resolves as well.
    done = subprocess.run(
        [xmllint, "--noout", "--nonet", "--dtdvalid", str(dtd), "-"],
        input=xml,
        capture_output=True,
        text=True,
        cwd=dtd.parent,
        timeout=30,
        check=False,
    )
    if done.returncode == 0:
        return MetadataCheck(True, XMLCheckMethod.DTD, f"valid against {dtd} (xmllint)")
    return MetadataCheck(False, XMLCheckMethod.DTD, done.stderr.strip() or done.stdout.strip())


def _structure_problems(xml: str) -> list[str]:
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as err:
        return [f"not well-formed XML: {err}"]
    problems: list[str] = []
    if root.tag != "resource-agent" or not root.get("name"):
        problems.append("the root must be <resource-agent name=...>")
    order = [child.tag for child in root]
    if order not in (
        ["version", "longdesc", "shortdesc", "parameters", "actions"],
        ["version", "longdesc", "shortdesc", "actions"],
    ):
        problems.append(
            "<resource-agent> must hold version, longdesc, shortdesc, parameters?, actions "
            f"in this order, not {', '.join(order)}"
        )
    for parameter in root.iterfind("parameters/parameter"):
        tags = [child.tag for child in parameter]
        name = parameter.get("name")
        if not name:
            problems.append("a <parameter> has no name")
        if tags[-1:] != ["content"] or "longdesc" not in tags or "shortdesc" not in tags:
            problems.append(f"parameter {name}: needs longdesc, shortdesc, then content")
        for flag in ("required", "unique"):
            if parameter.get(flag, "0") not in ("0", "1"):
                problems.append(f"parameter {name}: {flag} must be 0 or 1")
        content = parameter.find("content")
        if content is not None and content.get("type") not in _DTD_CONTENT_TYPES:
            problems.append(f"parameter {name}: content type {content.get('type')!r} not in DTD")
    for action in root.iterfind("actions/action"):
        if action.get("name") not in _DTD_ACTIONS:
            problems.append(f"action {action.get('name')!r} is not an OCF 1.0 action name")
        if not action.get("timeout"):
            problems.append(f"action {action.get('name')!r} has no timeout")
    return problems


# -------------------------------------------------------------------------------------------------
# The report
# -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One named check: ``name`` is a stable identifier, ``description`` what must hold."""

    name: str
    description: str
    passed: bool
    detail: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class ConformanceReport:
    agent: str
    instance: str
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def check(self, name: str) -> Check:
        """The check called ``name``; KeyError if the suite stopped before running it."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check '{name}' in the report (ran: {self.names()})")

    def names(self) -> str:
        return ", ".join(c.name for c in self.checks)

    def render(self) -> str:
        """ocf-tester's verdict, then one line per check."""
        failed = len(self.failures)
        verdict = "passed all checks" if self.passed else f"failed {failed} check(s)"
        lines = [f"{self.agent} (instance '{self.instance}'): {verdict}"]
        for c in self.checks:
            mark = "ok  " if c.passed else "FAIL"
            detail = f": {c.detail}" if c.detail else ""
            lines.append(f"  {mark} {c.name} — {c.description}{detail}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


# -------------------------------------------------------------------------------------------------
# Running the suite
# -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    name: str
    action: str
    expect: OCFResult
    description: str


_NR, _OK = OCFResult.NOT_RUNNING, OCFResult.SUCCESS

# ocf-tester's sequence (reference 4.5, step 9 and the probe of step 5), one check per call.
_SEQUENCE = (
    _Step("probe", "monitor", _NR, "monitor of the stopped resource returns NOT_RUNNING"),
    _Step("start", "start", _OK, "start succeeds"),
    _Step("monitor_started", "monitor", _OK, "monitor after start returns SUCCESS"),
    _Step("start_again", "start", _OK, "start of a started resource succeeds"),
    _Step("monitor_started_again", "monitor", _OK, "monitor after start again returns SUCCESS"),
    _Step("stop", "stop", _OK, "stop succeeds"),
    _Step("monitor_stopped", "monitor", _NR, "monitor after stop returns NOT_RUNNING"),
    _Step("stop_again", "stop", _OK, "stop of a stopped resource succeeds"),
    _Step("monitor_stopped_again", "monitor", _NR, "monitor after stop again: NOT_RUNNING"),
    _Step("restart", "start", _OK, "start succeeds again (second cycle)"),
    _Step("monitor_restarted", "monitor", _OK, "monitor after the restart returns SUCCESS"),
    _Step("stop_restarted", "stop", _OK, "stop succeeds again (second cycle)"),
    _Step("monitor_final", "monitor", _NR, "monitor after the last stop returns NOT_RUNNING"),
)


@dataclass(frozen=True)
class _Outcome:
    result: OCFResult | None  # None: no OCF result (timeout, unexpected exception)
    detail: str
    seconds: float


class _Suite:
    def __init__(
        self, agent_cls: type[Agent], instance: str, timeout: float | None, meta: Metadata
    ) -> None:
        self.agent_cls = agent_cls
        self.instance = instance
        self.timeout = timeout
        self.meta = meta
        self.params: dict[str, str] = {}
        self.checks: list[Check] = []

    def record(self, name: str, description: str, passed: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, description, passed, detail))
        return passed

    def check_metadata(self, xml: MetadataCheck) -> None:
        self.record("metadata_xml", "meta-data is valid OCF 1.0 XML", xml.ok, xml.detail)
        undescribed = [p.name for p in self.meta.parameters if not p.shortdesc.strip()]
        if not self.meta.shortdesc.strip():
            undescribed.insert(0, "(the agent itself)")
        self.record(
            "metadata_descriptions",
            "the agent and every parameter have a description",
            not undescribed,
            f"no shortdesc: {', '.join(undescribed)}" if undescribed else "",
        )
        missing = [a for a in MANDATORY_ACTIONS if self.meta.action(a) is None]
        untimed = [a.name for a in self.meta.actions if a.timeout_ms <= 0]
        problems = ([f"missing: {', '.join(missing)}"] if missing else []) + (
            [f"no positive timeout: {', '.join(untimed)}"] if untimed else []
        )
        self.record(
            "metadata_actions",
            f"meta-data declares {', '.join(MANDATORY_ACTIONS)}, each with a timeout",
            not problems,
            "; ".join(problems),
        )

    def resolve(self, params: Mapping[str, str]) -> bool:
        try:
            self.params = self.agent_cls.resolve(params)
        except ConfigurationError as err:
            # ocf-tester: "Did you supply enough options with -o ?"
            return self.record("parameters", "the parameters resolve", False, str(err))
        except Exception as err:
            detail = f"resolve() raised {type(err).__name__} (not a ConfigurationError): {err}"
            return self.record("parameters", "the parameters resolve", False, detail)
        return self.record("parameters", "the parameters resolve", True)

    async def run(self, action: str) -> _Outcome:
        """One action on a new agent object, under its timeout; never raises."""
        seconds = self.timeout
        if seconds is None:
            seconds = self.meta.timeout_ms(action) / 1000
        began = time.monotonic()

        def outcome(result: OCFResult | None, detail: str = "") -> _Outcome:
            return _Outcome(result, detail, time.monotonic() - began)

        deadline: asyncio.Timeout | None = None
        try:
            agent = self.agent_cls(Instance(self.instance, dict(self.params)))
            async with asyncio.timeout(seconds) as deadline:
                value = await _invoke(agent, action)
        except AgentError as err:
            return outcome(err.result, f"raised {_describe(err)}")
        except TimeoutError as err:
            if deadline is not None and deadline.expired():
                return outcome(None, f"timed out after {seconds:g} s")
            return outcome(None, f"raised {type(err).__name__}: {err}")
        except Exception as err:
            return outcome(None, f"raised {type(err).__name__} (not an AgentError): {err}")
        if action != "monitor":
            return outcome(OCFResult.SUCCESS)
        if not isinstance(value, OCFResult):
            return outcome(None, f"returned {value!r}, not an OCFResult")
        return outcome(value, f"returned {value.name}")

    async def validate(self) -> bool:
        done = await self.run("validate-all")
        tolerated = done.result is OCFResult.ERR_UNIMPLEMENTED  # as ocf-tester tolerates 3
        passed = done.result is OCFResult.SUCCESS or tolerated
        detail = "not implemented (tolerated, as by ocf-tester)" if tolerated else done.detail
        self.checks.append(Check("validate", "validate succeeds", passed, detail, done.seconds))
        return passed

    async def step(self, step: _Step) -> None:
        done = await self.run(step.action)
        # OCF 1.1: a degraded resource is running; the probe accepts only NOT_RUNNING.
        passed = done.result is step.expect or (
            step.expect is OCFResult.SUCCESS and done.result is not None and done.result.running
        )
        # What a passing step returned is its description; what a failing one did is news.
        detail = "" if passed else done.detail
        self.checks.append(Check(step.name, step.description, passed, detail, done.seconds))


async def _invoke(agent: Agent, action: str) -> OCFResult | None:
    if action == "monitor":
        return await agent.monitor()
    if action == "start":
        await agent.start()
    elif action == "stop":
        await agent.stop()
    elif action == "validate-all":
        await agent.validate()
    else:
        raise ValueError(f"the suite has no action {action!r}")
    return None


def _describe(err: AgentError) -> str:
    return f"{type(err).__name__} (OCF {int(err.result)} {err.result.name}): {err}"


async def check_agent(
    agent_cls: type[Agent],
    params: Mapping[str, str],
    instance: str = "conformance",
    *,
    timeout: float | None = None,
) -> ConformanceReport:
    """Run the conformance suite on ``agent_cls`` configured with ``params``.

    ``timeout`` (seconds) replaces every action's meta-data timeout: a test of a hanging agent
    sets it low. The suite stops early only where ocf-tester does (meta-data missing, parameters
    that do not resolve, validate failing); otherwise every step runs and is reported, and a
    resource left running by a failed step is stopped, best effort, at the end.

    The actions are real: like ocf-tester, point it only at a resource this node may start and
    stop (one already running is stopped first, as ocf-tester's clean-up does).
    """
    name = getattr(agent_cls, "__name__", repr(agent_cls))
    meta = getattr(agent_cls, "metadata", None)
    if not isinstance(meta, Metadata):
        check = Check(
            "metadata_xml", "the agent has meta-data", False, f"{name}.metadata: {meta!r}"
        )
        return ConformanceReport(name, instance, (check,))
    suite = _Suite(agent_cls, instance, timeout, meta)
    try:
        xml = meta.to_xml()
    except Exception as err:
        xml_check = MetadataCheck(False, XMLCheckMethod.STRUCTURE, f"to_xml() raised {err!r}")
    else:
        xml_check = await asyncio.to_thread(check_metadata_xml, xml)
    suite.check_metadata(xml_check)
    if suite.resolve(params) and await suite.validate():
        # ocf-tester's clean-up before it starts: whatever a previous run left is stopped.
        if (await suite.run("monitor")).result is not OCFResult.NOT_RUNNING:
            await suite.run("stop")
        for step in _SEQUENCE:
            await suite.step(step)
        if not all(c.passed for c in suite.checks[-len(_SEQUENCE) :]):
            await suite.run("stop")
    return ConformanceReport(meta.name, instance, tuple(suite.checks))


def run_conformance(
    agent_cls: type[Agent],
    params: Mapping[str, str],
    instance: str = "conformance",
    *,
    timeout: float | None = None,
) -> ConformanceReport:
    """``check_agent`` for synchronous callers (not from inside a running event loop)."""
    return asyncio.run(check_agent(agent_cls, params, instance, timeout=timeout))
