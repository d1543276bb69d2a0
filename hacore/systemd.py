"""systemd integration: readiness and the watchdog, over the notify socket (sd_notify(3)).

Written by hand rather than with a library: the protocol is one datagram of ``KEY=value``
lines to the Unix socket named by ``NOTIFY_SOCKET`` (an abstract one when it starts with '@').
Without that variable (not started by systemd) every call does nothing.

``READY=1`` is sent when membership is up and the local groups are settled, so a unit ordered
after hacore starts once the cluster is really there. ``WATCHDOG=1`` is sent from the keepalive
timer: if the event loop stalls, keepalives stop *and* the watchdog starves, and systemd
restarts a daemon that would otherwise sit there looking alive.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

UNIT_FILE = Path(__file__).with_name("data") / "hacore.service"


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_s = (
            int(usec) / 1_000_000 if usec.isdigit() and (not pid or pid == str(os.getpid())) else 0
        )
        self._sock: socket.socket | None = None
        if self._address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, *lines: str) -> None:
        if self._sock is None:
            return
        # systemd gone or its socket full: never a reason to stall the daemon.
        with contextlib.suppress(OSError):
            self._sock.sendto("\n".join(lines).encode(), self._address)

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        self.notify("STOPPING=1", "STATUS=handing groups over")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
