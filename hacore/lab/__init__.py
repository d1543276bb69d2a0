"""A network-namespace lab: real clusters on one machine, for tests, ``hactl demo`` and benchmarks.

``Lab`` builds a switch and hosts out of network namespaces and injects faults on the switch;
``start_heartbeat`` runs the real Heartbeat 3.0.6 as a lab node; ``start_probe`` measures from a
client which node answers a virtual IP and for how long nobody did. Needs root and iproute2.

Names are imported on first use: ``python -m hacore.lab.probe`` must not find its own module
already imported by this package (runpy warns, and the prober would run from a second copy).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hacore.lab.heartbeat import HeartbeatNode, start_heartbeat, write_heartbeat_config
    from hacore.lab.netns import Host, Lab, LabCommandError, LabError, check_lab_address, wait_for
    from hacore.lab.probe import Probe, ProbeResult, parse_probe, start_probe

__all__ = [
    "HeartbeatNode",
    "Host",
    "Lab",
    "LabCommandError",
    "LabError",
    "Probe",
    "ProbeResult",
    "check_lab_address",
    "parse_probe",
    "start_heartbeat",
    "start_probe",
    "wait_for",
    "write_heartbeat_config",
]

_HOME = {
    "HeartbeatNode": "heartbeat",
    "start_heartbeat": "heartbeat",
    "write_heartbeat_config": "heartbeat",
    "Host": "netns",
    "Lab": "netns",
    "LabCommandError": "netns",
    "LabError": "netns",
    "check_lab_address": "netns",
    "wait_for": "netns",
    "Probe": "probe",
    "ProbeResult": "probe",
    "parse_probe": "probe",
    "start_probe": "probe",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
