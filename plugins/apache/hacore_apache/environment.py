"""The environment httpd runs in: its envfiles sourced by a shell, as apache2ctl does.

Debian's apache2.conf takes its paths and user from ``${APACHE_*}`` variables that
/etc/apache2/envvars sets. That file is a shell script (it computes ``$SUFFIX`` for multiple
instances, it ``unset``s HOME), so only a shell reads it right. The shell gets a fixed program
and the file names as its arguments: no parameter ever becomes shell text.
"""

from __future__ import annotations

import asyncio
import os
import pwd
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["EnvfileError", "parse_env0", "prepare_directories", "source_envfiles"]

# Like OCF's source_envfiles: a missing or unreadable file is skipped, a failing one is an error.
# `env -0` separates variables by NUL, so a value may hold newlines.
_SOURCE = 'for f do if [ -f "$f" ] && [ -r "$f" ]; then . "$f" || exit 1; fi; done; exec env -0'
_SHELL = "/bin/sh"
# Sourcing a few lines of shell: anything slower than this is a hung envfile.
_SOURCE_TIMEOUT = 10.0


class EnvfileError(Exception):
    """An envfile could not be sourced; the message has the shell's own words."""


def parse_env0(data: bytes) -> dict[str, str]:
    """The variables printed by ``env -0``."""
    env: dict[str, str] = {}
    for entry in data.split(b"\0"):
        name, sep, value = entry.partition(b"=")
        if sep and name:
            env[os.fsdecode(name)] = os.fsdecode(value)
    return env


async def source_envfiles(files: Sequence[Path], base: Mapping[str, str]) -> dict[str, str]:
    """The environment after sourcing ``files`` in order, starting from ``base``."""
    if not files:
        return dict(base)
    proc = await asyncio.create_subprocess_exec(
        _SHELL,
        "-c",
        _SOURCE,
        "sh",
        *(str(f) for f in files),
        env=dict(base),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(_SOURCE_TIMEOUT):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        names = " ".join(str(f) for f in files)
        raise EnvfileError(f"sourcing {names} took more than {_SOURCE_TIMEOUT:g} s") from None
    if proc.returncode != 0:
        detail = err.decode(errors="replace").strip() or f"exit status {proc.returncode}"
        names = " ".join(str(f) for f in files)
        raise EnvfileError(f"cannot source {names}: {detail}")
    return parse_env0(out)


def prepare_directories(env: Mapping[str, str]) -> list[Path]:
    """Create the run, lock and log directories the environment names, as apache2ctl does
    before it starts httpd (Debian's configuration refuses to start without them, and /run is
    emptied at boot). Returns the directories created."""
    created: list[Path] = []
    owner = _user(env.get("APACHE_RUN_USER"))
    run_dir = env.get("APACHE_RUN_DIR")
    wanted = [
        (run_dir, False),
        # mod_cgid's sockets and the mutex files are opened by the unprivileged children.
        (f"{run_dir}/socks" if run_dir else None, True),
        (env.get("APACHE_LOCK_DIR"), True),
        (env.get("APACHE_LOG_DIR"), False),
    ]
    for value, owned in wanted:
        if not value:
            continue
        path = Path(value)
        if path.is_dir():
            continue
        path.mkdir(mode=0o755, parents=True, exist_ok=True)
        created.append(path)
        if owned and owner is not None and os.geteuid() == 0:
            os.chown(path, owner.pw_uid, owner.pw_gid)
    return created


def _user(name: str | None) -> pwd.struct_passwd | None:
    if not name:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None  # httpd itself will say "bad user name"
