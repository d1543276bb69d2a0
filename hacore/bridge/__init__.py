"""The bridge: existing shell agents as hacore Agents (DESIGN.md, "The resource-agent contract").

- ``ocf_agent(provider, type)`` — an OCF resource agent, ``$OCF_ROOT/resource.d/<provider>/<type>``
  (Debian: resource-agents, pacemaker-resource-agents), named ``ocf:<provider>:<type>`` in a
  configuration. Its parameters come from its own meta-data.
- ``lsb_agent(path)`` — a Heartbeat resource script or an LSB init script, named by its bare file
  name in haresources and found by ``find_script`` in ``$HACORE_RESOURCE_DIRS``.

``hacore.plugins.AgentRegistry`` routes configured names here; every script runs through
``hacore.bridge.process``: an argv list (never a shell string), its own process group, killed
whole when its action is abandoned.
"""

from __future__ import annotations

from hacore.bridge.lsb import (
    ScriptAgent,
    ScriptStyle,
    find_script,
    heartbeat_status,
    lsb_agent,
    lsb_status,
    resource_dirs,
)
from hacore.bridge.ocf import OCFAgent, ocf_agent, ocf_agent_named, ocf_root, parse_metadata
from hacore.bridge.process import ScriptResult, rsctmp, run_script

__all__ = [
    "OCFAgent",
    "ScriptAgent",
    "ScriptResult",
    "ScriptStyle",
    "find_script",
    "heartbeat_status",
    "lsb_agent",
    "lsb_status",
    "ocf_agent",
    "ocf_agent_named",
    "ocf_root",
    "parse_metadata",
    "resource_dirs",
    "rsctmp",
    "run_script",
]
