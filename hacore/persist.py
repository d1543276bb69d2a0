"""Node identity kept across restarts: the generation number and the node UUID.

The generation grows at every start so that peers tell a restart from a replay (reference 3.6).
It is written like Heartbeat's ``hb_generation`` (decimal, ``%15lu\\n``) and fsync'd before the
first datagram leaves. hacore takes ``max(stored + 1, time())``: with a sane clock the number
still grows if the file was lost or cannot be written, where Heartbeat would reuse a value.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def next_generation(path: Path, *, now: float | None = None) -> int:
    """Read, increment and persist the generation. Never fails: a write error is logged."""
    stored = 0
    try:
        stored = int(path.read_text().strip() or "0")
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as err:
        log.warning("%s: unreadable generation (%s); starting from the clock", path, err)
    generation = max(stored + 1, int(time.time() if now is None else now))
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_atomic(path, b"%15d\n" % generation)
    except OSError as err:
        log.error(
            "%s: cannot save generation %d (%s); peers may take our next start for "
            "a replay until it can be written",
            path,
            generation,
            err.strerror,
        )
    return generation


def node_uuid(path: Path) -> bytes:
    """The 16-byte node UUID (Heartbeat's ``hb_uuid``), created once."""
    try:
        data = path.read_bytes()
        if len(data) == 16:
            return data
    except OSError:
        pass
    value = uuid.uuid4().bytes
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_atomic(path, value)
    except OSError as err:
        log.error("%s: cannot save node UUID (%s)", path, err.strerror)
    return value
