"""hacore-ping: ping-node connectivity for placement (Heartbeat's ipfail), found by hacore
through the ``hacore.plugins`` entry point ``ping``."""

from __future__ import annotations

from hacore_ping.pinger import Pinger, PingStatus
from hacore_ping.plugin import PingPlugin
from hacore_ping.score import Dampener, Target, targets
from hacore_ping.settings import PingSettings, load_settings

__version__ = "0.1.0"

__all__ = [
    "Dampener",
    "PingPlugin",
    "PingSettings",
    "PingStatus",
    "Pinger",
    "Target",
    "__version__",
    "load_settings",
    "targets",
]
