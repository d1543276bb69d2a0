"""hacore: a high-availability cluster manager, Heartbeat's successor."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
