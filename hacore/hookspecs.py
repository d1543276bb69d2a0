"""Every hook a hacore plugin can implement. Each docstring is the hook's reference entry.

A plugin is a module (or object) whose functions carry ``@hookimpl`` and are named after a hook
below; its distribution lists it in the ``hacore.plugins`` entry-point group::

    [project.entry-points."hacore.plugins"]
    ping = "hacore_ping.plugin"

A plugin implements only the hooks it needs, and may accept only some of a hook's arguments.
Resource agents are not hooks: they are classes found by name in ``hacore.agents``
(see ``hacore.plugins.AgentRegistry``).

Hooks are called synchronously. None of them may block for long: the core calls them off the
keepalive path, but a slow plugin still delays whatever the core does next with its answer.
"""

from __future__ import annotations

import click
import pluggy

from hacore.config.model import ClusterConfig
from hacore.events import NodeEvent, ResourceEvent

__all__ = ["PROJECT", "hookimpl", "hookspec"]

PROJECT = "hacore"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# A hookspec's body never runs: pluggy reads only its name, arguments, options and docstring.


# -------------------------------------------------------------------------------------------------
# Configuration: before anything runs (hactl config check, and daemon start)
# -------------------------------------------------------------------------------------------------


@hookspec
def hacore_config_validate(config: ClusterConfig) -> list[str]:
    """Report the problems this plugin sees in a configuration.

    :param config: the configuration as loaded, for the node it will run on
        (``config.local_node``).
    :return: one message per problem, written for the person who edits the file (name the
        directive and what to do); an empty list when all is well.

    Called by ``hactl config check`` and when the daemon starts, after the core's own checks.
    Any message refuses the start: a problem found here is one that would otherwise surface
    during a failover. Do not touch the network or the disk beyond reading.

    Example (the ping plugin)::

        @hookimpl
        def hacore_config_validate(config: ClusterConfig) -> list[str]:
            if config.ping_nodes and os.geteuid() != 0:
                return ["ping nodes need root (raw ICMP sockets): run hactl as root"]
            return []
    """
    raise NotImplementedError


# -------------------------------------------------------------------------------------------------
# Command line: when hactl builds its command group
# -------------------------------------------------------------------------------------------------


@hookspec
def hacore_cli_commands() -> list[click.Command]:
    """Contribute extra ``hactl`` subcommands.

    :return: click commands (or groups); each becomes ``hactl <command.name>``.

    Called once when ``hactl`` starts, before it parses its arguments. A command whose name is
    already taken (by the core or another plugin) is an error naming both, never a silent
    shadowing.

    Example::

        @click.command("ping-status")
        def ping_status() -> None:
            \"\"\"Show which ping nodes this node reaches.\"\"\"

        @hookimpl
        def hacore_cli_commands() -> list[click.Command]:
            return [ping_status]
    """
    raise NotImplementedError


# -------------------------------------------------------------------------------------------------
# Daemon lifecycle
# -------------------------------------------------------------------------------------------------


@hookspec
def hacore_daemon_started(config: ClusterConfig) -> None:
    """The daemon is up: configuration loaded and checked, links bound, keepalives flowing.

    :param config: the running configuration.

    Called once, in the daemon's event-loop thread, before any resource group is started: a
    plugin that feeds placement (connectivity scores) starts measuring here, so that its first
    answers are ready when placement asks. ``asyncio.get_running_loop()`` works; start tasks or
    threads and return at once.

    Example::

        @hookimpl
        def hacore_daemon_started(config: ClusterConfig) -> None:
            global _task
            _task = asyncio.get_running_loop().create_task(_probe_forever(config.ping_nodes))
    """
    raise NotImplementedError


@hookspec
def hacore_daemon_stopping(config: ClusterConfig) -> None:
    """The daemon is stopping, and has released its resource groups.

    :param config: the running configuration.

    Called once, in the daemon's event-loop thread, if ``hacore_daemon_started`` was called;
    stop what it started and return at once.

    Example::

        @hookimpl
        def hacore_daemon_stopping(config: ClusterConfig) -> None:
            if _task is not None:
                _task.cancel()
    """
    raise NotImplementedError


# -------------------------------------------------------------------------------------------------
# Placement: choosing the node that holds a group
# -------------------------------------------------------------------------------------------------


@hookspec(firstresult=False)  # said aloud: placement sums every answer, it does not take one
def hacore_connectivity_score(node: str) -> int | None:
    """How well ``node`` reaches the outside world, as this plugin measures it.

    :param node: a cluster node name (as in ``config.nodes``).
    :return: a non-negative score (for ping: the number of ping nodes and ping groups
        reached), or None when this plugin has no opinion on ``node``.

    Heartbeat's ipfail semantics: between two nodes that may hold a group, the one that
    reaches more ping nodes holds it, so a node cut off from the clients' network gives the
    group to a peer that is not. The core adds up the answers of every plugin (not the first
    one: several plugins may each contribute part of the score); ``None`` answers are left
    out, and a node nobody scores counts as 0. Scores only break ties between eligible nodes:
    they never move a group to a node that is down or in standby.

    Called in placement, off the keepalive path, whenever the core decides where groups go.
    Return a value measured earlier by the plugin's own task; never probe inside the hook. A
    plugin normally measures from the node it runs on and answers for ``config.local_node``
    only, returning None for peers.

    Example::

        @hookimpl
        def hacore_connectivity_score(node: str) -> int | None:
            return _reachable_count if node == _local_node else None
    """
    raise NotImplementedError


# -------------------------------------------------------------------------------------------------
# Events: for notifiers
# -------------------------------------------------------------------------------------------------
# The core queues events and calls these hooks off the keepalive path, each plugin in a worker
# thread of its own and each call under a timeout: an overrun is logged, and that plugin's later
# events wait behind it (at most 1000 queued; the oldest is dropped past that). No plugin ever
# holds up membership, failover, or another plugin. Each plugin sees events in the order they
# happened. Implementations must still not block: a slow notifier delays its own later events.


@hookspec
def hacore_node_event(event: NodeEvent) -> None:
    """A cluster node changed state (came up, became active, died, said goodbye).

    :param event: the change; ``event.node`` may be the local node (its own start and stop).

    Called in a worker thread, in event order, under a timeout (see above); the return value
    is ignored and an exception is logged, never propagated.

    Example (a notifier that runs Heartbeat-style scripts)::

        @hookimpl
        def hacore_node_event(event: NodeEvent) -> None:
            subprocess.run(["/etc/ha.d/notify", event.node, event.new_state], timeout=5)
    """
    raise NotImplementedError


@hookspec
def hacore_resource_event(event: ResourceEvent) -> None:
    """A resource action finished, or a resource group moved (failover, takeover, release).

    :param event: what happened, where, and with which OCF result.

    Called in a worker thread, in event order, under a timeout (see above); the return value
    is ignored and an exception is logged, never propagated. Monitors are reported when their
    verdict changes, not at every interval.

    Example (a webhook)::

        @hookimpl
        def hacore_resource_event(event: ResourceEvent) -> None:
            if event.action is ResourceAction.FAILOVER:
                _post({"group": event.group, "to": event.node, "result": event.result.name})
    """
    raise NotImplementedError
