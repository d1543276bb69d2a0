"""The control socket: ``hactl`` talks to a running daemon over a Unix socket, one JSON object
per line each way. Root-only by default: the socket is mode 0600 and the peer's uid is checked,
so a local user can neither read the cluster's state nor move its resources. With a control
group (``control_group`` in ha.cf) the socket is 0660 root:group, its directory 0710 (members
may pass, not list), and a peer whose groups include it is served too.

Requests are handled on the event loop but each one is a small, bounded piece of work; anything
slow a command triggers (an agent action) is started, not awaited, so keepalives never wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
MAX_REQUEST = 64 * 1024
# sun_path holds 108 bytes; deeper paths (pytest's tmp dirs) go through /proc/self/fd.
_SUN_PATH_MAX = 100
# Linux's SO_PEERGROUPS (4.13+; the socket module does not name it): the peer's groups at connect.
_SO_PEERGROUPS = 59
_MAX_PEER_GROUPS = 256
DENIED = "permission denied: run as root"


class ControlError(Exception):
    """The daemon cannot be reached or refused the request."""


@contextlib.contextmanager
def _short_path(path: Path) -> Iterator[str]:
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def _peer_uid(writer: asyncio.StreamWriter) -> int | None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def _peer_groups(writer: asyncio.StreamWriter) -> set[int]:
    """The peer's primary and supplementary groups, as the kernel saw them at connect()."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return set()
    size = struct.calcsize("I")
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    groups = {struct.unpack("3i", creds)[2]}
    with contextlib.suppress(OSError):
        raw = sock.getsockopt(socket.SOL_SOCKET, _SO_PEERGROUPS, size * _MAX_PEER_GROUPS)
        groups.update(struct.unpack(f"{len(raw) // size}I", raw))
    return groups


class ControlServer:
    def __init__(self, path: Path, handler: Handler, *, group: str | None = None) -> None:
        self.path = path
        self.handler = handler
        self.group = group
        self._gid: int | None = None
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        if self.group is not None:
            try:
                self._gid = grp.getgrnam(self.group).gr_gid
            except KeyError:
                raise ControlError(f"control group '{self.group}' does not exist") from None
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old = os.umask(0o177)
        try:
            with _short_path(self.path) as where:
                self._server = await asyncio.start_unix_server(
                    self._serve, path=where, limit=MAX_REQUEST
                )
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        if self._gid is not None:
            self._open_to_group(self._gid)

    def _open_to_group(self, gid: int) -> None:
        # The directory is hacore's own (state dir, /run/hacore): let the group pass through it,
        # but never touch one shared with others (/tmp) or owned by somebody else.
        parent = self.path.parent.stat()
        if parent.st_uid == os.getuid() and not parent.st_mode & 0o007:
            os.chown(self.path.parent, -1, gid)
            os.chmod(self.path.parent, (parent.st_mode & 0o700) | 0o010)
        os.chown(self.path, -1, gid)
        os.chmod(self.path, 0o660)

    def _allowed(self, writer: asyncio.StreamWriter) -> bool:
        if _peer_uid(writer) in (0, os.getuid()):
            return True
        return self._gid is not None and self._gid in _peer_groups(writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            reply = await self._answer(reader, allowed=self._allowed(writer))
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, *, allowed: bool) -> dict[str, Any]:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            # Refused only once the request is read: a reply and close before it would race the
            # client's send, which then fails with EPIPE instead of showing the refusal.
            if not allowed:
                return {"ok": False, "error": self._denied}
            request = json.loads(line)
            if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
                raise ValueError("not a command object")
        except (ValueError, asyncio.LimitOverrunError, TimeoutError) as err:
            if not allowed:
                return {"ok": False, "error": self._denied}
            return {"ok": False, "error": f"bad request: {err}"}
        try:
            return await self.handler(request)
        except Exception as err:  # one bad request must not take the daemon down
            # One line a person can act on; the traceback (for a bug report) only at debug level.
            log.error(
                "control request %r failed: %r (details with debug on)", request.get("cmd"), err
            )
            log.debug("control request %r: traceback", request.get("cmd"), exc_info=True)
            return {"ok": False, "error": f"internal error: {err}"}

    @property
    def _denied(self) -> str:
        if self.group is None:
            return DENIED
        return f"permission denied: run as root or as a member of group '{self.group}'"

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


def request(path: Path, cmd: str, timeout: float = 5.0, **args: Any) -> dict[str, Any]:
    """Send one command to the daemon and return its reply (blocking; for the CLI)."""
    payload = json.dumps({"cmd": cmd, **args}).encode() + b"\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            with _short_path(path) as where:
                sock.connect(where)
        except FileNotFoundError:
            raise ControlError(f"daemon not running (no control socket at {path})") from None
        except ConnectionRefusedError:
            raise ControlError(f"daemon not running (stale control socket at {path})") from None
        except PermissionError:
            raise ControlError(f"permission denied on {path}: run as root") from None
        except OSError as err:
            raise ControlError(f"cannot reach the daemon at {path}: {err.strerror}") from None
        try:
            sock.sendall(payload)
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            raise ControlError(f"the daemon at {path} did not answer within {timeout} s") from None
        except ConnectionError:
            raise ControlError(f"the daemon at {path} closed the connection") from None
    try:
        reply = json.loads(data)
    except ValueError:
        raise ControlError(f"unreadable reply from the daemon at {path}") from None
    if not isinstance(reply, dict):
        raise ControlError(f"unreadable reply from the daemon at {path}")
    return reply
