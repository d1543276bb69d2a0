"""Asking the server: a TCP connect (monitor depth 0) and a status-page fetch (depth 10).

The fetch uses urllib in a thread, so the event loop never waits on the network; its timeout
bounds the thread. HTTPS certificates are not verified: the agent talks to its own server on
this node, whose certificate is typically made for the virtual IP's name (or self-signed), and
what the monitor checks is that the server answers, not who it is. Proxies from the
environment are ignored, as OCF's ``wget --no-proxy`` does: the status page is local.

The request leaves from loopback (127.0.0.1 or ::1), as OCF's ``wget --bind-address`` does, so
that the ``Require local`` guarding a status page admits it even on a virtual IP: Linux gives a
connection to a local secondary address the interface's primary address as its source, which
is neither loopback nor the address connected to.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import ipaddress
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass

__all__ = ["Answer", "NoAnswer", "connect", "fetch"]

# Enough for any status page; a body larger than this is cut, not an error.
_MAX_BODY = 1 << 20
_USER_AGENT = "hacore-apache monitor"


class NoAnswer(Exception):  # noqa: N818 - reads as the condition, as TimeoutError does
    """Nothing answered (refused, reset, timed out, TLS failed); the message says which."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, whatever its status."""

    url: str
    status: int
    reason: str
    body: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


async def connect(host: str, port: int, timeout: float) -> None:
    """Open and close a TCP connection; raise NoAnswer if that cannot be done in time."""
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        raise NoAnswer(f"no TCP answer from {_where(host, port)} within {timeout:g} s") from None
    except OSError as err:
        raise NoAnswer(f"cannot connect to {_where(host, port)}: {_reason(err)}") from None
    writer.close()
    # A reset on close still proved that the server accepted the connection.
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def fetch(url: str, timeout: float) -> Answer:
    """GET ``url`` (redirects followed); raise NoAnswer if no HTTP answer came in time."""
    return await asyncio.to_thread(_fetch, url, timeout)


def _fetch(url: str, timeout: float) -> Answer:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), _HTTPHandler(), _HTTPSHandler(context)
    )
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(_MAX_BODY)
            return Answer(url, response.status, response.reason, _decode(body))
    except urllib.error.HTTPError as err:  # an answer, only not a 2xx one
        with err:
            body = err.read(_MAX_BODY)
        return Answer(url, err.code, str(err.reason), _decode(body))
    except urllib.error.URLError as err:
        reason = err.reason
        detail = _reason(reason) if isinstance(reason, BaseException) else str(reason)
        raise NoAnswer(f"{url}: {detail}") from None
    except TimeoutError:
        raise NoAnswer(f"{url}: no answer within {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as err:
        raise NoAnswer(f"{url}: {_reason(err)}") from None


class _LoopbackHTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        self.source_address = _loopback_for(self.host)
        super().connect()


class _LoopbackHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        self.source_address = _loopback_for(self.host)
        super().connect()


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_LoopbackHTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self._tls = context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_LoopbackHTTPSConnection, req, context=self._tls)


def _loopback_for(host: str) -> tuple[str, int] | None:
    """The loopback address of ``host``'s family, to connect from."""
    try:
        version = ipaddress.ip_address(host).version
    except ValueError:
        try:
            family = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][0]
        except OSError:
            return None  # the connection attempt will say what is wrong with the name
        version = 6 if family == socket.AF_INET6 else 4
    return ("::1", 0) if version == 6 else ("127.0.0.1", 0)


def _decode(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def _reason(err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
