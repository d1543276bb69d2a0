"""Golden wire vectors made by Heartbeat's own libraries, through ctypes.

Every byte of a vector comes from Debian's binaries, not from hacore (this script does not
import hacore): libplumb (cluster-glue) builds the message and frames it (``ha_msg_add``,
``ha_msg_addbin``, ``ha_msg_add_int``, ``msg2string_buf``, ``msg2string``, ``msg2wirefmt``),
and Heartbeat's own HBauth plugins (``sha1.so``, ``md5.so``, ``crc.so``) compute every token.
The steps Heartbeat's daemon performs around the library are repeated here as it does them:
``add_msg_auth`` (token over the NOHEAD text, stored with ``cl_msg_modstring(m, "auth", ..)``)
and ``hb_compute_authentication`` (the callback ``msg2wirefmt`` asks for the outer token).
sha256 is hacore's own method: no Heartbeat plugin exists, so Python's hmac computes it.

Usage:
  make_vectors.py            write tests/vectors/libplumb.json
  make_vectors.py --json     print the vectors to stdout instead
  make_vectors.py --parse    read {"keys": [...], "active": N, "packets": [...]} on stdin,
                             print for each packet the fields libplumb's receive path
                             (wirefmt2msg with MSG_NEEDAUTH) returns, or null if it refused

libplumb can abort() the interpreter on bad input, so tests run this in a subprocess.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import hmac
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

LIBPLUMB = Path("/usr/lib/libplumb.so.2")
PLUGIN_DIR = Path("/usr/lib/heartbeat/plugins/HBauth")
OUTPUT = Path(__file__).with_name("libplumb.json")

HA_OK = 1
NOHEAD = 0
MSG_NEEDAUTH = 1
MSGFMT_NVPAIR, MSGFMT_NETSTRING = 0, 1

Field: TypeAlias = tuple[str, str | bytes | int]
Json: TypeAlias = Any

# --- C declarations (cluster-glue include/ha_msg.h, pils/plugin.h; heartbeat HBauth.h) --

# int (*authmethod)(int whichauth, const void* data, size_t datalen, char* authstr,
#                   size_t authlen): returns the authkeys index used, or < 0.
AUTHMETHOD = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t
)
# gboolean (*authfunc)(const struct ha_msg*): classic packets' check (Heartbeat's isauthentic).
OLDAUTHFUNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
# HBAuthOps.auth(const struct HBauth_info*, const void* text, size_t textlen, char* result,
#                int resultlen): TRUE on success.
PLUGIN_AUTH = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_int
)
REGISTER_PLUGIN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
REGISTER_INTERFACE = ctypes.CFUNCTYPE(
    ctypes.c_int,
    *(ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p),
    *(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p),
)
PLUGIN_INIT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


class HaMsg(ctypes.Structure):
    _fields_ = [
        ("nfields", ctypes.c_int),
        ("nalloc", ctypes.c_int),
        ("names", ctypes.POINTER(ctypes.c_char_p)),
        ("nlens", ctypes.POINTER(ctypes.c_size_t)),
        ("values", ctypes.POINTER(ctypes.c_void_p)),
        ("vlens", ctypes.POINTER(ctypes.c_size_t)),
        ("types", ctypes.POINTER(ctypes.c_int)),
    ]


class PILPluginImports(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_void_p)
        for name in (
            "register_plugin",
            "unregister_plugin",
            "register_interface",
            "unregister_interface",
            "load_plugin",
            "log",
            "alloc",
            "mrealloc",
            "mfree",
            "mstrdup",
        )
    ]


class HBAuthOps(ctypes.Structure):
    _fields_ = [("auth", PLUGIN_AUTH), ("needskey", ctypes.c_void_p)]


class HBauthInfo(ctypes.Structure):
    _fields_ = [
        ("auth", ctypes.c_void_p),
        ("authname", ctypes.c_char_p),
        ("key", ctypes.c_char_p),
    ]


# --- the libraries ---------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    index: int
    method: str
    secret: bytes


class Plugin:
    """One HBauth plugin, loaded by calling its PILS init with minimal imports."""

    def __init__(self, name: str) -> None:
        self.name = name
        lib = ctypes.CDLL(str(PLUGIN_DIR / f"{name}.so"))
        init = PLUGIN_INIT((f"HBauth_LTX_{name}_pil_plugin_init", lib))
        ops: list[int] = []

        def register_plugin(_us: int | None, _ops: int | None) -> int:
            return 0  # PIL_OK

        def register_interface(*args: Any) -> int:
            ops.append(args[3])
            return 0

        # Callbacks must outlive the plugin: keep them on self.
        self._callbacks = (REGISTER_PLUGIN(register_plugin), REGISTER_INTERFACE(register_interface))
        self._imports = PILPluginImports(
            register_plugin=ctypes.cast(self._callbacks[0], ctypes.c_void_p),
            register_interface=ctypes.cast(self._callbacks[1], ctypes.c_void_p),
        )
        self._us = ctypes.create_string_buffer(256)  # the plugin only stores this pointer
        if init(ctypes.addressof(self._us), ctypes.addressof(self._imports)) != 0 or not ops:
            raise RuntimeError(f"HBauth plugin {name} did not register")
        self._ops = HBAuthOps.from_address(ops[0])
        self._lib = lib

    def token(self, secret: bytes, data: bytes) -> str:
        info = HBauthInfo(None, self.name.encode(), secret)
        result = ctypes.create_string_buffer(256)
        text = ctypes.create_string_buffer(data, len(data))
        ok = self._ops.auth(
            ctypes.addressof(info), ctypes.addressof(text), len(data), ctypes.addressof(result), 256
        )
        if not ok:
            raise RuntimeError(f"HBauth plugin {self.name} failed")
        return result.value.decode("ascii")


class Plumb:
    """libplumb's ha_msg API plus Heartbeat's signing, for one authkeys table."""

    def __init__(self, keys: list[Key], active: int) -> None:
        # sha1.so calls glib without linking it, and md5.so calls libplumb's HMAC: both must
        # be loaded globally before any plugin.
        ctypes.CDLL("libglib-2.0.so.0", mode=ctypes.RTLD_GLOBAL)
        self.lib = ctypes.CDLL(str(LIBPLUMB), mode=ctypes.RTLD_GLOBAL)
        self.libc = ctypes.CDLL(None)
        self._declare()
        self.keys = {k.index: k for k in keys}
        self.active = active
        self.plugins = {m: Plugin(m) for m in ("sha1", "md5", "crc")}
        self._authmethod = AUTHMETHOD(self._compute)
        self._oldauth = OLDAUTHFUNC(self._isauthentic)
        self.lib.cl_set_authentication_computation_method(self._authmethod)
        self.lib.cl_set_oldmsgauthfunc(self._oldauth)

    def _declare(self) -> None:
        vp, cp, sz, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int
        signatures: dict[str, tuple[Any, list[Any]]] = {
            "ha_msg_new": (vp, [i]),
            "ha_msg_del": (None, [vp]),
            "ha_msg_add": (i, [vp, cp, cp]),
            "ha_msg_addbin": (i, [vp, cp, vp, sz]),
            "ha_msg_add_int": (i, [vp, cp, i]),
            "cl_msg_modstring": (i, [vp, cp, cp]),
            "get_stringlen": (i, [vp]),
            "msg2string_buf": (i, [vp, vp, sz, i, i]),
            "msg2string": (vp, [vp]),
            "msg2wirefmt": (vp, [vp, ctypes.POINTER(sz)]),
            "msg2wirefmt_noac": (vp, [vp, ctypes.POINTER(sz)]),
            "compose_netstring": (i, [vp, vp, cp, sz, ctypes.POINTER(sz)]),
            "wirefmt2msg": (vp, [vp, sz, i]),
            "cl_set_msg_format": (None, [i]),
            "cl_set_authentication_computation_method": (None, [AUTHMETHOD]),
            "cl_set_oldmsgauthfunc": (None, [OLDAUTHFUNC]),
            "cl_log_enable_stderr": (None, [i]),
        }
        for name, (restype, argtypes) in signatures.items():
            func = getattr(self.lib, name)
            func.restype, func.argtypes = restype, argtypes
        self.libc.free.argtypes = [vp]
        self.lib.cl_log_enable_stderr(0)
        ctypes.c_int.in_dll(self.lib, "cl_msg_quiet_fmterr").value = 1

    def token(self, key: Key, data: bytes) -> str:
        if key.method == "sha256":  # hacore-only: no Heartbeat plugin exists
            return hmac.new(key.secret, data, hashlib.sha256).hexdigest()
        return self.plugins[key.method].token(key.secret, data)

    # Heartbeat's hb_compute_authentication: the index's algorithm, the *active* key (§3.4).
    def _compute(
        self, which: int, data: int | None, size: int, out: int | None, outlen: int
    ) -> int:
        try:
            index = self.active if which < 0 else which
            algorithm = self.keys.get(index)
            if algorithm is None or data is None or out is None:
                return -1
            key = Key(index, algorithm.method, self.keys[self.active].secret)
            token = self.token(key, ctypes.string_at(data, size)).encode() + b"\0"
            if len(token) > outlen:
                return -1
            ctypes.memmove(out, token, len(token))
            return index
        except Exception:  # an exception must not cross into C
            return -1

    # Heartbeat's isauthentic: the NOHEAD text, the token of the packet's own index.
    def _isauthentic(self, msg: int | None) -> int:
        try:
            fields = dict(self.fields(msg))
            index, token = str(fields["auth"]).split(" ")
            key = self.keys[int(index)]
            return int(self.token(key, self.nohead(msg)) == token)
        except Exception:
            return 0

    def new(self, fields: list[Field]) -> int:
        msg = self.lib.ha_msg_new(0)
        for name, value in fields:
            if isinstance(value, bytes):
                rc = self.lib.ha_msg_addbin(msg, name.encode(), value, len(value))
            elif isinstance(value, int):
                rc = self.lib.ha_msg_add_int(msg, name.encode(), value)
            else:
                rc = self.lib.ha_msg_add(msg, name.encode(), value.encode())
            if rc != HA_OK:
                raise RuntimeError(f"libplumb refused field {name!r}")
        return int(msg)

    def nohead(self, msg: int | None) -> bytes:
        size = self.lib.get_stringlen(msg)
        buf = ctypes.create_string_buffer(size)
        if self.lib.msg2string_buf(msg, buf, size, 0, NOHEAD) != HA_OK:
            raise RuntimeError("msg2string_buf failed")
        return buf.value  # up to the NUL: Heartbeat hashes strnlen() bytes

    def add_msg_auth(self, msg: int, key: Key) -> str:
        inner = f"{key.index} {self.token(key, self.nohead(msg))}"
        if self.lib.cl_msg_modstring(msg, b"auth", inner.encode()) != HA_OK:
            raise RuntimeError("cl_msg_modstring failed")
        return inner

    def _take(self, ptr: int | None, size: int | None = None) -> bytes:
        if not ptr:
            raise RuntimeError("libplumb returned NULL")
        data = ctypes.string_at(ptr) if size is None else ctypes.string_at(ptr, size)
        self.libc.free(ptr)
        return data

    def classic(self, msg: int) -> bytes:
        return self._take(self.lib.msg2string(msg))

    def wirefmt(self, msg: int) -> bytes:
        size = ctypes.c_size_t()
        return self._take(self.lib.msg2wirefmt(msg, ctypes.byref(size)), size.value)

    def wirefmt_long_token(self, msg: int, key: Key) -> bytes:
        """msg2wirefmt cannot append a token longer than about 60 characters (it reserves
        MAX_AUTH_BYTES = 64 for the auth netstring), so for sha256 the body comes from the
        netstring format without auth and the trailer from compose_netstring."""
        size = ctypes.c_size_t()
        self.lib.cl_set_msg_format(MSGFMT_NETSTRING)
        try:
            body = self._take(self.lib.msg2wirefmt_noac(msg, ctypes.byref(size)), size.value)
        finally:
            self.lib.cl_set_msg_format(MSGFMT_NVPAIR)
        auth = f"{key.index} {self.token(key, body)}".encode()
        out = ctypes.create_string_buffer(len(auth) + 16)
        used = ctypes.c_size_t()
        end = ctypes.addressof(out) + len(out)
        if self.lib.compose_netstring(out, end, auth, len(auth), ctypes.byref(used)) != HA_OK:
            raise RuntimeError("compose_netstring failed")
        return body + out.raw[: used.value]

    def fields(self, msg: int | None) -> list[tuple[str, str | bytes]]:
        m = HaMsg.from_address(msg or 0)
        out: list[tuple[str, str | bytes]] = []
        for j in range(m.nfields):
            name = (m.names[j] or b"").decode()
            value = ctypes.string_at(m.values[j] or 0, m.vlens[j])
            if m.types[j] == 0:
                out.append((name, value.decode()))
            elif m.types[j] == 1:
                out.append((name, value))
            else:
                raise RuntimeError(f"field {name!r} has type {m.types[j]}")
        return out

    def parse(self, packet: bytes) -> list[tuple[str, str | bytes]] | None:
        buf = ctypes.create_string_buffer(packet, len(packet))
        msg = self.lib.wirefmt2msg(buf, len(packet), MSG_NEEDAUTH)
        if not msg:
            return None
        try:
            return self.fields(msg)
        finally:
            self.lib.ha_msg_del(msg)


# --- the vectors -----------------------------------------------------------------------

UUID_ALICE = bytes.fromhex("4f0a7c2e9d3b4c6a8e1f2b5d7a9c3e60")
UUID_BOB = bytes.fromhex("b0b0c0de00112233445566778899aabb")
# Bytes that mean something to the framing, to show binary values are counted, not scanned.
UUID_AWKWARD = b"%%%\n###\n,=:(1)\x00\xff\r"

STATUS: list[Field] = [  # the worked example of reference §3.2
    ("t", "status"),
    ("st", "active"),
    ("dt", "7530"),
    ("protocol", "1"),
    ("src", "alice"),
    ("srcuuid", UUID_ALICE),
    ("seq", "1f"),
    ("hg", "5"),
    ("ts", "65f0a1b2"),
    ("ld", "0.08 0.03 0.01 1/210 4321"),
    ("ttl", "3"),
]


def _control(src: str, uuid: bytes, seq: str | None) -> list[Field]:
    """Heartbeat's add_control_msg_fields, in its order (seq left out for NS_ types)."""
    fields: list[Field] = [("src", src), ("srcuuid", uuid)]
    if seq is not None:
        fields.append(("seq", seq))
    return [
        *fields,
        ("hg", "12"),
        ("ts", "65f0a1c0"),
        ("ld", "0.00 0.01 0.05 1/98 777"),
        ("ttl", "4"),
    ]


