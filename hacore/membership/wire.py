"""Heartbeat 3.0.6's cluster-packet format (libplumb's ``ha_msg``), without I/O.

A message is an ordered list of named fields, each a string or binary value. Heartbeat sends
it as netstrings and accepts two forms (reference §3.2):

* netstring: ``###\\n``, one ``<len>:(<type>)<name>=<value>,`` per field, ``%%%\\n``, then the
  trailing auth netstring ``<len>:<N> <token>,`` whose token covers ``###\\n``…``%%%\\n``;
* classic: ``>>>\\n``, one ``name=value\\n`` line per field (binary values as ``(1)name=`` and
  base64), ``<<<\\n``; its ``auth=<N> <token>`` field covers the other lines (``nohead_text``).

Threat model for ``decode``: every byte may come from an attacker on the LAN. Nothing here
is trusted before ``envelope.open_envelope`` has verified the token, and parsing must be safe
for any input: the size is bounded before parsing, every length is checked against what is
left, lengths are canonical decimal of bounded width, and any problem is a ``WireError``
(never another exception). The decoder is deliberately stricter than libplumb: it accepts
exactly what Heartbeat emits for cluster packets (string and binary fields), nothing looser.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from dataclasses import dataclass
from typing import TypeAlias

from hacore.config.model import AuthKey
from hacore.membership.auth import sign

# Heartbeat's MAXMSG is 256 KiB, but it compresses any message over 2 KiB (which hacore does not
# read) and UDP carries at most 64 KiB; 16 KiB bounds the parsing work a flood can cost us.
MAX_DATAGRAM = 16 * 1024
MAX_FIELDS = 1024  # Heartbeat has no limit; hacore's packets carry about 15
MAX_NAME_LEN = 255  # libplumb's MAX_NAME_LEN
MAX_TOKEN_LEN = 128  # sha256 needs 64 hex digits
_MAX_LEN_DIGITS = len(str(MAX_DATAGRAM))  # no netstring inside a datagram can need more

NETSTRING_START = b"###\n"
NETSTRING_END = b"%%%\n"
CLASSIC_START = b">>>\n"
CLASSIC_END = b"<<<\n"
AUTH_FIELD = "auth"

Value: TypeAlias = str | bytes


class FieldType(enum.IntEnum):
    """libplumb's field types (``enum cl_netstring_type``); hacore uses the first two."""

    STRING = 0
    BINARY = 1
    STRUCT = 2
    LIST = 3
    COMPRESS = 4
    UNCOMPRESS = 5


class Verdict(enum.StrEnum):
    """Why a datagram was accepted or refused: one enum for the wire, auth and membership."""

    OK = "ok"
    MALFORMED = "malformed"
    TRUNCATED = "truncated"
    OVERSIZED = "oversized"
    BAD_AUTH = "bad_auth"
    UNKNOWN_KEY = "unknown_key"
    WEAK_AUTH = "weak_auth"  # crc received where it is not allowed
    REPLAY = "replay"
    STALE_GENERATION = "stale_generation"
    STALE_TIME = "stale_time"
    NOT_MEMBER = "not_member"  # src is not in the node list
    LOOPBACK = "loopback"  # our own datagram


