"""Heartbeat's R1 resource exchange (reference 3.9-3.11), as hacore speaks it.

Heartbeat nodes tell each other what they hold with ``t=resource rsc_hold=none|local|foreign|all
isstable=0|1``, ask with ``t=starting`` at comm-up, and say ``info=shutdown`` before they leave.
``rsc_hold`` is relative to the sender: ``local`` are the groups whose preferred node it is.
hacore sends these same messages, with its exact announcement (``hc_*`` fields, which Heartbeat
ignores) attached, so hacore and Heartbeat nodes share one exchange: hacore peers read the
fields, a Heartbeat peer reads ``rsc_hold``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

STARTING = "starting"
RESOURCE = "resource"

NONE, LOCAL, FOREIGN, ALL = "none", "local", "foreign", "all"


def rsc_hold(node: str, held: Iterable[str], preferred: Mapping[str, str]) -> str:
    """Heartbeat's word for what ``node`` holds, given each group's preferred node."""
    kinds = {LOCAL if preferred[key] == node else FOREIGN for key in held if key in preferred}
    if kinds == {LOCAL, FOREIGN}:
        return ALL
    return kinds.pop() if kinds else NONE


def held_by(node: str, word: str, preferred: Mapping[str, str]) -> frozenset[str]:
    """The groups a Heartbeat node holds, from its ``rsc_hold`` word (the inverse of
    ``rsc_hold``, exact for the two-node case Heartbeat's R1 mode supports)."""
    if word == ALL:
        return frozenset(preferred)
    if word == LOCAL:
        return frozenset(k for k, p in preferred.items() if p == node)
    if word == FOREIGN:
        return frozenset(k for k, p in preferred.items() if p != node)
    return frozenset()


def resource_fields(
    hold: str, *, stable: bool, info: str | None = None, full: bool = False
) -> list[tuple[str, str | bytes]]:
    """The fields of a ``t=resource`` message, in Heartbeat's order."""
    fields: list[tuple[str, str | bytes]] = [("rsc_hold", hold)]
    if full:
        fields.append(("rtype", "full"))
    fields.append(("isstable", "1" if stable else "0"))
    if info:
        fields.append(("info", info))
    return fields
