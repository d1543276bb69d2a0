"""hacore finds the agents through the installed distribution's entry points alone."""

from __future__ import annotations

from importlib.metadata import entry_points

from hacore.agent import Agent

from hacore_ipaddr.agents import IPaddr, IPaddr2


def test_agents_are_listed_under_hacore_agents() -> None:
    found = {ep.name: ep for ep in entry_points(group="hacore.agents")}
    for name, cls in (("IPaddr", IPaddr), ("IPaddr2", IPaddr2)):
        ep = found[name]
        assert ep.dist is not None
        assert ep.dist.name == "hacore-ipaddr"
        loaded = ep.load()
        assert loaded is cls
        assert issubclass(loaded, Agent)
        assert loaded.metadata.name == name
