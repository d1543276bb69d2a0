"""What the daemon and ``hactl run`` need of the metrics endpoint without importing it: the
endpoint itself (``hacore.exporter``, prometheus_client) is loaded only when configured."""

from __future__ import annotations

__all__ = ["REFRESH_S", "MetricsError"]

# How often the daemon hands the endpoint a fresh status snapshot.
REFRESH_S = 1.0


class MetricsError(Exception):
    """The endpoint cannot listen; the message names the address and what to do."""
