"""The fuzz targets: each takes one input (bytes) and states the contract that must hold for it.

A target returns normally when the contract holds; any exception it lets escape is a crash the
fuzzer reports (atheris writes the input to a ``crash-*`` file). The contracts:

* ``wire``: ``decode`` returns a ``Decoded`` or raises ``WireError``, never anything else; what
  it accepts re-encodes to a datagram it accepts again with the same fields.
* ``envelope``: with a real key, ``open_envelope`` returns a message only when the token is the
  one that key computes, and otherwise raises ``Rejected`` with a ``Verdict``; an accepted
  message then goes through a fresh ``Membership``, which may refuse it (counted by verdict) but
  never raises. Three shapes of input reach past the HMAC: raw bytes, a fuzzed body under a
  valid trailer, and structured messages sealed with the key (either wire form).
* ``hacf``, ``authkeys``, ``haresources``, ``toml``: the file as input, the others valid;
  ``load`` gives a configuration or ``ConfigError`` with problems, never another exception.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hacore.config import ConfigError, load
from hacore.config.model import Auth, AuthKey, AuthMethod, Timers
from hacore.membership.auth import sign, verify
from hacore.membership.detector import Membership
from hacore.membership.envelope import Rejected, open_envelope, seal
from hacore.membership.wire import (
    AUTH_FIELD,
    NETSTRING_END,
    NETSTRING_START,
    Message,
    Value,
    Verdict,
    WireError,
    auth_netstring,
    decode,
    encode_body,
    encode_classic,
    with_inner_auth,
)

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "vectors"
CONFIG_CORPUS = ROOT / "tests" / "config_corpus"

# The receiving node's keys: an HMAC key that signs, an old sha1 one still accepted (rotation),
# and a crc line, which must be refused as WEAK_AUTH unless crc is allowed.
KEY = AuthKey(1, AuthMethod.SHA256, b"fuzz-the-real-key")
AUTH = Auth(1, (KEY, AuthKey(2, AuthMethod.SHA1, b"old-key"), AuthKey(3, AuthMethod.CRC, b"")))
NODES = ("pc1", "pc2", "pc3")
LOCAL = "pc1"
# The receiver's wall clock: structured inputs mostly carry timestamps near it.
WALL = 1_764_000_000.0
TIMERS = Timers(keepalive_ms=100, deadtime_ms=1000, warntime_ms=500, initdead_ms=2000)


class ContractError(AssertionError):
    """The code under test returned normally but broke its contract."""


# --------------------------------------------------------------------------------------------
# Datagrams


def wire(data: bytes) -> None:
    try:
        decoded = decode(data)
    except WireError as err:
        if not isinstance(err.reason, Verdict):
            raise ContractError(f"WireError without a Verdict: {err!r}") from None
        return
    # What was accepted must survive a re-encoding: the same fields come back.
    again = decode(encode_body(decoded.message) + auth_netstring(decoded.auth_index, "0"))
    if again.message != decoded.message:
        raise ContractError("re-encoded netstring form decodes to other fields")


def _membership() -> Membership:
    return Membership(
        local=LOCAL,
        nodes=NODES,
        links=("eth0", "eth1"),
        timers=TIMERS,
        generation=7,
        uuid=b"\x01" * 16,
        now=0.0,
        rng=random.Random(0),
    )


def _open(data: bytes, allow_crc: bool) -> Message | None:
    try:
        message = open_envelope(data, AUTH, allow_crc=allow_crc)
    except Rejected as err:
        if not isinstance(err.verdict, Verdict) or err.verdict is Verdict.OK:
            raise ContractError(f"rejected without a refusal verdict: {err!r}") from None
        return None
    # Accepted: the datagram must really carry a token the named key computes.
    decoded = decode(data)
    key = AUTH.key(decoded.auth_index)
    if key is None or not verify(key, decoded.signed, decoded.token):
        raise ContractError("accepted a datagram whose token does not verify")
    if key.method is AuthMethod.CRC and not allow_crc:
        raise ContractError("accepted crc where it is not allowed")
    if any(name == AUTH_FIELD for name, _ in message.fields):
        raise ContractError("the auth field leaked into the opened message")
    return message


def _deliver(message: Message, link: str, now: float) -> None:
    """An authentic message through membership twice (the second is a replay): it may be
    refused, but only with a counted verdict."""
    membership = _membership()
    membership.tick(now, WALL)
    for _ in range(2):
        membership.receive(message, link, now, WALL)
        membership.tick(now + 0.05, WALL)
    membership.view(now + 0.1)


_FIELD_NAMES: tuple[str, ...] = ("t", "st", "src", "srcuuid", "seq", "hg", "ts", "ld", "ttl")
_FIELD_NAMES += ("dt", "dest", "firstseq", "lastseq", "rsc_hold", "resource", "info", AUTH_FIELD)
_TYPES: tuple[str, ...] = ("status", "NS_rexmit", "NS_nak", "NS_reqnodes", "shutdone")
_TYPES += ("resource", "starting", "ask_resources", "hb_takeover", "NS_ackmsg", "x")
_STATES = ("up", "active", "dead", "init", "ping", "bogus", "")


@dataclass
class _Bytes:
    """A cursor over the input: the structured generator's source of choices."""

    data: bytes
    pos: int = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def pick(self, options: tuple[str, ...]) -> str:
        return options[self.byte() % len(options)]

    def chunk(self) -> bytes:
        size = self.byte() % 24
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out

    def hexnum(self) -> str:
        kind = self.byte() % 8
        if kind == 0:  # anything int(x, 16) might take: signs, 0x, underscores, spaces
            return self.chunk().decode("latin-1")
        if kind == 1:
            return "f" * (1 + self.byte() * 2)  # huge
        return f"{int.from_bytes(self.chunk()[:8], 'big'):x}"


