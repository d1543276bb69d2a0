"""Suggestions ("did you mean ...?") for misspelt directive names, keys and values."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice nearest to ``word``, or None when nothing is near enough to be a typo."""
    # Compare case-insensitively so that 'Keepalive' still finds 'keepalive', but return the
    # choice as it must be written (Heartbeat's directive names are case-sensitive).
    by_folded = {c.lower(): c for c in choices}
    found = difflib.get_close_matches(word.lower(), list(by_folded), n=1, cutoff=0.6)
    return by_folded[found[0]] if found else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` to append to a message, or an empty string."""
    match = closest(word, choices)
    return f" (did you mean '{match}'?)" if match is not None else ""
