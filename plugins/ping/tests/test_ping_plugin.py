"""The plugin as hacore loads it: found by its entry point, idle without ping nodes."""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from pathlib import Path

from hacore.config.model import Auth, AuthKey, AuthMethod, ClusterConfig
from hacore.plugins import plugin_manager

from hacore_ping.plugin import PingPlugin, plugin


def config(tmp_path: Path, ping_nodes: tuple[str, ...] = ()) -> ClusterConfig:
    return ClusterConfig(
        nodes=("pc1", "pc2"),
        local_node="pc1",
        links=(),
        auth=Auth(1, (AuthKey(1, AuthMethod.SHA256, b"secret"),)),
        ping_nodes=ping_nodes,
        source=tmp_path,
    )


def test_the_plugin_is_listed_under_hacore_plugins() -> None:
    (ep,) = [ep for ep in entry_points(group="hacore.plugins") if ep.name == "ping"]
    assert ep.dist is not None
    assert ep.dist.name == "hacore-ping"
    assert ep.load() is plugin
    assert isinstance(plugin, PingPlugin)


def test_hacore_registers_it_and_it_has_no_opinion_before_the_daemon_starts() -> None:
    pm = plugin_manager()

    assert pm.get_plugin("ping") is plugin
    assert pm.hook.hacore_connectivity_score(node="pc1") == []  # None answers are left out


def test_without_ping_nodes_nothing_is_started(tmp_path: Path) -> None:
    idle = PingPlugin()
    threads_before = len(os.listdir("/proc/self/task"))

    idle.hacore_daemon_started(config(tmp_path))

    assert len(os.listdir("/proc/self/task")) == threads_before
    assert idle.hacore_connectivity_score(node="pc1") is None
    assert idle.status() is None
    idle.hacore_daemon_stopping(config(tmp_path))


def test_validation_accepts_ping_nodes_when_icmp_sockets_may_be_opened(tmp_path: Path) -> None:
    # The tests run as root, as the daemon does: a raw socket opens (nothing is sent).
    assert PingPlugin().hacore_config_validate(config(tmp_path, ("198.51.100.2",))) == []