@dataclass(frozen=True)
class Spec:
    name: str
    description: str
    key: Key
    fields: list[Field]


SECRET = b"secretkey"
SPECS = [
    Spec("status-sha1", "reference §3.2 status packet, 1 sha1", Key(1, "sha1", SECRET), STATUS),
    Spec("status-md5", "the same status packet, 1 md5", Key(1, "md5", SECRET), STATUS),
    Spec("status-crc", "the same status packet, 1 crc", Key(1, "crc", b""), STATUS),
    Spec(
        "resource-sha1-index2",
        "t=resource after mach_down, authkeys index 2",
        Key(2, "sha1", b"Rotated-Key-2"),
        [
            ("t", "resource"),
            ("rsc_hold", "foreign"),
            ("rtype", "full"),
            ("isstable", "1"),
            ("info", "mach_down"),
            *_control("bob", UUID_BOB, "2a"),
        ],
    ),
    Spec(
        "rexmit-md5-index15",
        "NS_rexmit (no seq) with ha_msg_add_int fields and destuuid, index 15",
        Key(15, "md5", b"md5-secret"),
        [
            ("t", "NS_rexmit"),
            ("firstseq", 42),
            ("lastseq", 42),
            ("dest", "alice"),
            ("destuuid", UUID_ALICE),
            *_control("bob", UUID_BOB, None),
        ],
    ),
    Spec(
        "awkward-sha1-longkey",
        "framing bytes inside a binary value, an empty string, UTF-8, an 80-byte key",
        Key(3, "sha1", b"k" * 80),
        [
            ("t", "hacore-test"),
            ("blob", UUID_AWKWARD),
            ("empty", ""),
            ("utf8", "caf\u00e9 \u00fcber \u2713"),
            ("eq", "a=b=c,d:e"),
            *_control("alice", UUID_ALICE, "1"),
        ],
    ),
    Spec(
        "status-sha256",
        "hacore's sha256 (no Heartbeat plugin: Python hmac; framing still libplumb's)",
        Key(4, "sha256", SECRET),
        STATUS,
    ),
]


