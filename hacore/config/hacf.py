"""Reader for Heartbeat's ha.cf, following Heartbeat 3.0.6's parser rule for rule.

How a line is read (``parse_config()`` in heartbeat/config.c): leading white space is skipped,
``#`` starts a comment anywhere, the first word is the directive (case-sensitive). For most
directives the rest of the line is split on ``", \\t\\n\\r\\f"`` and *every* token is applied on
its own, so ``node a b`` is two nodes and ``deadtime 10 ms`` applies ``10`` and then fails on
``ms``. The media plugins that parse a whole line (``mcast``, ``ucast``, ...) and the
"whole-line" directives (``respawn``, ``stonith``, ...) see the rest of the line instead.

This module reads the lines and checks the file as a whole; the directive table and the parser
of each directive are in hacf_directives.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from hacore.config.errors import Severity
from hacore.config.files import UnreadableError, decode_lines, read_bytes
from hacore.config.hacf_directives import (
    IGNORED,
    KNOWN,
    LINE_DIRECTIVES,
    MEDIA,
    TOKEN_DIRECTIVES,
    Directives,
    HaCf,
)
from hacore.config.model import AutoFailback, Ignored, Location
from hacore.config.suggest import did_you_mean
from hacore.config.timers import derive_timers

__all__ = ["HaCf", "read_hacf"]

_WHITESPACE = " \t\n\r\f"
_SPLIT_DELIMS = re.compile(r"[, \t\n\r\f]+")
_SPLIT_WHITESPACE = re.compile(r"[ \t\n\r\f]+")


def read_hacf(path: Path) -> HaCf:
    """Read a ha.cf. Problems (including an unreadable file) are in the result."""
    result = HaCf(path)
    try:
        data = read_bytes(path)
    except UnreadableError as e:
        result.problems.append(e.problem)
        return result
    result.readable = True
    lines, problems = decode_lines(data, str(path))
    result.problems.extend(problems)
    directives = Directives(result)
    for number, raw in enumerate(lines, start=1):
        text = raw.lstrip(_WHITESPACE).split("#", 1)[0]
        text = re.split(r"[\r\n]", text, maxsplit=1)[0]
        if not text.strip(_WHITESPACE):
            continue
        at = Location(str(path), number)
        directive = re.split(r"[ \t\n\r\f]", text, maxsplit=1)[0]
        rest = text[len(directive) :].lstrip(", \t\n\r\f").rstrip(_WHITESPACE)
        _apply(directives, directive, rest, at)
    _finish(directives)
    return result


def _apply(d: Directives, directive: str, rest: str, at: Location) -> None:
    """Apply one line: its directive and the rest of the line, as Heartbeat would."""
    if directive not in KNOWN:
        d.error(at, f"unknown directive '{directive}'{did_you_mean(directive, KNOWN)}")
        return
    if directive in IGNORED:
        d.out.ignored.append(Ignored(directive, rest, at))
        reason = IGNORED[directive]
        d.warn(at, f"'{directive}' is accepted but ignored by hacore ({reason})")
        return
    if not rest and directive != "ping_group":
        # Heartbeat applies no token at all, so the line does nothing; say so.
        d.warn(at, f"'{directive}' has no value, so this line does nothing")
        return
    problems_before = len(d.out.problems)
    if directive in LINE_DIRECTIVES:
        LINE_DIRECTIVES[directive](d, directive, _SPLIT_WHITESPACE.split(rest), at)
    else:
        if directive == "udp":
            d.warn(at, "'udp' is Heartbeat's old name for 'bcast'; write 'bcast'")
        for token in _SPLIT_DELIMS.split(rest):
            if token:
                TOKEN_DIRECTIVES[directive](d, directive, token, at)
    if directive in MEDIA and any(
        p.severity is Severity.ERROR for p in d.out.problems[problems_before:]
    ):
        d.broken_media = True


def _finish(d: Directives) -> None:
    """The checks on the file as a whole, once every line is applied."""
    out, file_at = d.out, Location(str(d.out.path))
    out.timers, problems = derive_timers(d.times, file_at)
    out.problems.extend(problems)
    if "freshness" in d.times:
        d.hacore_only("freshness", d.times["freshness"].location)
    if not out.links and not d.broken_media:
        d.error(
            file_at,
            "no heartbeat media: add a 'bcast <interface>' or 'ucast <interface> <peer-ip>' line",
        )
    if not out.nodes:
        d.error(file_at, "no nodes: add a 'node <name>' line for every cluster member")
    written = d.auto_failback_at is not None
    if out.auto_failback is AutoFailback.LEGACY and (not written or "auto_failback" in d.seen):
        d.warn(
            d.auto_failback_at or file_at,
            "auto_failback is 'legacy' (the default when it is not set), which Heartbeat "
            "deprecates: write 'auto_failback on' or 'auto_failback off'",
        )
