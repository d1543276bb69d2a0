"""hacore's test kit for agent authors: the conformance suite and the Dummy agent.

``check_agent`` / ``run_conformance`` run ocf-tester's sequence on an agent class; the pytest
fixture ``agent_conformance`` (``hacore.testing.pytest_plugin``, registered as a pytest11 entry
point) wraps them for an agent distribution's own tests. ``Dummy`` is the agent that manages
only a state file, for testing the cluster without touching the network.
"""

from __future__ import annotations

from hacore.testing.conformance import (
    Check,
    ConformanceReport,
    MetadataCheck,
    XMLCheckMethod,
    check_agent,
    check_metadata_xml,
    run_conformance,
)
from hacore.testing.dummy import Dummy

__all__ = [
    "Check",
    "ConformanceReport",
    "Dummy",
    "MetadataCheck",
    "XMLCheckMethod",
    "check_agent",
    "check_metadata_xml",
    "run_conformance",
]
