"""Reader for Heartbeat's haresources: one resource group per logical line.

The grammar is what Heartbeat's ResourceManager script makes of the file: ``#`` starts a
comment anywhere, a line ending in a backslash is joined to the next one (the backslash and
the newline simply vanish), white space is collapsed, and the first word, lower-cased, is the
preferred node. Each further word is a resource ``Agent::arg1::arg2``; a word that looks like
an IPv4 address stands for ``IPaddr::<word>``. The first resource is the group's key and must
be unique in the file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from hacore.config.errors import Problem, Severity
from hacore.config.files import UnreadableError, decode_lines, read_bytes
from hacore.config.model import Group, Location, Resource

# ResourceManager's isip(): the shell pattern [0-9]*.[0-9]*.[0-9]*.[0-9]*, i.e. a digit, then
# three more dots each followed by a digit, with anything in between ("192.168.10.55/24/eth0").
_LOOKS_LIKE_IP = re.compile(r"[0-9].*\.[0-9].*\.[0-9].*\.[0-9].*", re.DOTALL)


def parse_resource(word: str, at: Location) -> Resource:
    """A haresources resource word as a Resource; raises ValueError for an empty agent name."""
    if _LOOKS_LIKE_IP.fullmatch(word):
        word = f"IPaddr::{word}"
    agent, *args = word.split("::")
    if not agent:
        raise ValueError(f"resource '{word}' has no agent name before '::'")
    return Resource(agent, tuple(args), location=at)


def _logical_lines(lines: Sequence[str], file: str) -> tuple[list[tuple[int, str]], list[Problem]]:
    """Join continued lines; each logical line comes with the number of its first line."""
    joined: list[tuple[int, str]] = []
    problems: list[Problem] = []
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(lines, start=1):
        text = raw.rstrip("\r")
        comment = text.find("#")
        if comment >= 0:
            if pending is not None:
                # Heartbeat strips comments before joining, so the words of a comment on a
                # continuation line became resources there. hacore drops the comment.
                problems.append(
                    Problem(
                        Location(file, number),
                        "a comment inside a continued line: Heartbeat would read its words "
                        "as resources; move it to a line of its own",
                        Severity.WARNING,
                    )
                )
            text = text[:comment]
        start, so_far = pending if pending is not None else (number, "")
        if text.endswith("\\"):
            pending = (start, so_far + text[:-1])
            continue
        pending = None
        joined.append((start, so_far + text))
    if pending is not None:
        joined.append(pending)
    return joined, problems


def read_haresources(path: Path) -> tuple[tuple[Group, ...], list[Problem]]:
    """Read a haresources file. A missing file means no groups; node names are checked
    separately (``check_groups``) because they depend on ha.cf."""
    file = str(path)
    try:
        data = read_bytes(path)
    except UnreadableError as e:
        if not path.exists() and not path.is_symlink():
            return (), []
        return (), [e.problem]
    lines, problems = decode_lines(data, file)
    logical, join_problems = _logical_lines(lines, file)
    problems.extend(join_problems)
    groups: list[Group] = []
    for number, text in logical:
        words = text.split()
        if not words:
            continue
        at = Location(file, number)
        node, *resource_words = words
        node = node.lower()
        if not resource_words:
            problems.append(
                Problem(at, f"'{node}' has no resources (write '{node} <resource> ...')")
            )
            continue
        try:
            resources = tuple(parse_resource(w, at) for w in resource_words)
        except ValueError as e:
            problems.append(Problem(at, str(e)))
            continue
        groups.append(Group(node, resources, location=at))
    return tuple(groups), problems


def check_groups(groups: Sequence[Group], nodes: Sequence[str], where: str) -> list[Problem]:
    """Checks every reader applies to the groups: known preferred nodes and unique keys.
    ``where`` names the place in messages ("haresources", "cluster.toml")."""
    problems: list[Problem] = []
    first_with_key: dict[str, Group] = {}
    holder: dict[str, Group] = {}
    for group in groups:
        if group.preferred_node not in nodes:
            problems.append(
                Problem(
                    group.location,
                    f"unknown node '{group.preferred_node}' in {where} "
                    f"(nodes are: {', '.join(nodes)})",
                )
            )
        other = first_with_key.get(group.key)
        if other is not None:
            problems.append(
                Problem(
                    group.location,
                    f"group key '{group.key}' is already used on line {other.location.line} "
                    "(the first resource of each group must be unique)",
                )
            )
            continue
        first_with_key[group.key] = group
        for resource in group.resources:
            owner = holder.setdefault(resource.spec, group)
            if owner is not group:
                problems.append(
                    Problem(
                        group.location,
                        f"resource '{resource.spec}' is also in the group on line "
                        f"{owner.location.line}; both groups would start it",
                        Severity.WARNING,
                    )
                )
    return problems
