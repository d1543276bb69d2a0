"""The OCF bridge: a shell resource agent of ``$OCF_ROOT/resource.d/<provider>/<type>`` as an Agent.

``ocf_agent("heartbeat", "IPaddr2")`` returns an Agent class made for that one script. Its
``metadata`` is the script's own ``meta-data`` output, read once when the class is made, so a
configuration is checked against the agent's real parameters (unknown name, missing required
one, wrong type) before anything runs, exactly as for a native agent. Each action runs the
script with the action as its only argument and the OCF environment (reference section 4.3):
parameters as ``OCF_RESKEY_<name>``, instance, type and provider, API version 1.0, the action's
timeout and interval in milliseconds, ``OCF_CHECK_LEVEL``.

Two choices differ from what a native agent does, on purpose:

- **Meta-data defaults are not applied.** ``resolve`` checks the parameters but passes on only
  those the configuration sets, as Pacemaker does: the script applies its own defaults, and the
  ones it prints are often documentation rather than values. Debian's Dummy prints
  ``/run/resource-agents/Dummy-RESOURCE_ID.state`` (every instance would share one state file),
  apache prints a sentence as ``testregex``'s default, and IPaddr2 a default of "" for the
  required ``ip``.
- **Probe or recurring monitor** is not said by the Agent API, yet agents read it from
  ``OCF_RESKEY_CRM_meta_interval`` (0 is a probe: ``ocf_is_probe``, where a missing binary or
  configuration means "not running here" rather than an error). A monitor is a probe (interval
  0) until this agent object knows the resource runs here: after a successful start, or a
  monitor that found it running. From then on it is a recurring monitor with
  ``monitor_interval_ms`` (the meta-data's interval for that depth unless set on the object);
  a stop, or a monitor that finds it stopped, makes the next monitor a probe again. This is
  what the resource manager does with one object per resource: probe at start-up, monitor
  while started. ``probing`` can also be set directly.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from xml.etree import ElementTree

from hacore.agent import (
    Action,
    Agent,
    AgentError,
    ConfigurationError,
    Instance,
    Metadata,
    NotInstalledError,
    OCFResult,
    Parameter,
    ParamType,
)
from hacore.bridge.process import (
    ScriptResult,
    ScriptTimeout,
    base_environment,
    exit_reason,
    run_script,
    run_script_sync,
)
from hacore.config.suggest import closest, did_you_mean
from hacore.plugins import AgentNotFound

__all__ = [
    "DEFAULT_OCF_ROOT",
    "METADATA_TIMEOUT",
    "OCFAgent",
    "ocf_agent",
    "ocf_agent_named",
    "ocf_root",
    "parse_metadata",
]

log = logging.getLogger(__name__)

DEFAULT_OCF_ROOT = Path("/usr/lib/ocf")

# Pacemaker's bound on meta-data (PCMK_DEFAULT_METADATA_TIMEOUT_MS): it normally takes tens of
# milliseconds, and the limit is only there so a broken script cannot hang `hactl config check`.
METADATA_TIMEOUT = 30.0

# Where a provider's agents come from on Debian, for the "not installed" message.
PACKAGES: Mapping[str, str] = {
    "heartbeat": "resource-agents",
    "pacemaker": "pacemaker-resource-agents",
}

# Pacemaker's default operation timeout, for an action the meta-data does not list.
_DEFAULT_TIMEOUT_MS = 20_000

# The actions this class can run (the Agent API's four, plus meta-data); the meta-data's others
# (status, reload, migrate_to, promote...) are not reachable through it and are not described.
_BRIDGED_ACTIONS = ("start", "stop", "monitor", "validate-all", "meta-data")

# Provider and type become path components: one word, no "..", no "/".
_NAME = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]*")

# Pacemaker's units for times in meta-data (crm_get_msec); a bare number is seconds.
_TIME = re.compile(r"\s*(\d+)\s*(ms|msec|us|usec|s|sec|m|min|h|hr)?\s*", re.IGNORECASE)
_UNIT_MS = {"ms": 1.0, "msec": 1.0, "us": 0.001, "usec": 0.001, "s": 1000.0, "sec": 1000.0}
_UNIT_MS |= {"m": 60_000.0, "min": 60_000.0, "h": 3_600_000.0, "hr": 3_600_000.0}


def ocf_root() -> Path:
    """``$OCF_ROOT``, else /usr/lib/ocf (Debian's resource-agents)."""
    return Path(os.environ.get("OCF_ROOT") or DEFAULT_OCF_ROOT)


# -------------------------------------------------------------------------------------------------
# Meta-data
# -------------------------------------------------------------------------------------------------


def parse_metadata(xml: str, name: str) -> Metadata:
    """An OCF meta-data document as Metadata named ``name`` (the configured spelling,
    ``ocf:heartbeat:IPaddr2``). Raises ValueError saying what is wrong with the document."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as err:
        raise ValueError(f"meta-data is not well-formed XML: {err}") from None
    if root.tag != "resource-agent":
        raise ValueError(f"meta-data's root is <{root.tag}>, not <resource-agent>")
    group_sizes: dict[str, int] = {}
    for element in root.iterfind("parameters/parameter"):
        group = element.get("unique-group")
        if group:
            group_sizes[group] = group_sizes.get(group, 0) + 1
    parameters = tuple(_parameter(p, group_sizes) for p in root.iterfind("parameters/parameter"))
    return Metadata(
        name=name,
        shortdesc=_text(root, "shortdesc") or name,
        longdesc=_text(root, "longdesc", collapse=False),
        version=root.get("version") or "1.0",
        parameters=parameters,
        actions=_actions(root),
    )


def _text(element: ElementTree.Element, tag: str, *, collapse: bool = True) -> str:
    # Several languages may be given; English is what the rest of hacore speaks.
    found = element.findall(tag)
    chosen = next((e for e in found if e.get("lang", "en") == "en"), found[0] if found else None)
    text = (chosen.text or "") if chosen is not None else ""
    return " ".join(text.split()) if collapse else text.strip()


def _parameter(element: ElementTree.Element, group_sizes: Mapping[str, int]) -> Parameter:
    name = element.get("name") or ""
    if not name:
        raise ValueError("meta-data has a <parameter> without a name")
    content = element.find("content")
    kind = content.get("type", "string") if content is not None else "string"
    choices: tuple[str, ...] = ()
    if content is not None:
        choices = tuple(o.get("value", "") for o in content.iterfind("option"))
    types = {"integer": ParamType.INTEGER, "boolean": ParamType.BOOLEAN}
    # "time" (DTD 1.0) and anything unknown are strings: the script checks them itself.
    ptype = ParamType.SELECT if kind == "select" and choices else types.get(kind, ParamType.STRING)
    required = element.get("required") == "1"
    default = content.get("default") if content is not None else None
    group = element.get("unique-group")
    # OCF 1.1's unique-group: a group of one is a unique parameter; a larger group is unique only
    # as a combination, which a per-parameter flag cannot say, so its members are not flagged.
    unique = element.get("unique") == "1" or (group is not None and group_sizes.get(group) == 1)
    return Parameter(
        name=name,
        shortdesc=_text(element, "shortdesc"),
        longdesc=_text(element, "longdesc", collapse=False),
        type=ptype,
        # A required parameter has no default, whatever is printed (IPaddr2's ip: default="").
        default=None if required else default,
        required=required,
        unique=unique,
        choices=choices,
    )


def _actions(root: ElementTree.Element) -> tuple[Action, ...]:
    actions: list[Action] = []
    for element in root.iterfind("actions/action"):
        name = element.get("name", "")
        if name not in _BRIDGED_ACTIONS:
            continue
        depth = element.get("depth", "0")
        actions.append(
            Action(
                name,
                _milliseconds(element.get("timeout"), _DEFAULT_TIMEOUT_MS),
                _milliseconds(element.get("interval"), 0),
                int(depth) if depth.isdigit() else 0,
            )
        )
    listed = {a.name for a in actions}
    # The bridge runs these whatever the meta-data lists; give them Pacemaker's default timeout.
    actions += [Action(n, _DEFAULT_TIMEOUT_MS) for n in _BRIDGED_ACTIONS if n not in listed]
    return tuple(actions)


def _milliseconds(text: str | None, default: int) -> int:
    if not text:
        return default
    match = _TIME.fullmatch(text)
    if match is None:
        log.warning("meta-data time %r is not understood; using %d ms", text, default)
        return default
    return int(int(match.group(1)) * _UNIT_MS[(match.group(2) or "s").lower()])


# -------------------------------------------------------------------------------------------------
# Exit codes and messages
# -------------------------------------------------------------------------------------------------


def _result_of(returncode: int) -> OCFResult | None:
    try:
        return OCFResult(returncode)
    except ValueError:
        return None


# -------------------------------------------------------------------------------------------------
# The agent
# -------------------------------------------------------------------------------------------------


class OCFAgent(Agent):
    """Base of the classes ``ocf_agent`` makes; one subclass per script."""

    metadata: ClassVar[Metadata]
    script: ClassVar[Path]
    provider: ClassVar[str]
    type_name: ClassVar[str]
    ocf_root: ClassVar[Path]
    metadata_xml: ClassVar[str]  # the script's own document, as it printed it

    def __init__(self, instance: Instance) -> None:
        super().__init__(instance)
        # See the module docstring: interval 0 until this object knows the resource runs here.
        self.probing = True
        self.monitor_interval_ms: int | None = None  # None: the meta-data's interval

    # -- configuration ---------------------------------------------------------------------

    @classmethod
    def parse_args(cls, args: Sequence[str]) -> dict[str, str]:
        """haresources' ``ocf:heartbeat:IPaddr2::ip=198.51.100.5::cidr_netmask=24``: each
        argument is ``name=value``."""
        params: dict[str, str] = {}
        for arg in args:
            name, sep, value = arg.partition("=")
            if not sep or not name:
                raise ConfigurationError(
                    f"{cls.metadata.name}: argument '{arg}' is not name=value "
                    f"(an OCF agent's parameters are named, e.g. "
                    f"{cls.metadata.name}::{_example(cls.metadata)})"
                )
            if name in params:
                raise ConfigurationError(f"{cls.metadata.name}: parameter '{name}' given twice")
            params[name] = value
        return params

    @classmethod
    def resolve(cls, params: Mapping[str, str]) -> dict[str, str]:
        """Check ``params`` against the script's meta-data; the result holds only what was
        given (the script applies its own defaults, see the module docstring)."""
        meta = cls.metadata
        known = [p.name for p in meta.parameters]
        for name in sorted(params):
            if name not in known:
                hint = did_you_mean(name, known)
                raise ConfigurationError(f"{meta.name}: unknown parameter '{name}'{hint}")
        for p in meta.parameters:
            value = params.get(p.name)
            if value is None or value == "":
                if p.required:
                    raise ConfigurationError(f"{meta.name}: parameter '{p.name}' is required")
                if value is None:
                    continue
            problem = p.check(value)
            if problem:
                raise ConfigurationError(f"{meta.name}: {problem}")
            if "\0" in value:  # an environment value cannot hold one
                raise ConfigurationError(f"{meta.name}: parameter '{p.name}' holds a NUL byte")
        return {name: params[name] for name in known if name in params}

    # -- actions ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self._expect_success("start")
        self.probing = False

    async def stop(self) -> None:
        done = await self._run("stop")
        self.probing = True
        if done.returncode == OCFResult.NOT_RUNNING:
            # OCF forbids it, but the meaning is plain: it is not running, which is what stop
            # is for. Failing here would fail the group over for a resource that is stopped.
            log.warning("%s: stop returned NOT_RUNNING (7); taken as stopped", self._what("stop"))
            return
        self._check(done, "stop")

    async def monitor(self, depth: int = 0) -> OCFResult:
        done = await self._run("monitor", depth)
        result = _result_of(done.returncode)
        if result is OCFResult.NOT_RUNNING:
            self.probing = True
            return result
        if result is not None and result.running:
            if result is not OCFResult.SUCCESS:
                # Degraded or promoted still means running: the contract's answer is SUCCESS.
                log.warning("%s: %s, counted as running", self._what("monitor"), result.name)
            self.probing = False
            return OCFResult.SUCCESS
        raise self._failure(done, "monitor")

    async def validate(self) -> None:
        # OCF 1.1's level 10: check against this node, not only the syntax (resolve did that).
        await self._expect_success("validate-all", depth=10)

    # -- running the script ----------------------------------------------------------------

    def interval_ms(self, depth: int) -> int:
        """The recurring monitor interval at ``depth`` (0 while probing, see the module doc)."""
        if self.probing:
            return 0
        if self.monitor_interval_ms is not None:
            return self.monitor_interval_ms
        monitors = [a for a in self.metadata.actions if a.name == "monitor"]
        chosen = next((a for a in monitors if a.depth == depth), monitors[0] if monitors else None)
        return chosen.interval_ms if chosen else 0

    def environment(self, action: str, depth: int = 0) -> dict[str, str]:
        """The environment ``action`` runs with."""
        timeout_ms = self._action(action, depth).timeout_ms
        env = base_environment()
        env |= {
            "OCF_ROOT": str(self.ocf_root),
            "OCF_RA_VERSION_MAJOR": "1",
            "OCF_RA_VERSION_MINOR": "0",
            "OCF_RESOURCE_INSTANCE": self.instance.name,
            "OCF_RESOURCE_TYPE": self.type_name,
            "OCF_RESOURCE_PROVIDER": self.provider,
            "OCF_CHECK_LEVEL": str(depth),
            "OCF_RESKEY_CRM_meta_timeout": str(timeout_ms),
            "OCF_RESKEY_CRM_meta_interval": str(
                self.interval_ms(depth) if action == "monitor" else 0
            ),
        }
        env |= {f"OCF_RESKEY_{name}": value for name, value in self.params.items()}
        return env

    def _action(self, action: str, depth: int) -> Action:
        matching = [a for a in self.metadata.actions if a.name == action]
        chosen = next((a for a in matching if a.depth == depth), matching[0] if matching else None)
        return chosen or Action(action, _DEFAULT_TIMEOUT_MS)

    async def _run(self, action: str, depth: int = 0) -> ScriptResult:
        argv = [str(self.script), action]
        try:
            done = await run_script(argv, self.environment(action, depth))
        except OSError as err:
            raise NotInstalledError(
                f"{self._what(action)}: cannot run {self.script}: {err.strerror or err}"
                f"{_install_hint(self.provider)}"
            ) from None
        log.debug(
            "%s: %s in %.3f s%s",
            self._what(action),
            done.describe_exit(),
            done.seconds,
            f"; stderr: {done.stderr.strip()}" if done.stderr.strip() else "",
        )
        return done

    async def _expect_success(self, action: str, depth: int = 0) -> None:
        self._check(await self._run(action, depth), action)

    def _check(self, done: ScriptResult, action: str) -> None:
        if done.returncode != OCFResult.SUCCESS:
            raise self._failure(done, action)

    def _failure(self, done: ScriptResult, action: str) -> AgentError:
        result = _result_of(done.returncode)
        code = (
            f"OCF {int(result)} {result.name}"
            if result is not None
            else f"{done.describe_exit()}, not an OCF exit code"
        )
        reason = exit_reason(done)
        message = f"{self._what(action)}: {code}" + (f": {reason}" if reason else "")
        return AgentError.from_result(result or OCFResult.ERR_GENERIC, message)

    def _what(self, action: str) -> str:
        return f"{self.metadata.name} {action} (instance {self.instance.name})"


def _example(meta: Metadata) -> str:
    required = [p.name for p in meta.parameters if p.required] or [
        p.name for p in meta.parameters[:1]
    ]
    return "::".join(f"{name}=..." for name in required) or "name=value"


# -------------------------------------------------------------------------------------------------
# Making the classes
# -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cached:
    signature: tuple[int, int, int]  # (inode, size, mtime): a reinstalled script is re-read
    agent: type[OCFAgent]


_cache: dict[Path, _Cached] = {}
_cache_lock = threading.Lock()


def ocf_agent_named(name: str) -> type[OCFAgent]:
    """The class for a configured name ``ocf:<provider>:<type>``."""
    parts = name.split(":")
    if len(parts) != 3 or parts[0] != "ocf" or not all(parts):
        raise AgentNotFound(
            f"'{name}' is not an OCF agent name: write ocf:<provider>:<type>, "
            "e.g. ocf:heartbeat:IPaddr2"
        )
    return ocf_agent(parts[1], parts[2])


def ocf_agent(provider: str, type_: str, *, root: Path | None = None) -> type[OCFAgent]:
    """The Agent class for ``<root>/resource.d/<provider>/<type_>`` (root: ``ocf_root()``).

    Reads the script's meta-data the first time (and again if the file changes); raises
    AgentNotFound, saying what to install, when the script is missing or its meta-data
    unusable. Synchronous, like ``AgentRegistry.load``: call it off the event loop.
    """
    root = root or ocf_root()
    name = f"ocf:{provider}:{type_}"
    for word in (provider, type_):
        if not _NAME.fullmatch(word):
            raise AgentNotFound(f"'{name}': '{word}' is not a valid OCF provider or type name")
    script = root / "resource.d" / provider / type_
    try:
        stat = script.stat()
    except OSError:
        raise AgentNotFound(_not_found(name, root, provider, type_)) from None
    if not script.is_file() or not os.access(script, os.X_OK):
        raise AgentNotFound(f"OCF agent '{name}': {script} is not an executable file")
    signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _cache_lock:
        cached = _cache.get(script)
        if cached is not None and cached.signature == signature:
            return cached.agent
        agent = _make_class(name, root, provider, type_, script)
        _cache[script] = _Cached(signature, agent)
        return agent


def _make_class(name: str, root: Path, provider: str, type_: str, script: Path) -> type[OCFAgent]:
    env = base_environment() | {
        "OCF_ROOT": str(root),
        "OCF_RA_VERSION_MAJOR": "1",
        "OCF_RA_VERSION_MINOR": "0",
        "OCF_RESOURCE_TYPE": type_,
        "OCF_RESOURCE_PROVIDER": provider,
    }
    try:
        # Meta-data documents run to tens of kilobytes (apache's is ~12 kB); allow a lot more.
        done = run_script_sync(
            [str(script), "meta-data"], env, timeout=METADATA_TIMEOUT, output_limit=4 << 20
        )
    except ScriptTimeout as err:
        raise AgentNotFound(f"OCF agent '{name}': meta-data: {err}") from None
    except OSError as err:
        raise AgentNotFound(f"OCF agent '{name}': cannot run {script}: {err}") from None
    if done.returncode != 0:
        reason = exit_reason(done)
        raise AgentNotFound(
            f"OCF agent '{name}': '{script} meta-data' failed ({done.describe_exit()})"
            + (f": {reason}" if reason else "")
        )
    try:
        metadata = parse_metadata(done.stdout, name)
    except ValueError as err:
        raise AgentNotFound(f"OCF agent '{name}': {script}: {err}") from None
    class_name = re.sub(r"\W", "_", f"OCF_{provider}_{type_}")
    namespace = {
        "metadata": metadata,
        "metadata_xml": done.stdout,
        "script": script,
        "provider": provider,
        "type_name": type_,
        "ocf_root": root,
        "__module__": __name__,
        "__doc__": f"{name}: {metadata.shortdesc} (runs {script})",
    }
    return type(class_name, (OCFAgent,), namespace)


def _install_hint(provider: str) -> str:
    package = PACKAGES.get(provider)
    return f" (the {provider} agents come with the Debian package {package})" if package else ""


def _not_found(name: str, root: Path, provider: str, type_: str) -> str:
    package = PACKAGES.get(provider)
    install = f"apt install {package}" if package else "install the package that provides it"
    provider_dir = root / "resource.d" / provider
    if not provider_dir.is_dir():
        providers = sorted(p.name for p in (root / "resource.d").glob("*") if p.is_dir())
        found = f"installed providers: {', '.join(providers)}" if providers else "none installed"
        return (
            f"OCF agent '{name}': no provider '{provider}' in {root / 'resource.d'} "
            f"({found}); {install}"
        )
    types = sorted(p.name for p in provider_dir.iterdir() if not p.name.startswith("."))
    match = closest(type_, types)
    hint = f" (did you mean 'ocf:{provider}:{match}'?)" if match else ""
    return f"unknown OCF agent '{name}': {provider_dir / type_} does not exist{hint}; " + (
        f"the {provider} agents come with the Debian package {package}" if package else f"{install}"
    )
