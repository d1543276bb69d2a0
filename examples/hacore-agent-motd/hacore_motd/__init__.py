"""hacore-agent-motd: an example resource agent distribution (the ``Motd`` agent)."""

from __future__ import annotations

from hacore_motd.agent import Motd

__all__ = ["Motd"]
