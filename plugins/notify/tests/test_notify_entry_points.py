"""hacore finds the notify plugin through the installed distribution's entry point alone."""

from __future__ import annotations

from importlib.metadata import entry_points

from hacore.plugins import plugin_manager

from hacore_notify.plugin import NotifyPlugin, plugin


def test_the_plugin_is_listed_under_hacore_plugins() -> None:
    (ep,) = [ep for ep in entry_points(group="hacore.plugins") if ep.name == "notify"]
    assert ep.dist is not None
    assert ep.dist.name == "hacore-notify"
    assert ep.load() is plugin
    assert isinstance(plugin, NotifyPlugin)


def test_hacore_registers_it_with_its_event_hooks() -> None:
    pm = plugin_manager()

    assert pm.get_plugin("notify") is plugin
    hooks = {caller.name for caller in pm.get_hookcallers(plugin) or ()}
    assert hooks == {
        "hacore_config_validate",
        "hacore_daemon_started",
        "hacore_daemon_stopping",
        "hacore_node_event",
        "hacore_resource_event",
    }
