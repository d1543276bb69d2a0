"""A client that keeps fetching a URL from inside a lab host, and what it saw.

Run in the client's namespace (``start_fetcher``), it requests the URL at a fixed spacing for a
bounded time, each request with a short timeout, and writes one JSON line per request: when it
was sent, whether it succeeded, and the first line of the body (the lab's pages name the node
that served them). Certificates are not verified: the lab's sites are self-signed, and the
point is to see which node answers, not to authenticate it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from hacore.lab.netns import Host, wait_for


def _fetch_once(url: str, timeout: float, context: ssl.SSLContext) -> tuple[bool, str]:
    # No proxy: a lab address must never be sent anywhere but to the lab.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(url, timeout=timeout) as response:
            body = response.read(4096).decode("utf-8", "replace")
        return True, body.strip().splitlines()[0] if body.strip() else ""
    except (OSError, urllib.error.URLError, ValueError) as err:
        return False, type(err).__name__


def run(url: str, *, interval: float, duration: float, timeout: float, out: IO[str]) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    end = time.monotonic() + duration
    next_at = time.monotonic()
    while time.monotonic() < end:
        sent = time.time()
        ok, text = _fetch_once(url, timeout, context)
        out.write(json.dumps({"t": sent, "done": time.time(), "ok": ok, "text": text}) + "\n")
        out.flush()
        next_at = max(next_at + interval, time.monotonic())
        time.sleep(max(0.0, next_at - time.monotonic()))


@dataclass(frozen=True)
class Fetch:
    sent: float  # wall clock, comparable with the probe's and the watcher's times
    done: float
    ok: bool
    text: str


class Fetcher:
    def __init__(self, host: Host, url: str, output: Path, duration: float) -> None:
        self.output = output
        argv = [
            sys.executable, "-m", "hacore.lab.fetcher", url,
            "--duration", str(duration), "--output", str(output),
        ]  # fmt: skip
        self.proc = host.run(argv)

    def results(self) -> list[Fetch]:
        try:
            lines = self.output.read_text().splitlines()
        except FileNotFoundError:
            return []
        out: list[Fetch] = []
        for line in lines:
            try:
                d = json.loads(line)
                out.append(Fetch(d["t"], d["done"], d["ok"], d["text"]))
            except (ValueError, KeyError):
                continue  # the line being written
        return out

    def first(self, text: str, after: float = 0.0) -> Fetch | None:
        """The first successful fetch whose text contains ``text``, sent after ``after``."""
        return next(
            (f for f in self.results() if f.ok and text in f.text and f.sent >= after), None
        )

    def wait_for(self, text: str, timeout: float, after: float = 0.0) -> Fetch:
        return wait_for(lambda: self.first(text, after), timeout, what=f"a page saying {text!r}")

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time between successful fetches in [start, end] (seconds)."""
        marks = [start, *(f.done for f in self.results() if f.ok and start <= f.done <= end), end]
        return max((b - a for a, b in itertools.pairwise(marks)), default=0.0)


def start_fetcher(host: Host, url: str, output: Path, *, duration: float) -> Fetcher:
    return Fetcher(host, url, output, duration)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--timeout", type=float, default=0.5)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    with args.output.open("a") as out:
        run(args.url, interval=args.interval, duration=args.duration, timeout=args.timeout, out=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
