"""Discovery: the one place that finds installed resource agents and hook plugins.

Two mechanisms, one job each (DESIGN.md):

- ``AgentRegistry`` loads one resource agent **by name** from entry-point group ``hacore.agents``
  with stevedore. The name is what a configuration line says (``IPaddr::192.168.10.55/24/eth0``),
  case-sensitive as in Heartbeat and OCF.
- ``plugin_manager()`` builds a pluggy manager for the **1:N hooks** of ``hacore.hookspecs`` and
  registers every plugin in entry-point group ``hacore.plugins``.

Nothing is scanned or imported when this module is imported. Every failure is a ``PluginError``
whose message a person can act on (which agent, which distribution, what to install), so that
``hactl config check`` and daemon start report a missing or broken plugin before any failover
needs it.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Iterable, Mapping

import pluggy
from stevedore import DriverManager, ExtensionManager

from hacore import hookspecs
from hacore.agent import Agent, Metadata
from hacore.config.suggest import closest, did_you_mean

__all__ = [
    "AGENT_GROUP",
    "KNOWN_DISTRIBUTIONS",
    "PLUGIN_GROUP",
    "AgentNotFound",
    "AgentRegistry",
    "PluginError",
    "available_agents",
    "load_agent",
    "plugin_manager",
]

AGENT_GROUP = "hacore.agents"
PLUGIN_GROUP = "hacore.plugins"

# Where the agents a Heartbeat configuration names come from, so that a missing one is answered
# with the command that installs it rather than with "not found".
KNOWN_DISTRIBUTIONS: Mapping[str, str] = {
    "IPaddr": "hacore-ipaddr",
    "IPaddr2": "hacore-ipaddr",
    "apache": "hacore-apache",
}


class PluginError(Exception):
    """A plugin or agent is missing, broken or misdeclared. The message is for a person."""


class AgentNotFound(PluginError):  # noqa: N818 -- reads as the condition, like stevedore's NoMatches
    """No usable agent answers to a name: not installed, failing to import, or not an Agent."""


class AgentRegistry:
    """The resource agents installed in this environment, loaded by name.

    A registry is a snapshot of the entry points visible on ``sys.path`` when it was made: make
    one at start (or at ``hactl config check``) and load every configured agent through it, so a
    missing agent is found before anything runs. Loading an agent imports only its own module.
    """

    def __init__(self) -> None:
        found = list(importlib.metadata.entry_points(group=AGENT_GROUP))
        # stevedore would scan again, through a per-process memo that ignores later changes to
        # sys.path and a cache file in ~/.cache; handing it this scan instead means it loads
        # exactly what this registry lists (with the distributions, which its scan drops).
        ExtensionManager.ENTRY_POINT_CACHE[AGENT_GROUP] = found
        self._entry_points: dict[str, list[importlib.metadata.EntryPoint]] = {}
        for ep in found:
            self._entry_points.setdefault(ep.name, []).append(ep)

    def names(self) -> list[str]:
        """The names of the installed agents, sorted."""
        return sorted(self._entry_points)

    def available(self) -> dict[str, str]:
        """Installed agent name → the distribution providing it (``"hacore-ipaddr 0.1.0"``)."""
        return {
            name: ", ".join(_distribution(ep) for ep in self._entry_points[name])
            for name in self.names()
        }

    @staticmethod
    def entry_point_name(name: str) -> str:
        """The entry point that serves the configured agent name ``name``.

        A qualified name ``prefix:rest`` (OCF's ``ocf:heartbeat:IPaddr2``) is served by the agent
        registered under ``prefix``: one entry point for every shell agent of a provider tree.
        Any other name is its own entry point. When no entry point answers, ``load`` falls back
        to the core's bridge (``hacore.bridge``): ``ocf:`` names to the OCF shell agents, bare
        names to Heartbeat resource scripts and LSB init scripts.
        """
        return name.split(":", 1)[0]

    def load(self, name: str) -> type[Agent]:
        """The agent class for ``name``; raises AgentNotFound saying why and what to do."""
        ep_name = self.entry_point_name(name)
        found = self._entry_points.get(ep_name)
        if not found:
            bridged = _bridged(name, ep_name)
            if bridged is not None:
                return bridged
            raise AgentNotFound(self._not_found(name, ep_name))
        if len(found) > 1:
            raise AgentNotFound(
                f"resource agent '{ep_name}' is provided by several distributions "
                f"({', '.join(_distribution(ep) for ep in found)}): uninstall all but one"
            )
        (ep,) = found
        origin = f"'{ep_name}' ({ep.value}, from {_distribution(ep)})"
        try:
            manager: DriverManager[object] = DriverManager(
                AGENT_GROUP,
                ep_name,
                invoke_on_load=False,
                on_missing_entrypoints_callback=None,
            )
        except Exception as err:  # whatever the agent's module raises while being imported
            raise AgentNotFound(
                f"resource agent {origin} cannot be loaded: {type(err).__name__}: {err}"
            ) from err
        return _checked_agent(manager.extensions[0].plugin, origin)

    def _not_found(self, name: str, ep_name: str) -> str:
        installed = self.names()
        inventory = (
            f"installed agents: {', '.join(installed)}" if installed else "no agents are installed"
        )
        if ep_name != name:
            return (
                f"resource agent '{name}' needs the agent '{ep_name}', which is not installed; "
                f"{inventory}"
            )
        distribution = KNOWN_DISTRIBUTIONS.get(name)
        if distribution is not None:
            return (
                f"resource agent '{name}' is not installed: it comes with {distribution} "
                f"(pip install {distribution}); {inventory}"
            )
        # Names are case-sensitive (OCF's and Heartbeat's spelling), so 'ipaddr' is a typo.
        match = closest(name, [*installed, *KNOWN_DISTRIBUTIONS])
        hint = ""
        if match in installed:
            hint = f" (did you mean '{match}'?)"
        elif match is not None:
            hint = f" (did you mean '{match}'? it comes with {KNOWN_DISTRIBUTIONS[match]})"
        return f"unknown resource agent '{name}'{hint}; {inventory}"


def _bridged(name: str, ep_name: str) -> type[Agent] | None:
    """The core's bridge for a name no installed entry point serves: ``ocf:<provider>:<type>``
    is the OCF shell agent of that name (raising AgentNotFound if it is not installed); a bare
    name is the Heartbeat resource script or LSB init script of that name, if one exists."""
    # Imported here: the bridge imports this module (for AgentNotFound), and loading it costs
    # nothing until a configuration names a script.
    from hacore import bridge  # noqa: PLC0415

    if ep_name == "ocf":
        return bridge.ocf_agent_named(name)
    if ep_name == name:
        script = bridge.find_script(name)
        if script is not None:
            return bridge.lsb_agent(script)
    return None


def _checked_agent(plugin: object, origin: str) -> type[Agent]:
    """Refuse an entry point that does not lead to a usable Agent class."""
    if not (isinstance(plugin, type) and issubclass(plugin, Agent)):
        raise AgentNotFound(
            f"resource agent {origin} is {plugin!r}, not a subclass of hacore.agent.Agent"
        )
    if inspect.isabstract(plugin):
        missing = ", ".join(sorted(plugin.__abstractmethods__))
        raise AgentNotFound(f"resource agent {origin} does not implement: {missing}")
    if not isinstance(getattr(plugin, "metadata", None), Metadata):
        raise AgentNotFound(f"resource agent {origin} has no 'metadata' (a hacore.agent.Metadata)")
    return plugin


def load_agent(name: str) -> type[Agent]:
    """``AgentRegistry().load(name)``: for a single look-up."""
    return AgentRegistry().load(name)


def available_agents() -> dict[str, str]:
    """``AgentRegistry().available()``: installed agent name → distribution and version."""
    return AgentRegistry().available()


def plugin_manager(
    load_entrypoints: bool = True, *, plugins: Iterable[object] = ()
) -> pluggy.PluginManager:
    """A pluggy manager for ``hacore.hookspecs``, with the installed plugins registered.

    ``plugins`` are registered too (the core's own, or a test's), before the check that every
    hook implementation names a known hook: a misspelt ``hacore_node_evnt`` is a PluginError
    here, at start-up, not a notifier that silently never fires.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    origins: dict[str, str] = {}  # plugin name → its distribution, for error messages
    if load_entrypoints:
        origins = _load_plugin_entry_points(pm)
    for plugin in plugins:
        try:
            pm.register(plugin)
        except pluggy.PluginValidationError as err:
            reason = "; ".join(str(err).splitlines())
            raise PluginError(f"plugin {plugin!r}: {reason}") from err
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as err:
        raise PluginError(_unknown_hooks(pm, err.plugin, origins)) from err
    return pm


def _load_plugin_entry_points(pm: pluggy.PluginManager) -> dict[str, str]:
    # One entry point at a time through pluggy's loader, so that a failure names its source.
    origins: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        origin = _distribution(ep)
        if ep.name in origins:
            # pluggy would keep the first and silently drop the other: a notifier that never fires.
            raise PluginError(
                f"plugin name '{ep.name}' is registered by both {origins[ep.name]} and {origin}: "
                "uninstall one"
            )
        origins[ep.name] = origin
        try:
            pm.load_setuptools_entrypoints(PLUGIN_GROUP, name=ep.name)
        except pluggy.PluginValidationError as err:
            reason = "; ".join(str(err).splitlines())  # pluggy's lines, on one log line
            raise PluginError(f"{origin}: plugin '{ep.name}' ({ep.value}): {reason}") from err
        except Exception as err:  # whatever the plugin's module raises while being imported
            raise PluginError(
                f"{origin}: plugin '{ep.name}' ({ep.value}) cannot be loaded: "
                f"{type(err).__name__}: {err}"
            ) from err
    return origins


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object, origins: Mapping[str, str]) -> str:
    name = pm.get_name(plugin) or repr(plugin)
    callers = [getattr(pm.hook, n) for n in dir(pm.hook) if not n.startswith("_")]
    known = [caller.name for caller in callers if caller.has_spec()]
    unknown = sorted(
        caller.name
        for caller in pm.get_hookcallers(plugin) or ()
        if not caller.has_spec()
        and any(i.plugin is plugin and not i.optionalhook for i in caller.get_hookimpls())
    )
    hooks = "; ".join(f"'{hook}'{did_you_mean(hook, known)}" for hook in unknown)
    origin = f"{origins[name]}: " if name in origins else ""
    return f"{origin}plugin '{name}' implements unknown hook(s) {hooks}"


def _distribution(ep: importlib.metadata.EntryPoint) -> str:
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"
