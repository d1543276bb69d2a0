"""The golden vectors of ``libplumb.json`` (made by Heartbeat's own libraries, see README.md),
as hacore types."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hacore.config.model import AuthKey, AuthMethod
from hacore.membership.wire import Message, Value

PATH = Path(__file__).with_name("libplumb.json")
GENERATOR = Path(__file__).with_name("make_vectors.py")


def raw(text: str) -> bytes:
    """Bytes stored as a JSON string, one code point per byte."""
    return text.encode("latin-1")


@dataclass(frozen=True)
class TokenCheck:
    key: AuthKey
    data: bytes
    token: str


@dataclass(frozen=True)
class Vector:
    name: str
    key: AuthKey
    message: Message  # the fields before Heartbeat adds ``auth``
    nohead: bytes  # msg2string_buf(NOHEAD): what the inner token covers
    inner_auth: str  # the value of the ``auth`` field
    classic: bytes  # msg2string, the >>> form
    wire: bytes  # msg2wirefmt, the datagram Heartbeat sends


def _key(obj: dict[str, Any]) -> AuthKey:
    return AuthKey(obj.get("index", 1), AuthMethod(obj["method"]), raw(obj["secret"]))


def _value(obj: str | dict[str, str]) -> Value:
    return obj if isinstance(obj, str) else bytes.fromhex(obj["hex"])


def load(text: str | None = None) -> tuple[list[TokenCheck], list[Vector]]:
    """The token checks and packet vectors of ``libplumb.json`` (or of ``text``)."""
    doc = json.loads(PATH.read_text() if text is None else text)
    tokens = [TokenCheck(_key(t), raw(t["data"]), t["token"]) for t in doc["tokens"]]
    vectors = [
        Vector(
            name=v["name"],
            key=_key(v["key"]),
            message=Message(tuple((n, _value(x)) for n, x in v["fields"])),
            nohead=raw(v["nohead"]),
            inner_auth=v["inner_auth"],
            classic=raw(v["classic"]),
            wire=raw(v["wire"]),
        )
        for v in doc["vectors"]
    ]
    return tokens, vectors


TOKENS, VECTORS = load()