def _field_json(name: str, value: str | bytes | int) -> Json:
    if isinstance(value, bytes):
        return [name, {"hex": value.hex()}]
    return [name, str(value)]


def _text(data: bytes) -> str:
    """Bytes as a JSON string, one code point per byte (Latin-1): lossless and readable."""
    return data.decode("latin-1")


def build(plumb: Plumb, spec: Spec) -> Json:
    plumb.keys, plumb.active = {spec.key.index: spec.key}, spec.key.index
    msg = plumb.new(spec.fields)
    try:
        nohead = plumb.nohead(msg)
        inner = plumb.add_msg_auth(msg, spec.key)
        classic = plumb.classic(msg)
        if spec.key.method == "sha256":
            wire = plumb.wirefmt_long_token(msg, spec.key)
        else:
            wire = plumb.wirefmt(msg)
    finally:
        plumb.lib.ha_msg_del(msg)
    return {
        "name": spec.name,
        "description": spec.description,
        "key": {
            "index": spec.key.index,
            "method": spec.key.method,
            "secret": _text(spec.key.secret),
        },
        "fields": [_field_json(n, v) for n, v in spec.fields],
        "nohead": _text(nohead),
        "inner_auth": inner,
        "classic": _text(classic),
        "wire": _text(wire),
    }


