"""What a notifier says about an event: environment variables, a JSON object, a mail. Pure.

A ``Notice`` is one event as the plugin received it, numbered in that order (``sequence``, from 1
at daemon start: a receiver that sees a gap knows that something was dropped), with the node that
saw it. Scripts get the ``HACORE_*`` variables, as keepalived's notify scripts get their arguments
and Pacemaker's alert agents their ``CRM_alert_*`` variables; a variable that does not apply to
the event is left unset (a group-wide action has no ``HACORE_RESOURCE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

from hacore.events import NodeEvent, ResourceEvent

from hacore_notify.settings import EventKind

__all__ = ["VARIABLES", "Notice", "environment", "mail", "payload", "summary"]

# Every variable a script may receive: removed from the daemon's own environment first, so a
# value can never leak from the daemon's start-up into an event it does not belong to.
VARIABLES = (
    "HACORE_EVENT",
    "HACORE_SEQUENCE",
    "HACORE_CLUSTER",
    "HACORE_LOCAL_NODE",
    "HACORE_TIMESTAMP",
    "HACORE_NODE",
    "HACORE_OLD_STATE",
    "HACORE_NEW_STATE",
    "HACORE_REASON",
    "HACORE_GROUP",
    "HACORE_RESOURCE",
    "HACORE_ACTION",
    "HACORE_RESULT",
    "HACORE_RC",
    "HACORE_DETAIL",
)


@dataclass(frozen=True)
class Notice:
    event: NodeEvent | ResourceEvent
    sequence: int
    local_node: str

    @property
    def kind(self) -> EventKind:
        return EventKind.NODE if isinstance(self.event, NodeEvent) else EventKind.RESOURCE


def payload(notice: Notice) -> dict[str, object]:
    """The JSON object a webhook receives."""
    event = notice.event
    common: dict[str, object] = {
        "event": notice.kind.value,
        "sequence": notice.sequence,
        "cluster": event.cluster,
        "local_node": notice.local_node,
        "timestamp": event.timestamp.isoformat(),
    }
    if isinstance(event, NodeEvent):
        return common | {
            "node": event.node,
            "old_state": event.old_state,
            "new_state": event.new_state,
            "reason": event.reason,
        }
    return common | {
        "node": event.node,
        "group": event.group,
        "resource": event.resource,
        "action": event.action.value,
        "result": event.result.name,
        "rc": int(event.result),
        "detail": event.detail,
    }


def environment(notice: Notice) -> dict[str, str]:
    """The ``HACORE_*`` variables a script receives (only those that apply)."""
    values = payload(notice)
    env = {
        f"HACORE_{key.upper()}": str(value)
        for key, value in values.items()
        if value is not None and key != "event"
    }
    env["HACORE_EVENT"] = notice.kind.value
    return env


def summary(notice: Notice) -> str:
    """One line: a mail's subject, and how log lines name the event."""
    event = notice.event
    if isinstance(event, NodeEvent):
        return f"node {event.node}: {event.old_state} -> {event.new_state}"
    what = f"{event.resource} {event.action}" if event.resource else f"{event.action}"
    return f"group {event.group}: {what} on {event.node}: {event.result.name}"


def mail(notice: Notice, sender: str, recipients: tuple[str, ...]) -> EmailMessage:
    """The mail a mail notifier sends: the summary as subject, every field in the body."""
    message = EmailMessage()
    message["Subject"] = f"[hacore {notice.event.cluster}] {summary(notice)}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(notice.event.timestamp)
    lines = [f"{key}: {value}" for key, value in payload(notice).items() if value not in (None, "")]
    message.set_content("\n".join(lines) + "\n")
    return message
