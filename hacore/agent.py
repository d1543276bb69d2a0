"""The resource-agent contract: what every agent (built in, plugin, or bridged shell script) is.

It mirrors OCF: actions ``start``, ``stop``, ``monitor(depth)``, ``validate`` and declarative
meta-data; results are OCF's exit codes. Agents are asynchronous and must not block the event
loop (blocking work goes to a thread or a subprocess); the resource manager, not the agent,
enforces every action's timeout.

Outcomes travel as exceptions so that an agent's happy path reads straight: ``start`` returns
when the resource runs, ``stop`` when it does not, ``monitor`` returns SUCCESS or NOT_RUNNING,
and anything else is raised as an ``AgentError`` whose class says what recovery fits:
``ConfigurationError`` (do not fail over: it would fail everywhere), ``NotInstalledError`` (try
another node), any other ``AgentError`` (retry, then fail over).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar
from xml.sax.saxutils import escape, quoteattr


class OCFResult(enum.IntEnum):
    """OCF exit codes (resource-agents names; Pacemaker's in the comments)."""

    SUCCESS = 0  # PCMK_OCF_OK; for monitor: running
    ERR_GENERIC = 1  # PCMK_OCF_UNKNOWN_ERROR
    ERR_ARGS = 2  # PCMK_OCF_INVALID_PARAM: invalid on this host
    ERR_UNIMPLEMENTED = 3
    ERR_PERM = 4
    ERR_INSTALLED = 5  # required software missing on this node
    ERR_CONFIGURED = 6  # parameters inherently invalid: never start anywhere
    NOT_RUNNING = 7  # monitor: cleanly stopped
    RUNNING_PROMOTED = 8
    FAILED_PROMOTED = 9
    DEGRADED = 190
    DEGRADED_PROMOTED = 191

    @property
    def running(self) -> bool:
        """For a monitor result: is the resource up (possibly degraded)?"""
        return self in (
            OCFResult.SUCCESS,
            OCFResult.DEGRADED,
            OCFResult.RUNNING_PROMOTED,
            OCFResult.DEGRADED_PROMOTED,
        )


class AgentError(Exception):
    """An action failed. ``result`` is the OCF code it stands for."""

    result: OCFResult = OCFResult.ERR_GENERIC

    def __init__(self, message: str, result: OCFResult | None = None) -> None:
        super().__init__(message)
        if result is not None:
            self.result = result

    @classmethod
    def from_result(cls, result: OCFResult, message: str) -> AgentError:
        """The exception class that fits an OCF code (for agents that speak exit codes)."""
        for kind in (
            ConfigurationError,
            ArgumentError,
            NotInstalledError,
            PrivilegeError,
            UnimplementedError,
        ):
            if kind.result is result:
                return kind(message)
        return AgentError(message, result)


class ConfigurationError(AgentError):
    """The parameters can never work (OCF 6): the group is not failed over, a person must act."""

    result = OCFResult.ERR_CONFIGURED


class ArgumentError(AgentError):
    """The parameters do not work on this node (OCF 2)."""

    result = OCFResult.ERR_ARGS


class NotInstalledError(AgentError):
    """Software the agent needs is missing on this node (OCF 5): another node may do better."""

    result = OCFResult.ERR_INSTALLED


class PrivilegeError(AgentError):
    result = OCFResult.ERR_PERM


class UnimplementedError(AgentError):
    result = OCFResult.ERR_UNIMPLEMENTED


class ParamType(enum.StrEnum):
    STRING = "string"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    SELECT = "select"


@dataclass(frozen=True)
class Parameter:
    name: str
    shortdesc: str
    longdesc: str = ""
    type: ParamType = ParamType.STRING
    default: str | None = None
    required: bool = False
    unique: bool = False
    choices: tuple[str, ...] = ()

    def check(self, value: str) -> str | None:
        """Why ``value`` is not acceptable for this parameter, or None."""
        if self.type is ParamType.INTEGER:
            try:
                int(value)
            except ValueError:
                return f"parameter '{self.name}' must be an integer, not '{value}'"
        elif self.type is ParamType.BOOLEAN:
            if value.lower() not in _BOOLEANS:
                return f"parameter '{self.name}' must be a boolean (yes/no), not '{value}'"
        elif self.type is ParamType.SELECT and value not in self.choices:
            return (
                f"parameter '{self.name}' must be one of {', '.join(self.choices)}, not '{value}'"
            )
        return None


_BOOLEANS = {"1", "0", "true", "false", "yes", "no", "on", "off", "y", "n"}


def is_true(value: str | None) -> bool:
    """OCF's boolean spelling (``ocf_is_true``)."""
    return (value or "").lower() in {"1", "true", "yes", "on", "y"}


@dataclass(frozen=True)
class Action:
    name: str
    timeout_ms: int
    interval_ms: int = 0
    depth: int = 0


@dataclass(frozen=True)
class Metadata:
    """What ``meta-data`` describes. ``positional`` names the parameters that haresources'
    ``Agent::a::b`` arguments fill, in order."""

    name: str
    shortdesc: str
    longdesc: str = ""
    version: str = "1.0"
    parameters: tuple[Parameter, ...] = ()
    actions: tuple[Action, ...] = (
        Action("start", 20_000),
        Action("stop", 20_000),
        Action("monitor", 20_000, interval_ms=10_000),
        Action("validate-all", 20_000),
        Action("meta-data", 5_000),
    )
    positional: tuple[str, ...] = ()

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def action(self, name: str) -> Action | None:
        return next((a for a in self.actions if a.name == name), None)

    def timeout_ms(self, action: str, default: int = 20_000) -> int:
        found = self.action(action)
        return found.timeout_ms if found else default

    def to_xml(self) -> str:
        """OCF 1.0 meta-data XML (valid against resource-agents' ra-api-1.dtd)."""
        out = [
            '<?xml version="1.0"?>',
            '<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">',
            f"<resource-agent name={quoteattr(self.name)} version={quoteattr(self.version)}>",
            "<version>1.0</version>",
            f'<longdesc lang="en">{escape(self.longdesc or self.shortdesc)}</longdesc>',
            f'<shortdesc lang="en">{escape(self.shortdesc)}</shortdesc>',
            "<parameters>",
        ]
        for p in self.parameters:
            out.append(
                f'<parameter name={quoteattr(p.name)} unique="{int(p.unique)}" '
                f'required="{int(p.required)}">'
            )
            out.append(f'<longdesc lang="en">{escape(p.longdesc or p.shortdesc)}</longdesc>')
            out.append(f'<shortdesc lang="en">{escape(p.shortdesc)}</shortdesc>')
            # The 1.0 DTD knows string/integer/boolean; a select is a string with a list of values.
            ctype = "string" if p.type is ParamType.SELECT else p.type.value
            default = f" default={quoteattr(p.default)}" if p.default is not None else ""
            out.append(f'<content type="{ctype}"{default}/>')
            out.append("</parameter>")
        out += ["</parameters>", "<actions>"]
        for a in self.actions:
            attrs = f'name="{a.name}" timeout="{_seconds(a.timeout_ms)}"'
            if a.interval_ms:
                attrs += f' interval="{_seconds(a.interval_ms)}" depth="{a.depth}"'
            out.append(f"<action {attrs}/>")
        out += ["</actions>", "</resource-agent>", ""]
        return "\n".join(out)


def _seconds(ms: int) -> str:
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


@dataclass
class Instance:
    """How a resource appears to its agent: a unique instance name and its parameters (every
    declared parameter present, defaults applied)."""

    name: str
    params: dict[str, str] = field(default_factory=dict)


class Agent(ABC):
    """Base class of every resource agent. Subclasses set ``metadata`` and the four actions."""

    metadata: ClassVar[Metadata]

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.params = instance.params

    @classmethod
    def parse_args(cls, args: Sequence[str]) -> dict[str, str]:
        """Map haresources positional arguments onto named parameters (override for packed
        forms such as IPaddr's ``ip/cidr/nic``)."""
        names = cls.metadata.positional
        if len(args) > len(names):
            raise ConfigurationError(
                f"{cls.metadata.name} takes at most {len(names)} argument(s) "
                f"({', '.join(names) or 'none'}), got {len(args)}"
            )
        return dict(zip(names, args, strict=False))

    @classmethod
    def resolve(cls, params: Mapping[str, str]) -> dict[str, str]:
        """Check ``params`` against the meta-data and fill in defaults; raises
        ConfigurationError naming the first problem."""
        meta = cls.metadata
        unknown = sorted(set(params) - {p.name for p in meta.parameters})
        if unknown:
            raise ConfigurationError(f"{meta.name}: unknown parameter '{unknown[0]}'")
        out: dict[str, str] = {}
        for p in meta.parameters:
            value = params.get(p.name, p.default)
            if value is None:
                if p.required:
                    raise ConfigurationError(f"{meta.name}: parameter '{p.name}' is required")
                continue
            problem = p.check(value)
            if problem:
                raise ConfigurationError(f"{meta.name}: {problem}")
            out[p.name] = value
        return out

    @abstractmethod
    async def start(self) -> None:
        """Start the resource; return once it runs. Starting a started resource succeeds."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop the resource; return once it is stopped. Stopping a stopped one succeeds."""

    @abstractmethod
    async def monitor(self, depth: int = 0) -> OCFResult:
        """SUCCESS if running, NOT_RUNNING if cleanly stopped; raise AgentError if failed."""

    async def validate(self) -> None:  # noqa: B027 - optional action: resolve() checked the syntax
        """Check the parameters against this node (raise ConfigurationError/ArgumentError...)."""