# RFC 2202 HMAC cases 1, 2 and 6 (key longer than a block) plus edges of the plugins.
TOKEN_CASES: list[tuple[bytes, bytes]] = [
    (b"Jefe", b"what do ya want for nothing?"),
    (b"\x0b" * 20, b"Hi There"),
    (b"\xaa" * 80, b"Test Using Larger Than Block-Size Key - Hash Key First"),
    (b"k" * 64, b"a key of exactly one block"),
    (SECRET, bytes(range(0, 256, 7))),
]


def token_checks(plumb: Plumb) -> Json:
    """Tokens computed by the real HBauth plugins, for hacore's auth tests."""
    cases = [(m, secret, data) for m in ("sha1", "md5") for secret, data in TOKEN_CASES]
    crc_inputs = [b"123456789", b"", b"\x80\xff"]
    # The first decimal string whose CRC has a leading zero nibble, which "%lx" drops.
    crc = plumb.plugins["crc"]
    crc_inputs.append(next(b"%d" % i for i in range(10**4) if len(crc.token(b"", b"%d" % i)) < 8))
    cases += [("crc", b"", data) for data in crc_inputs]
    return [
        {
            "method": method,
            "secret": _text(secret),
            "data": _text(data),
            "token": plumb.plugins[method].token(secret, data),
        }
        for method, secret, data in cases
    ]


