"""hacore-ping's hook implementations: Heartbeat's ipfail, as a connectivity score.

The entry point registers ``plugin``, one ``PingPlugin``. When the daemon starts with ping nodes
configured (ha.cf ``ping``/``ping_group``, cluster.toml ``[ping]``), a thread pings them (see
``hacore_ping.pinger``) and ``hacore_connectivity_score`` answers for the local node with the
dampened score; the core shares it with the peers and places groups on the node that reaches
more. Other nodes get None: each node measures for itself. With no ping nodes configured,
nothing is started and the hook has no opinion.
"""

from __future__ import annotations

import logging

from hacore.config.model import ClusterConfig
from hacore.hookspecs import hookimpl

from hacore_ping.icmp import open_socket
from hacore_ping.pinger import Pinger, PingStatus
from hacore_ping.score import targets
from hacore_ping.settings import load_settings

__all__ = ["PingPlugin", "plugin"]

log = logging.getLogger("hacore.ping")

# The thread wakes at once when told to stop; this only bounds a thread stuck in the kernel.
_STOP_TIMEOUT_S = 1.0


class PingPlugin:
    """The hooks, and the pinger while the daemon runs."""

    def __init__(self) -> None:
        self._pinger: Pinger | None = None
        self._local_node: str | None = None

    @hookimpl
    def hacore_config_validate(self, config: ClusterConfig) -> list[str]:
        _, problems = load_settings(config)
        if targets(config):
            try:
                open_socket().close()
            except OSError as err:
                problems.append(
                    f"ping nodes need an ICMP socket, which this process may not open "
                    f"({err.strerror}): run hacore as root"
                )
        return problems

    @hookimpl
    def hacore_daemon_started(self, config: ClusterConfig) -> None:
        found = targets(config)
        if not found:
            return
        settings, problems = load_settings(config)
        for problem in problems:  # hacore_config_validate refused these already; be loud anyway
            log.error("%s", problem)
        if self._pinger is not None:  # started twice without a stop: keep no orphan thread
            self._pinger.stop(_STOP_TIMEOUT_S)
        pinger = Pinger(found, settings)
        pinger.start()
        self._pinger, self._local_node = pinger, config.local_node
        log.info(
            "pinging %s every %g s (attempts %d, timeout %g s, multiplier %d, dampen %g s)",
            ", ".join(t.name for t in found),
            settings.interval_ms / 1000,
            settings.attempts,
            settings.timeout_ms / 1000,
            settings.multiplier,
            settings.dampen_ms / 1000,
        )

    @hookimpl
    def hacore_daemon_stopping(self, config: ClusterConfig) -> None:
        pinger, self._pinger = self._pinger, None
        if pinger is not None and not pinger.stop(_STOP_TIMEOUT_S):
            log.warning("the ping thread did not stop within %g s", _STOP_TIMEOUT_S)

    @hookimpl
    def hacore_connectivity_score(self, node: str) -> int | None:
        pinger = self._pinger
        if pinger is None or node != self._local_node:
            return None
        return pinger.score

    def status(self) -> PingStatus | None:
        """What the last round saw; None when nothing is pinged."""
        pinger = self._pinger
        return pinger.status() if pinger is not None else None


plugin = PingPlugin()
