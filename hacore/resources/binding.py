"""From configuration to agents: find each resource's agent by name and check its parameters.

Done at ``hactl config check`` and before the daemon starts, so a missing agent or a bad
parameter is a configuration error with its file and line, never a surprise during failover.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hacore.agent import Agent, AgentError, Instance
from hacore.config.errors import Problem
from hacore.config.model import ClusterConfig, Group, Resource
from hacore.plugins import AgentRegistry, PluginError

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class BoundResource:
    resource: Resource
    agent_class: type[Agent]
    instance: Instance

    @property
    def name(self) -> str:
        return self.instance.name

    def agent(self) -> Agent:
        """A fresh agent object (agents keep no state between actions that matters)."""
        return self.agent_class(Instance(self.instance.name, dict(self.instance.params)))

    def timeout_s(self, action: str) -> float:
        return self.agent_class.metadata.timeout_ms(action) / 1000

    @property
    def monitor_interval_s(self) -> float | None:
        if self.resource.monitor_interval_ms is not None:
            return self.resource.monitor_interval_ms / 1000
        action = self.agent_class.metadata.action("monitor")
        return action.interval_ms / 1000 if action and action.interval_ms else None


@dataclass(frozen=True)
class BoundGroup:
    group: Group
    resources: tuple[BoundResource, ...]

    @property
    def key(self) -> str:
        return self.group.key


def instance_name(resource: Resource) -> str:
    """A stable instance name, e.g. ``IPaddr_198.51.100.55_24_eth0`` (state files use it)."""
    return _UNSAFE.sub("_", resource.spec).strip("_")[:100]


def bind(
    config: ClusterConfig, registry: AgentRegistry | None = None
) -> tuple[tuple[BoundGroup, ...], tuple[Problem, ...]]:
    """Bind every resource of every group; problems carry the resource's file and line."""
    registry = registry or AgentRegistry()
    groups: list[BoundGroup] = []
    problems: list[Problem] = []
    for group in config.groups:
        bound: list[BoundResource] = []
        for resource in group.resources:
            try:
                cls = registry.load(resource.agent)
                params = {**cls.parse_args(resource.args), **dict(resource.params)}
                resolved = cls.resolve(params)
            except (PluginError, AgentError) as err:
                problems.append(Problem(resource.location, f"{resource.spec}: {err}"))
                continue
            bound.append(BoundResource(resource, cls, Instance(instance_name(resource), resolved)))
        groups.append(BoundGroup(group, tuple(bound)))
    return tuple(groups), tuple(problems)
