"""Events for the tests: what the core would hand the notify plugin during a failover."""

from __future__ import annotations

from datetime import UTC, datetime

from hacore.agent import OCFResult
from hacore.events import NodeEvent, ResourceAction, ResourceEvent

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def node_event(node: str = "pc1", old: str = "active", new: str = "dead") -> NodeEvent:
    return NodeEvent(
        node=node,
        old_state=old,
        new_state=new,
        reason="no keepalive for 10000 ms" if new == "dead" else "",
        cluster="linux-ha",
        local_node="pc2",
        timestamp=T0,
    )


def resource_event(
    action: ResourceAction = ResourceAction.START,
    resource: str | None = "IPaddr::198.51.100.55/24/eth0",
    result: OCFResult = OCFResult.SUCCESS,
) -> ResourceEvent:
    return ResourceEvent(
        group="IPaddr::198.51.100.55/24/eth0",
        resource=resource,
        action=action,
        result=result,
        node="pc2",
        cluster="linux-ha",
        timestamp=T0,
        detail="",
    )


# A failover as pc2 sees it: pc1 dies, pc2 takes its group, resource by resource.
FAILOVER = (
    node_event("pc1", "active", "dead"),
    resource_event(ResourceAction.START, "IPaddr::198.51.100.55/24/eth0"),
    resource_event(ResourceAction.START, "apache"),
    resource_event(ResourceAction.FAILOVER, None),
    node_event("pc1", "dead", "up"),
)