class WireError(Exception):
    """A datagram that cannot be accepted; ``reason`` says why, ``detail`` says where."""

    def __init__(self, reason: Verdict, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    @property
    def verdict(self) -> Verdict:
        return self.reason

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


# A name is printable ASCII without "=" (which ends it) and without a leading "(" (which
# would read as a type prefix in the classic form).
_NAME = re.compile(rf"(?!\()[!-<>-~]{{1,{MAX_NAME_LEN}}}")
_NAME_BYTES = re.compile(_NAME.pattern.encode("ascii"))
# Control characters cannot survive the classic form (newline is rewritten to 0x13 there,
# NUL ends a C string) and Heartbeat's own string fields never carry them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# "<index> <token>": authkeys indexes are 0..15 (a larger one is UNKNOWN_KEY, not garbage).
_AUTH_VALUE = re.compile(rf"(0|[1-9][0-9]?) ([0-9a-f]{{1,{MAX_TOKEN_LEN}}})")
_AUTH_VALUE_BYTES = re.compile(_AUTH_VALUE.pattern.encode("ascii"))


# Names already found good. Every message repeats the same dozen or so names, and checking
# one by regex costs more than the rest of its encoding; bounded, so that names chosen by
# whoever builds messages cannot grow it without limit.
_GOOD_NAMES: set[str] = set()
_GOOD_NAMES_MAX = 1024


def _name_problem(name: object) -> str | None:
    if name.__class__ is str and name in _GOOD_NAMES:
        return None
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        return f"field name {name!r:.40} is not 1-{MAX_NAME_LEN} printable ASCII without '='"
    if len(_GOOD_NAMES) < _GOOD_NAMES_MAX and name.__class__ is str:
        _GOOD_NAMES.add(name)
    return None


def _value_problem(value: object) -> str | None:
    if isinstance(value, bytes):
        return None
    if not isinstance(value, str):
        return f"field value must be str or bytes, not {type(value).__name__}"
    # Printable ASCII (0x20-0x7e) has no control character: checked in C, without the regex,
    # for the values messages carry; anything else gets the full check.
    if value.isascii() and value.isprintable():
        return None
    if _CONTROL.search(value) is not None:
        return "string field contains a control character"
    return None


@dataclass(frozen=True)
class Message:
    """An ordered list of fields: a ``str`` value is a string field, ``bytes`` a binary one.

    Names are printable ASCII without ``=``; strings are text without control characters;
    binary values are any bytes. Names may repeat; lookups return the first, as libplumb's
    ``cl_get_string`` does. Anything else raises ``ValueError``.
    """

    fields: tuple[tuple[str, Value], ...]

    def __post_init__(self) -> None:
        for name, value in self.fields:
            problem = _name_problem(name) or _value_problem(value)
            if problem:
                raise ValueError(problem)

    @classmethod
    def of(cls, *pairs: tuple[str, Value]) -> Message:
        return cls(tuple(pairs))

    @classmethod
    def _checked(cls, fields: tuple[tuple[str, Value], ...]) -> Message:
        """A message of fields taken from messages (checked when those were made): sealing
        derives two messages from every message sent, and checking again is wasted."""
        msg = object.__new__(cls)
        object.__setattr__(msg, "fields", fields)
        return msg

    def with_fields(self, *pairs: tuple[str, Value]) -> Message:
        """A copy with ``pairs`` appended."""
        Message(pairs)  # checks the new fields only
        return Message._checked(self.fields + pairs)

    def without(self, *names: str) -> Message:
        """A copy without any field called one of ``names``."""
        return Message._checked(tuple(f for f in self.fields if f[0] not in names))

    def _first(self, name: str) -> Value | None:
        for field_name, value in self.fields:
            if field_name == name:
                return value
        return None

    def get(self, name: str) -> str | None:
        """The first field called ``name`` if it is a string field."""
        value = self._first(name)
        return value if isinstance(value, str) else None

    def get_bytes(self, name: str) -> bytes | None:
        """The first field called ``name`` if it is a binary field."""
        value = self._first(name)
        return value if isinstance(value, bytes) else None

    @property
    def type(self) -> str | None:
        """The message type, field ``t``."""
        return self.get("t")


@dataclass(frozen=True)
class Decoded:
    """A parsed datagram, not yet authenticated.

    ``signed`` is the byte string the token covers: ``###\\n``…``%%%\\n`` for netstrings, the
    ``nohead_text`` of the message for the classic form (whose token comes from its ``auth``
    field). ``message`` holds every field as sent, the inner ``auth`` field included.
    """

    message: Message
    signed: bytes
    auth_index: int
    token: str
    classic: bool = False


# --- encoding --------------------------------------------------------------------------


def _netstring(payload: bytes) -> bytes:
    return b"%d:%s," % (len(payload), payload)


def encode_body(msg: Message) -> bytes:
    """``###\\n``, the fields as netstrings, ``%%%\\n``: the bytes the trailing token covers,
    exactly as libplumb's ``msg2netstring`` writes them."""
    # One formatting step per field (this runs for every datagram sent): the netstring
    # ``<len>:(<type>)<name>=<value>,`` whose payload is 4 bytes longer than name and value;
    # names are ASCII, so their length in characters is their length in bytes.
    parts = [NETSTRING_START]
    for name, value in msg.fields:
        if isinstance(value, str):
            raw = value.encode("utf-8")
            parts.append(b"%d:(0)%s=%s," % (len(name) + len(raw) + 4, name.encode("ascii"), raw))
        else:
            parts.append(
                b"%d:(1)%s=%s," % (len(name) + len(value) + 4, name.encode("ascii"), value)
            )
    parts.append(NETSTRING_END)
    return b"".join(parts)


def auth_netstring(index: int, token: str) -> bytes:
    """The trailing ``<len>:<N> <token>,`` that follows the body."""
    return _netstring(f"{index} {token}".encode("ascii"))


def _classic_line(name: str, value: Value) -> bytes:
    if isinstance(value, str):
        # No newline to rewrite as 0x13: Message refuses control characters.
        return b"%s=%s\n" % (name.encode("ascii"), value.encode("utf-8"))
    b64 = base64.b64encode(value)
    return b"(%d)%s=%s\n" % (FieldType.BINARY, name.encode("ascii"), b64)


def nohead_text(msg: Message) -> bytes:
    """The classic text without ``>>>``/``<<<`` and without ``auth`` fields: what the inner
    (classic) auth token covers, as libplumb's ``msg2string_buf(..., NOHEAD)`` writes it."""
    # Every datagram sent is signed over this text: string fields (nearly all) are written
    # here in one step each; binary ones as _classic_line does.
    parts = []
    for name, value in msg.fields:
        if name == AUTH_FIELD:
            continue
        if isinstance(value, str):
            parts.append(b"%s=%s\n" % (name.encode("ascii"), value.encode("utf-8")))
        else:
            parts.append(_classic_line(name, value))
    return b"".join(parts)


def with_inner_auth(msg: Message, key: AuthKey) -> Message:
    """``msg`` with its classic ``auth`` field, as Heartbeat's ``add_msg_auth`` adds it.

    Any ``auth`` field already present is dropped and the fresh one goes last."""
    token = sign(key, nohead_text(msg))
    return msg.without(AUTH_FIELD).with_fields((AUTH_FIELD, f"{key.index} {token}"))


def encode_classic(msg: Message, key: AuthKey) -> bytes:
    """The classic form ``>>>\\n…auth=N token\\n<<<\\n``, as Heartbeat 1.x sent it."""
    lines = (_classic_line(n, v) for n, v in with_inner_auth(msg, key).fields)
    return CLASSIC_START + b"".join(lines) + CLASSIC_END


# --- decoding --------------------------------------------------------------------------


def decode(data: bytes) -> Decoded:
    """Parse a received datagram. Raises ``WireError``, and nothing else, for any input."""
    if len(data) > MAX_DATAGRAM:
        raise WireError(Verdict.OVERSIZED, f"{len(data)} bytes, more than {MAX_DATAGRAM}")
    data = bytes(data)
    # A C sender may count the string terminator (libplumb's classic msg2wirefmt does).
    if data.endswith(b"\0"):
        data = data[:-1]
    if data.startswith(NETSTRING_START):
        return _decode_netstring(data)
    if data.startswith(CLASSIC_START):
        return _decode_classic(data)
    if NETSTRING_START.startswith(data) or CLASSIC_START.startswith(data):
        raise WireError(Verdict.TRUNCATED, "datagram ends inside its start marker")
    raise WireError(Verdict.MALFORMED, "neither '###' (netstring) nor '>>>' (classic) start")


def _peel(data: bytes, pos: int) -> tuple[bytes, int]:
    """One netstring at ``pos``: its payload and the position after its ','."""
    end = pos
    limit = min(len(data), pos + _MAX_LEN_DIGITS + 1)
    while end < limit and 0x30 <= data[end] <= 0x39:
        end += 1
    digits = data[pos:end]
    if not digits:
        if pos >= len(data):
            raise WireError(Verdict.TRUNCATED, f"datagram ends at byte {pos}")
        raise WireError(Verdict.MALFORMED, f"byte {pos}: expected a netstring length")
    if len(digits) > _MAX_LEN_DIGITS:
        raise WireError(Verdict.MALFORMED, f"byte {pos}: netstring length too long")
    if len(digits) > 1 and digits[0] == 0x30:
        raise WireError(Verdict.MALFORMED, f"byte {pos}: netstring length has a leading zero")
    if end >= len(data):
        raise WireError(Verdict.TRUNCATED, "datagram ends inside a netstring length")
    if data[end] != 0x3A:  # ":"
        raise WireError(Verdict.MALFORMED, f"byte {end}: expected ':' after the length")
    start = end + 1
    stop = start + int(digits)
    if stop >= len(data):
        raise WireError(Verdict.TRUNCATED, f"netstring at byte {pos} runs past the end")
    if data[stop] != 0x2C:  # ","
        raise WireError(Verdict.MALFORMED, f"byte {stop}: netstring not closed by ','")
    return data[start:stop], stop + 1


def _name(raw: bytes) -> str:
    if _NAME_BYTES.fullmatch(raw) is None:
        raise WireError(Verdict.MALFORMED, f"bad field name {raw[:40]!r}")
    return raw.decode("ascii")


def _string(raw: bytes, name: str) -> str:
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WireError(Verdict.MALFORMED, f"field {name!r} is not UTF-8") from None
    if _CONTROL.search(value) is not None:
        raise WireError(Verdict.MALFORMED, f"field {name!r} contains a control character")
    return value


def _field(payload: bytes) -> tuple[str, Value]:
    """``(<type>)<name>=<value>`` from inside a field netstring."""
    if len(payload) < 5 or payload[0] != 0x28 or payload[2] != 0x29:  # "(" and ")"
        raise WireError(Verdict.MALFORMED, f"field {payload[:40]!r} lacks a '(type)' prefix")
    kind = payload[1] - 0x30
    if kind not in (FieldType.STRING, FieldType.BINARY):
        raise WireError(Verdict.MALFORMED, f"unsupported field type {chr(payload[1])!r}")
    eq = payload.find(b"=", 3)
    if eq < 0:
        raise WireError(Verdict.MALFORMED, f"field {payload[:40]!r} has no '='")
    name = _name(payload[3:eq])
    raw = payload[eq + 1 :]
    return name, (raw if kind == FieldType.BINARY else _string(raw, name))


def _auth_value(raw: bytes) -> tuple[int, str]:
    match = _AUTH_VALUE_BYTES.fullmatch(raw)
    if match is None:
        raise WireError(Verdict.MALFORMED, f"bad auth string {raw[:40]!r}")
    return int(match[1]), match[2].decode("ascii")


def _decode_netstring(data: bytes) -> Decoded:
    fields: list[tuple[str, Value]] = []
    pos = len(NETSTRING_START)
    while not data.startswith(NETSTRING_END, pos):
        if len(data) - pos < len(NETSTRING_END) and NETSTRING_END.startswith(data[pos:]):
            raise WireError(Verdict.TRUNCATED, "datagram ends before '%%%'")
        if len(fields) == MAX_FIELDS:
            raise WireError(Verdict.MALFORMED, f"more than {MAX_FIELDS} fields")
        payload, pos = _peel(data, pos)
        fields.append(_field(payload))
    body_end = pos + len(NETSTRING_END)
    if body_end == len(data):
        raise WireError(Verdict.TRUNCATED, "no auth netstring after '%%%'")
    auth, end = _peel(data, body_end)
    if end != len(data):
        raise WireError(Verdict.MALFORMED, f"{len(data) - end} bytes after the auth netstring")
    index, token = _auth_value(auth)
    return Decoded(Message(tuple(fields)), data[:body_end], index, token)


def _classic_field(line: bytes) -> tuple[str, Value]:
    eq = line.find(b"=")
    if eq < 0:
        raise WireError(Verdict.MALFORMED, f"line {line[:40]!r} has no '='")
    raw_name, raw = line[:eq], line[eq + 1 :]
    if not raw_name.startswith(b"("):
        name = _name(raw_name)
        return name, _string(raw, name)
    if raw_name[:3] != b"(%d)" % FieldType.BINARY:
        raise WireError(Verdict.MALFORMED, f"unsupported classic field {raw_name[:40]!r}")
    name = _name(raw_name[3:])
    try:
        value = binascii.a2b_base64(raw, strict_mode=True)
    except binascii.Error:
        raise WireError(Verdict.MALFORMED, f"field {name!r} is not base64") from None
    # Only the canonical spelling: the token is computed over the re-encoded text.
    if base64.b64encode(value) != raw:
        raise WireError(Verdict.MALFORMED, f"field {name!r} is not canonical base64")
    return name, value


def _decode_classic(data: bytes) -> Decoded:
    if not data.endswith(CLASSIC_END):
        if CLASSIC_END in data:
            raise WireError(Verdict.MALFORMED, "bytes after '<<<'")
        raise WireError(Verdict.TRUNCATED, "datagram ends before '<<<'")
    text = data[len(CLASSIC_START) : -len(CLASSIC_END)]
    if text and not text.endswith(b"\n"):
        raise WireError(Verdict.MALFORMED, "last field line is not ended by a newline")
    lines = text[:-1].split(b"\n", MAX_FIELDS) if text else []
    if len(lines) > MAX_FIELDS:
        raise WireError(Verdict.MALFORMED, f"more than {MAX_FIELDS} fields")
    message = Message(tuple(_classic_field(line) for line in lines))
    auths = [value for name, value in message.fields if name == AUTH_FIELD]
    if not auths:
        raise WireError(Verdict.BAD_AUTH, "classic packet without an auth field")
    if len(auths) > 1:
        raise WireError(Verdict.MALFORMED, "classic packet with more than one auth field")
    if not isinstance(auths[0], str):
        raise WireError(Verdict.MALFORMED, "classic auth field is binary")
    index, token = _auth_value(auths[0].encode("utf-8"))
    # Heartbeat recomputes this text from the parsed fields; so do we.
    return Decoded(message, nohead_text(message), index, token, classic=True)