def vectors() -> Json:
    plumb = Plumb([], 0)
    return {
        "produced_by": "tests/vectors/make_vectors.py (see README.md)",
        "tokens": token_checks(plumb),
        "vectors": [build(plumb, spec) for spec in SPECS],
    }


def dump(doc: Json) -> str:
    """JSON with one field, vector key or token check per line, so diffs stay readable."""
    lines = ["{", f'"produced_by": {json.dumps(doc["produced_by"])},', '"tokens": [']
    lines += [" " + json.dumps(c) + "," for c in doc["tokens"]]
    lines[-1] = lines[-1].rstrip(",")
    lines += ["],", '"vectors": [']
    for n, vector in enumerate(doc["vectors"]):
        lines.append(" {")
        items = list(vector.items())
        for k, (key, value) in enumerate(items):
            comma = "," if k < len(items) - 1 else ""
            if key == "fields":
                lines.append('  "fields": [')
                lines += [f"   {json.dumps(f)}," for f in value]
                lines[-1] = lines[-1].rstrip(",")
                lines.append(f"  ]{comma}")
            else:
                lines.append(f"  {json.dumps(key)}: {json.dumps(value)}{comma}")
        lines.append(" }" + ("," if n < len(doc["vectors"]) - 1 else ""))
    lines += ["]", "}"]
    return "\n".join(lines) + "\n"


def parse(request: Json) -> Json:
    keys = [Key(k["index"], k["method"], k["secret"].encode("latin-1")) for k in request["keys"]]
    plumb = Plumb(keys, request["active"])
    results: list[Json] = []
    for packet in request["packets"]:
        fields = plumb.parse(packet.encode("latin-1"))
        results.append(None if fields is None else [_field_json(n, v) for n, v in fields])
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="print the vectors to stdout")
    group.add_argument("--parse", action="store_true", help="parse packets given on stdin")
    args = parser.parse_args(argv)
    if not LIBPLUMB.exists():
        print(f"{LIBPLUMB} is missing: install the Debian package heartbeat", file=sys.stderr)
        return 2
    if args.parse:
        json.dump(parse(json.load(sys.stdin)), sys.stdout)
    elif args.json:
        sys.stdout.write(dump(vectors()))
    else:
        OUTPUT.write_text(dump(vectors()))
        print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
