"""The three notifiers. Each ``send`` delivers one notice, within its own timeout, or raises.

They run in their own lane (``hacore.dispatch``): a raise is logged and counted there, and the
next notice goes on. Each enforces its timeout itself, because a thread cannot be stopped from
outside: the script's whole process group is killed, and the sockets of urllib and smtplib carry
the timeout on every operation.
"""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import tempfile
import urllib.request
from typing import Protocol

from hacore_notify.message import VARIABLES, Notice, environment, mail, payload
from hacore_notify.settings import (
    ExecSettings,
    MailSettings,
    NotifierSettings,
    WebhookSettings,
)

__all__ = [
    "ExecNotifier",
    "MailNotifier",
    "Notifier",
    "NotifierError",
    "WebhookNotifier",
    "make_notifier",
]

# How much of a failed script's output goes into the log line.
_OUTPUT_TAIL = 300


class NotifierError(Exception):
    """A notice was not delivered; the message says why, for the log."""


class Notifier(Protocol):
    timeout_s: float

    def send(self, notice: Notice) -> None: ...


class ExecNotifier:
    """Runs a program with the ``HACORE_*`` environment; never through a shell."""

    def __init__(self, settings: ExecSettings) -> None:
        self.command = settings.command
        self.timeout_s = settings.timeout_ms / 1000

    def send(self, notice: Notice) -> None:
        env = {k: v for k, v in os.environ.items() if k not in VARIABLES} | environment(notice)
        # A file rather than a pipe: a script that leaves a child behind (holding the pipe open)
        # must not keep us waiting once the script itself has exited.
        with tempfile.TemporaryFile() as output:
            process = subprocess.Popen(
                self.command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Its own process group, so that a timeout kills what it started too.
                start_new_session=True,
            )
            try:
                status = process.wait(self.timeout_s)
            except subprocess.TimeoutExpired:
                # The script is not reaped yet, so its pid (the group id) cannot have been
                # reused. No SIGTERM grace: the notifier's time is already spent.
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise NotifierError(
                    f"{self.command[0]} killed after its {self.timeout_s:g} s timeout"
                ) from None
            if status != 0:
                output.seek(0)
                tail = " ".join(output.read().decode(errors="replace").split())[-_OUTPUT_TAIL:]
                how = f"was killed by signal {-status}" if status < 0 else f"exited with {status}"
                raise NotifierError(f"{self.command[0]} {how}" + (f": {tail}" if tail else ""))


class WebhookNotifier:
    """POSTs the notice as a JSON object; any answer but 2xx is a failure."""

    def __init__(self, settings: WebhookSettings) -> None:
        self.url = settings.url
        self.timeout_s = settings.timeout_ms / 1000

    def send(self, notice: Notice) -> None:
        request = urllib.request.Request(
            self.url,
            data=json.dumps(payload(notice)).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "hacore-notify",
            },
        )
        # urlopen raises HTTPError for 4xx and 5xx answers, URLError when nobody answers.
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            response.read()


class MailNotifier:
    """Sends a plain-text mail through an SMTP relay (no TLS, no login: a local MTA's job)."""

    def __init__(self, settings: MailSettings, local_node: str) -> None:
        self.settings = settings
        self.local_node = local_node
        self.timeout_s = settings.timeout_ms / 1000

    def send(self, notice: Notice) -> None:
        s = self.settings
        message = mail(notice, s.sender, s.recipients)
        # local_hostname: otherwise smtplib asks the resolver for our FQDN (socket.getfqdn),
        # which can hang far beyond the timeout when DNS is what just failed.
        with smtplib.SMTP(
            s.host, s.port, local_hostname=self.local_node, timeout=self.timeout_s
        ) as smtp:
            refused = smtp.send_message(message, s.sender, list(s.recipients))
        if refused:
            raise NotifierError(f"recipients refused: {', '.join(sorted(refused))}")


def make_notifier(settings: NotifierSettings, local_node: str) -> Notifier:
    if isinstance(settings, ExecSettings):
        return ExecNotifier(settings)
    if isinstance(settings, WebhookSettings):
        return WebhookNotifier(settings)
    return MailNotifier(settings, local_node)
