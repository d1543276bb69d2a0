"""Real servers on 127.0.0.1 for the notifiers to talk to: an HTTP server that records every
POST, and a minimal SMTP server (RFC 5321's commands that smtplib uses) that records every mail.

Both run in threads of the test process and are shut down by their context managers.
"""

from __future__ import annotations

import email
import email.policy
import http.server
import json
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any


@dataclass
class Post:
    path: str
    content_type: str
    body: dict[str, Any]


@dataclass
class Webhook:
    """What the HTTP server received, in order, and the status it answers with."""

    url: str
    status: int = 200
    posts: list[Post] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [post.body for post in self.posts]


@contextmanager
def webhook_server() -> Iterator[Webhook]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            post = Post(
                self.path,
                self.headers.get("Content-Type", ""),
                json.loads(self.rfile.read(length)),
            )
            with hook.lock:
                hook.posts.append(post)
            self.send_response(hook.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook = Webhook(f"http://127.0.0.1:{server.server_address[1]}/hooks/hacore")
    thread = threading.Thread(target=server.serve_forever, name="test webhook server")
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class Mailbox:
    host: str
    port: int
    mails: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def received(self) -> list[Mail]:
        with self.lock:
            return list(self.mails)


class _SmtpHandler(socketserver.StreamRequestHandler):
    server: _SmtpServer

    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        self.reply("220 127.0.0.1 test SMTP")
        sender, recipients = "", list[str]()
        while line := self.rfile.readline():
            command = line.decode().rstrip("\r\n")
            verb = command.split(" ", 1)[0].upper()
            argument = command.partition(":")[2].strip().strip("<>")
            if verb in ("EHLO", "HELO"):
                self.reply("250 127.0.0.1")
            elif verb == "MAIL":
                sender, recipients = argument, list[str]()
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(argument)
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                data = self.read_data()
                message = email.message_from_bytes(data, policy=email.policy.default)
                assert isinstance(message, EmailMessage)
                with self.server.mailbox.lock:
                    self.server.mailbox.mails.append(Mail(sender, recipients, message))
                self.reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 command not implemented")

    def read_data(self) -> bytes:
        lines = []
        while (line := self.rfile.readline()) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b".") else line)  # dot-unstuffing
        return b"".join(lines)


class _SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    mailbox: Mailbox


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    server = _SmtpServer(("127.0.0.1", 0), _SmtpHandler)
    server.mailbox = Mailbox("127.0.0.1", server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name="test SMTP server")
    thread.start()
    try:
        yield server.mailbox
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