def _value(src: _Bytes, name: str) -> Value:
    kind = src.byte() % 6
    if kind == 0:
        return src.chunk()  # binary
    if kind == 1:
        return src.chunk().decode("utf-8", "replace")
    if name == "t":
        return src.pick(_TYPES)
    if name == "st":
        return src.pick(_STATES)
    if name in ("src", "dest"):
        return src.pick((*NODES, "mallory", ""))
    if name == "ts":  # mostly near our clock, sometimes far off, sometimes any number
        if kind == 5:
            return src.hexnum()
        return f"{int(WALL) + (src.byte() - 128) * (1 if kind < 4 else 100_000):x}"
    if name == "srcuuid":
        return b"\x02" * 16
    return src.hexnum()


def structured(data: bytes) -> Message | None:
    """A message shaped like Heartbeat's, chosen by the input's bytes (None: not a Message)."""
    src = _Bytes(data)
    fields: list[tuple[str, Value]] = [("t", src.pick(_TYPES))]
    for _ in range(src.byte() % 14):
        name = src.pick(_FIELD_NAMES) if src.byte() % 8 else src.chunk().decode("latin-1")
        fields.append((name, _value(src, name)))
    try:
        return Message(tuple(fields))
    except ValueError:
        return None


def envelope(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 4, data[1:]
    allow_crc = data[0] >= 0x80
    if mode == 0:  # raw bytes from the LAN
        datagram = rest
    elif mode == 1:  # a fuzzed body under a trailer the key really computes
        body = NETSTRING_START + rest + NETSTRING_END
        datagram = body + auth_netstring(KEY.index, sign(KEY, body))
    else:  # a structured message, sealed (mode 2) or in the classic form (mode 3)
        message = structured(rest)
        if message is None:
            return
        try:
            datagram = seal(message, AUTH) if mode == 2 else encode_classic(message, KEY)
        except ValueError:
            return  # too big to send: seal refuses it, as it should
        if rest and rest[-1] % 5 == 0:  # flip one byte: must then be refused
            at = rest[-1] * 7 % len(datagram)
            datagram = datagram[:at] + bytes([datagram[at] ^ 0x20]) + datagram[at + 1 :]
    message = _open(datagram, allow_crc)
    if message is not None:
        _deliver(message, "eth0" if data[0] & 0x40 else "eth1", 1.0)


def datagram_seeds() -> Iterator[tuple[str, bytes]]:
    """Heartbeat's own packets (tests/vectors) raw, and their messages re-sealed with ``KEY``."""
    doc = json.loads((VECTORS / "libplumb.json").read_text())
    for vector in doc["vectors"]:
        name = vector["name"]
        yield f"{name}.wire", vector["wire"].encode("latin-1")
        yield f"{name}.classic", vector["classic"].encode("latin-1")
        fields = tuple(
            (n, v if isinstance(v, str) else bytes.fromhex(v["hex"])) for n, v in vector["fields"]
        )
        try:
            message = Message(fields)
        except ValueError:
            continue
        body = encode_body(with_inner_auth(message, KEY))
        yield f"{name}.sealed", body + auth_netstring(KEY.index, sign(KEY, body))
    status = _membership().status(WALL)
    yield "status.sealed", seal(status, AUTH)
    yield "status.classic", encode_classic(status, KEY)


def envelope_seeds() -> Iterator[tuple[str, bytes]]:
    """The datagram seeds behind each mode byte, and a structured status."""
    for name, seed in datagram_seeds():
        yield f"raw-{name}", b"\x00" + seed
        if seed.startswith(NETSTRING_START):
            inner = seed[len(NETSTRING_START) :].split(NETSTRING_END, 1)[0]
            yield f"body-{name}", b"\x01" + inner
    for mode in (2, 3):  # a status of pc2, in each wire form
        yield f"structured-status-{mode}", bytes([mode, *_STATUS_CHOICES])


def _field_choices(name: str, *value: int) -> list[int]:
    """The bytes ``structured`` reads to add field ``name`` with a non-binary value (kind 2)
    whose own choices are ``value``."""
    return [1, _FIELD_NAMES.index(name), 2, *value]


# t=status, then src=pc2, seq=1, hg=7, ts=our clock, st=active: a message membership delivers.
_STATUS_CHOICES = [
    _TYPES.index("status"),
    5,
    *_field_choices("src", NODES.index("pc2")),
    *_field_choices("seq", 2, 1, 1),
    *_field_choices("hg", 2, 1, 7),
    *_field_choices("ts", 128),
    *_field_choices("st", _STATES.index("active")),
]


# --------------------------------------------------------------------------------------------
# Configuration files

_HACF = b"node pc1\nnode pc2\nkeepalive 1\ndeadtime 10\nbcast eth0\nauto_failback on\n"
_AUTHKEYS = b"auth 1\n1 sha256 s3cret\n"
_HARESOURCES = b"pc1 IPaddr::198.51.100.55/24/eth0 Dummy\n"
_SECRET_MODE = 0o600


class _Scratch:
    """One directory of configuration files, rewritten for every input (tmpfs when there is
    one: an input costs a few writes, not a disk sync)."""

    def __init__(self) -> None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.path = Path(tempfile.mkdtemp(prefix="hacore-fuzz-", dir=base))

    def write(self, files: dict[str, bytes]) -> Path:
        for name in ("ha.cf", "authkeys", "haresources", "nodeinfo", "cluster.toml"):
            target = self.path / name
            if name in files:
                target.write_bytes(files[name])
                if name in ("authkeys", "cluster.toml"):
                    target.chmod(_SECRET_MODE)
            else:
                target.unlink(missing_ok=True)
        return self.path

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


_scratch: _Scratch | None = None


def scratch() -> _Scratch:
    global _scratch  # noqa: PLW0603 (one directory per fuzzing process, made on first use)
    if _scratch is None:
        _scratch = _Scratch()
    return _scratch


def _load(files: dict[str, bytes]) -> None:
    directory = scratch().write(files)
    try:
        load(directory, node_name=LOCAL)
    except ConfigError as err:
        if not err.problems:
            raise ContractError("ConfigError without a problem") from None
        for problem in err.problems:
            text = str(problem)
            if "\n" in text or not text:
                raise ContractError(f"a problem is not one line: {text!r}") from None


def hacf(data: bytes) -> None:
    _load({"ha.cf": data, "authkeys": _AUTHKEYS, "haresources": _HARESOURCES})


def authkeys(data: bytes) -> None:
    _load({"ha.cf": _HACF, "authkeys": data, "haresources": _HARESOURCES})


def haresources(data: bytes) -> None:
    _load({"ha.cf": _HACF, "authkeys": _AUTHKEYS, "haresources": data})


def toml(data: bytes) -> None:
    _load({"cluster.toml": data})


def _corpus_files(name: str) -> Iterator[tuple[str, bytes]]:
    for case in sorted(CONFIG_CORPUS.iterdir()):
        if (case / name).is_file():
            yield case.name, (case / name).read_bytes()


def config_seeds(name: str, valid: bytes) -> Callable[[], Iterator[tuple[str, bytes]]]:
    def seeds() -> Iterator[tuple[str, bytes]]:
        yield "valid", valid
        yield from _corpus_files(name)
        if (VECTORS / name).is_file():
            yield "vectors", (VECTORS / name).read_bytes()

    return seeds


_TOML = b"""[cluster]
nodes = ["pc1", "pc2"]
auto_failback = "on"
[timers]
keepalive = "100ms"
deadtime = "1s"
freshness = "30s"
[[link]]
kind = "ucast"
interface = "eth0"
peer = "198.51.100.2"
[auth]
active = 1
[[auth.key]]
index = 1
method = "sha256"
secret = "s3cret"
[ping]
nodes = ["198.51.100.1"]
[logging]
facility = "daemon"
[metrics]
address = "127.0.0.1:9694"
[[group]]
node = "pc1"
resources = ["IPaddr::198.51.100.55/24/eth0"]
[[group]]
node = "pc2"
[[group.resource]]
agent = "Dummy"
params = { state = "x" }
monitor_interval = "10s"
"""


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    seeds: Callable[[], Iterator[tuple[str, bytes]]]
    datagram: bool  # counts toward the "1 M datagram inputs" of the long run
    tokens: tuple[str, ...]  # a libFuzzer dictionary: what mutation should splice in


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "wire",
            wire,
            datagram_seeds,
            True,
            ("###\n", "%%%\n", ">>>\n", "<<<\n", "(0)", "(1)", "auth=", "1 ", ":", ","),
        ),
        Target(
            "envelope",
            envelope,
            envelope_seeds,
            True,
            ("###\n", "%%%\n", "(0)t=status", "(0)src=pc2", "(0)seq=", "(0)hg=", "(0)ts="),
        ),
        Target(
            "hacf",
            hacf,
            config_seeds("ha.cf", _HACF),
            False,
            ("node ", "keepalive ", "deadtime ", "bcast ", "ucast ", "mcast ", "ms", "us"),
        ),
        Target(
            "authkeys",
            authkeys,
            config_seeds("authkeys", _AUTHKEYS),
            False,
            ("auth ", "sha1 ", "md5 ", "crc", "sha256 ", "\n1 ", "\n15 "),
        ),
        Target(
            "haresources",
            haresources,
            config_seeds("haresources", _HARESOURCES),
            False,
            ("pc1 ", "pc2 ", "::", "IPaddr::", "Dummy", "\\\n", "/24/eth0"),
        ),
        Target(
            "toml",
            toml,
            config_seeds("cluster.toml", _TOML),
            False,
            ("[cluster]", "[[link]]", "[[group]]", '= "', "= [", "secret_file", "[[auth.key]]"),
        ),
    )
}
