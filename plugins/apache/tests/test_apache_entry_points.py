"""hacore finds the agent through the installed distribution's entry point alone."""

from __future__ import annotations

from importlib.metadata import entry_points

from hacore.agent import Agent
from hacore.plugins import AgentRegistry

from hacore_apache.agent import Apache


def test_the_agent_is_listed_under_hacore_agents() -> None:
    [ep] = [ep for ep in entry_points(group="hacore.agents") if ep.name == "apache"]
    assert ep.dist is not None
    assert ep.dist.name == "hacore-apache"
    loaded = ep.load()
    assert loaded is Apache
    assert issubclass(loaded, Agent)
    assert loaded.metadata.name == "apache"


def test_the_registry_loads_it_by_the_name_haresources_uses() -> None:
    assert AgentRegistry().load("apache") is Apache
