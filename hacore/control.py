"""The control socket: ``hactl`` talks to a running daemon over a Unix socket, one JSON object
per line each way. Root-only by default: the socket is mode 0600 and the peer's uid is checked,
so a local user can neither read the cluster's state nor move its resources.

Requests are handled on the event loop but each one is a small, bounded piece of work; anything
slow a command triggers (an agent action) is started, not awaited, so keepalives never wait.
"""

from __future__ import annotations

import asyncio
import contextlib
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


class ControlServer:
    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
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

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            uid = _peer_uid(writer)
            if uid not in (0, os.getuid()):
                reply: dict[str, Any] = {"ok": False, "error": "permission denied: run as root"}
            else:
                reply = await self._answer(reader)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            request = json.loads(line)
            if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
                raise ValueError("not a command object")
        except (ValueError, asyncio.LimitOverrunError, TimeoutError) as err:
            return {"ok": False, "error": f"bad request: {err}"}
        try:
            return await self.handler(request)
        except Exception as err:  # one bad request must not take the daemon down
            log.exception("control request %r failed", request.get("cmd"))
            return {"ok": False, "error": f"internal error: {err}"}

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
    try:
        reply = json.loads(data)
    except ValueError:
        raise ControlError(f"unreadable reply from the daemon at {path}") from None
    if not isinstance(reply, dict):
        raise ControlError(f"unreadable reply from the daemon at {path}")
    return reply
