"""Reader for Heartbeat's authkeys, following Heartbeat 3.0.6's ``parse_authfile()``.

The file holds the shared secrets, so it is refused when its group or others may read it
(only the read bits count, as in Heartbeat). A line is a comment only when ``#`` is its first
character: elsewhere ``#`` is part of a key, and a key is one word, everything after it being
ignored. hacore adds the ``sha256`` method (an HMAC-SHA-256), which Heartbeat does not know.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

from hacore.config.errors import Problem, Severity
from hacore.config.files import read_with_mode, unreadable
from hacore.config.model import Auth, AuthKey, AuthMethod, Location
from hacore.config.suggest import did_you_mean

MAX_INDEX = 15  # Heartbeat's MAXAUTH is 16 slots, numbered from 0
KEYED_METHODS = frozenset({AuthMethod.SHA1, AuthMethod.MD5, AuthMethod.SHA256})

_WHITESPACE = " \t\n\r\f\v"
# sscanf("auth %d") and sscanf("%d%s%s"): the space before %d also matches no space at all.
_AUTH_LINE = re.compile(r"auth\s*([+-]?\d+)(.*)", re.DOTALL)
_KEY_LINE = re.compile(r"([+-]?\d+)\s*(\S+)(?:\s+(\S+))?\s*(.*)", re.DOTALL)
_MISSING_HINT = "create it with the lines 'auth 1' and '1 sha1 <secret>', mode 600"


def check_private(path: Path, mode: int) -> Problem | None:
    """A file holding secrets must not be readable by group or others (write bits don't matter,
    exactly Heartbeat's rule)."""
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return Problem(
            Location(str(path)),
            f"readable by group or others (mode {stat.S_IMODE(mode):04o}); run 'chmod 600 {path}'",
        )
    return None


def signing_warning(key: AuthKey, where: Location) -> Problem | None:
    if key.method is AuthMethod.CRC:
        return Problem(
            where,
            f"key {key.index} (the signing key) uses crc, a checksum anyone on the network "
            "can forge; use sha1 (Heartbeat can read it) or sha256",
            Severity.WARNING,
        )
    return None


def read_authkeys(path: Path) -> tuple[Auth | None, list[Problem]]:
    """Read an authkeys file: the keys and the signing key, or None and the problems."""
    file = str(path)
    try:
        data, mode = read_with_mode(path)
    except OSError as e:
        return None, [unreadable(path, e, _MISSING_HINT)]

    problems: list[Problem] = []
    exposed = check_private(path, mode)
    if exposed is not None:
        problems.append(exposed)

    def error(line: int, message: str) -> None:
        problems.append(Problem(Location(file, line), message))

    def warn(line: int, message: str) -> None:
        problems.append(Problem(Location(file, line), message, Severity.WARNING))

    active: int | None = None
    active_line = 0
    # What a broken line might have defined, so that its error is not repeated as "no auth
    # line" or "no such key" at the end.
    broken_auth_line = False
    broken_indexes: set[int] = set()
    keys: dict[int, tuple[AuthKey, int]] = {}
    for number, raw in enumerate(data.split(b"\n"), start=1):
        # Keys are bytes on the wire; surrogateescape keeps any byte of the file as it is.
        text = raw.decode("utf-8", "surrogateescape").strip(_WHITESPACE)
        if not text or text.startswith("#"):
            continue
        if text.startswith("a"):
            m = _AUTH_LINE.fullmatch(text)
            if m is None:
                error(number, f"expected 'auth <key number>', found '{_shown(text)}'")
                broken_auth_line = True
                continue
            if active is not None:
                warn(number, f"'auth' is given again (first on line {active_line}); the last wins")
            active, active_line = int(m[1]), number
            if m[2].strip():
                warn(number, f"'{_shown(m[2].strip())}' after 'auth {active}' is ignored")
            continue
        m = _KEY_LINE.fullmatch(text)
        if m is None:
            # Never echo the line: it may hold a secret.
            error(number, "this line is not '<key number> <method> [<key>]'")
            continue
        index, method_name, secret, extra = int(m[1]), m[2], m[3] or "", m[4]
        broken_indexes.add(index)
        if not 0 <= index <= MAX_INDEX:
            error(number, f"key number {index} is out of range (0 to {MAX_INDEX})")
            continue
        try:
            method = AuthMethod(method_name)
        except ValueError:
            known = [m.value for m in AuthMethod]
            error(
                number,
                f"unknown method '{_shown(method_name)}' (write sha1, md5, crc or sha256)"
                f"{did_you_mean(method_name, known)}",
            )
            continue
        if method is AuthMethod.CRC and secret:
            error(number, f"method 'crc' takes no key (write '{index} crc')")
            continue
        if method in KEYED_METHODS and not secret:
            error(number, f"method '{method}' needs a key (write '{index} {method} <secret>')")
            continue
        if index in keys:
            error(number, f"key {index} is already defined on line {keys[index][1]}")
            continue
        if extra:
            # A pass phrase with spaces: Heartbeat keeps only its first word, and so do we,
            # so that both sign with the same key; but the person should know.
            warn(number, "only the first word is the key; the words after it are ignored")
        if method is AuthMethod.SHA256:
            warn(
                number,
                "'sha256' is hacore's own method: Heartbeat 3.0.6 refuses an authkeys file "
                "that has it",
            )
        key = AuthKey(index, method, secret.encode("utf-8", "surrogateescape"))
        keys[index] = (key, number)
        broken_indexes.discard(index)

    if active is None:
        if not broken_auth_line:
            error(0, "no 'auth <key number>' line (add 'auth 1' above the key lines)")
        return None, problems
    if active not in keys:
        if active in broken_indexes:
            return None, problems
        error(
            active_line,
            f"'auth {active}' names key {active}, but no line defines it "
            f"(add '{active} sha1 <secret>')",
        )
        return None, problems
    signing, signing_line = keys[active]
    if signing_line < active_line:
        # Heartbeat only takes the signing key from a key line read after 'auth N'.
        warn(
            active_line,
            f"Heartbeat 3.0.6 needs 'auth {active}' above the line of key {active}; "
            "move it to the top of the file",
        )
    crc = signing_warning(signing, Location(file, signing_line))
    if crc is not None:
        problems.append(crc)
    if any(p.severity is Severity.ERROR for p in problems):
        return None, problems
    return Auth(active, tuple(k for k, _ in keys.values())), problems


def _shown(text: str) -> str:
    """Text from the file as it may be printed (undecodable bytes shown as escapes)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
