"""Heartbeat's wire format: byte-identical to libplumb's golden vectors, strict on hostile input."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hacore.config.model import Auth, AuthKey, AuthMethod
from hacore.membership.auth import sign
from hacore.membership.envelope import seal
from hacore.membership.wire import (
    MAX_DATAGRAM,
    MAX_FIELDS,
    Message,
    Verdict,
    WireError,
    auth_netstring,
    decode,
    encode_body,
    encode_classic,
    nohead_text,
    with_inner_auth,
)
from tests.vectors import GENERATOR, PATH, VECTORS, Vector, load

LIBPLUMB = Path("/usr/lib/libplumb.so.2")
HBAUTH = Path("/usr/lib/heartbeat/plugins/HBauth")
KEY = AuthKey(1, AuthMethod.SHA1, b"secretkey")
AUTH = Auth(1, (KEY,))
UUID = bytes.fromhex("4f0a7c2e9d3b4c6a8e1f2b5d7a9c3e60")
STATUS = Message.of(("t", "status"), ("st", "active"), ("src", "alice"), ("srcuuid", UUID))


def by_name(vector: Vector) -> str:
    return vector.name


def auth_of(vector: Vector) -> Auth:
    return Auth(vector.key.index, (vector.key,))


# --- golden vectors ----------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=by_name)
def test_seal_is_byte_identical_to_heartbeat(vector: Vector) -> None:
    assert seal(vector.message, auth_of(vector)) == vector.wire


@pytest.mark.parametrize("vector", VECTORS, ids=by_name)
def test_inner_auth_covers_the_nohead_text_like_heartbeat(vector: Vector) -> None:
    assert nohead_text(vector.message) == vector.nohead
    assert with_inner_auth(vector.message, vector.key).get("auth") == vector.inner_auth


@pytest.mark.parametrize("vector", VECTORS, ids=by_name)
def test_encode_classic_is_byte_identical_to_msg2string(vector: Vector) -> None:
    assert encode_classic(vector.message, vector.key) == vector.classic


@pytest.mark.parametrize("vector", VECTORS, ids=by_name)
def test_decode_gives_heartbeats_fields_back(vector: Vector) -> None:
    decoded = decode(vector.wire)
    body_end = vector.wire.rindex(b"%%%\n") + 4  # one binary value holds the marker too
    assert decoded.message == vector.message.with_fields(("auth", vector.inner_auth))
    assert decoded.signed == vector.wire[:body_end]
    assert decoded.auth_index == vector.key.index
    assert decoded.token == sign(vector.key, decoded.signed)
    assert not decoded.classic


@pytest.mark.parametrize("vector", VECTORS, ids=by_name)
def test_decode_classic_gives_the_fields_and_the_nohead_text(vector: Vector) -> None:
    decoded = decode(vector.classic)
    index, token = vector.inner_auth.split(" ")
    assert decoded.message == vector.message.with_fields(("auth", vector.inner_auth))
    assert decoded.signed == vector.nohead
    assert (decoded.auth_index, decoded.token, decoded.classic) == (int(index), token, True)


def test_reference_worked_example_framing() -> None:
    # Reference §3.2 prints a real status packet; its 16 srcuuid bytes (and so its tokens)
    # are not given, but everything else is, byte for byte.
    inner = "1 05ef5fbccfa3cf392c419ef0905a1cfba8155b39"
    msg = Message.of(
        ("t", "status"),
        ("st", "active"),
        ("dt", "7530"),
        ("protocol", "1"),
        ("src", "alice"),
        ("srcuuid", UUID),
        ("seq", "1f"),
        ("hg", "5"),
        ("ts", "65f0a1b2"),
        ("ld", "0.08 0.03 0.01 1/210 4321"),
        ("ttl", "3"),
        ("auth", inner),
    )
    assert encode_body(msg) == (
        b"###\n11:(0)t=status,12:(0)st=active,10:(0)dt=7530,13:(0)protocol=1,12:(0)src=alice,"
        b"27:(1)srcuuid=" + UUID + b",9:(0)seq=1f,7:(0)hg=5,14:(0)ts=65f0a1b2,"
        b"31:(0)ld=0.08 0.03 0.01 1/210 4321,8:(0)ttl=3,"
        b"50:(0)auth=1 05ef5fbccfa3cf392c419ef0905a1cfba8155b39,%%%\n"
    )
    token = "685dd70ad50ececa4c8e55bab13a938618a6bc01"
    assert auth_netstring(1, token) == b"42:1 685dd70ad50ececa4c8e55bab13a938618a6bc01,"


# --- against the live library --------------------------------------------------------------


def run_generator(*args: str, stdin: str | None = None) -> str:
    """make_vectors.py in a subprocess: libplumb may abort() on what it dislikes."""
    if not (LIBPLUMB.exists() and HBAUTH.is_dir()):
        if os.environ.get("HACORE_NO_LIBPLUMB") == "1":
            pytest.skip("HACORE_NO_LIBPLUMB=1: not checking against Heartbeat's libraries")
        pytest.fail(
            f"{LIBPLUMB} or {HBAUTH} is missing: install the Debian package heartbeat "
            "(or set HACORE_NO_LIBPLUMB=1 to skip the checks against it)"
        )
    proc = subprocess.run(
        [sys.executable, str(GENERATOR), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"make_vectors.py {' '.join(args)} failed:\n{proc.stderr}"
    return proc.stdout


def test_vectors_regenerate_identically_from_libplumb() -> None:
    fresh = run_generator("--json")
    assert load(fresh) == load(), "libplumb now produces other bytes: see tests/vectors/README.md"
    assert fresh == PATH.read_text()


def libplumb_parse(packets: list[bytes], keys: list[AuthKey], active: int) -> list[Message | None]:
    """What Heartbeat's receive path (wirefmt2msg, MSG_NEEDAUTH) makes of ``packets``."""
    request = {
        "keys": [
            {"index": k.index, "method": k.method, "secret": k.secret.decode("latin-1")}
            for k in keys
        ],
        "active": active,
        "packets": [p.decode("latin-1") for p in packets],
    }
    results = json.loads(run_generator("--parse", stdin=json.dumps(request)))
    return [
        None
        if fields is None
        else Message(
            tuple((n, v if isinstance(v, str) else bytes.fromhex(v["hex"])) for n, v in fields)
        )
        for fields in results
    ]


EXTRA = [
    STATUS,
    STATUS.with_fields(("info", "caf\u00e9 \u2713"), ("empty", ""), ("blob", b"%%%\n,=\x00")),
    Message.of(("t", "NS_ackmsg"), ("dest", "bob"), ("ackseq", "ff")),
    Message.of(*((f"f{i}", str(i)) for i in range(200))),
]


@pytest.mark.parametrize("method", [AuthMethod.SHA1, AuthMethod.MD5, AuthMethod.CRC])
def test_heartbeat_accepts_what_hacore_sends(method: AuthMethod) -> None:
    key = AuthKey(7, method, b"" if method is AuthMethod.CRC else b"Another-Secret")
    packets = [seal(m, Auth(7, (key,))) for m in EXTRA]
    classic = [encode_classic(m, key) for m in EXTRA]
    parsed = libplumb_parse(packets + classic, [key], 7)
    expected = [with_inner_auth(m, key) for m in EXTRA]
    assert parsed == expected + expected


def test_heartbeat_refuses_hacore_packets_that_were_tampered_with() -> None:
    packet = seal(STATUS, AUTH)
    flipped = packet.replace(b"alice", b"alicf")
    classic = encode_classic(STATUS, KEY).replace(b"alice", b"alicf")
    assert libplumb_parse([packet, flipped, classic], [KEY], 1) == [
        with_inner_auth(STATUS, KEY),
        None,
        None,
    ]


# --- the Message type ----------------------------------------------------------------------


def test_message_lookups_return_the_first_field_of_the_asked_kind() -> None:
    msg = Message.of(("t", "status"), ("x", b"\x01"), ("x", "second"), ("y", "1"))
    assert msg.type == "status"
    assert msg.get("x") is None  # the first "x" is binary, as cl_get_string would say
    assert msg.get_bytes("x") == b"\x01"
    assert msg.get("y") == "1"
    assert msg.get("missing") is None and msg.get_bytes("missing") is None


def test_with_fields_appends_and_without_removes() -> None:
    msg = Message.of(("t", "status")).with_fields(("auth", "1 ab"), ("src", "a"))
    assert msg.fields == (("t", "status"), ("auth", "1 ab"), ("src", "a"))
    assert msg.without("auth").fields == (("t", "status"), ("src", "a"))


@pytest.mark.parametrize(
    "pair",
    [
        ("", "v"),
        ("a=b", "v"),
        ("(1)x", "v"),
        ("sp ace", "v"),
        ("caf\u00e9", "v"),
        ("n" * 256, "v"),
        ("x", "line\nbreak"),
        ("x", "nul\x00"),
        ("x", "tab\t"),
    ],
)
def test_message_refuses_what_the_wire_cannot_carry(pair: tuple[str, str]) -> None:
    with pytest.raises(ValueError):
        Message.of(pair)


# --- strict decoding -------------------------------------------------------------------------


def ns(payload: bytes) -> bytes:
    return b"%d:%s," % (len(payload), payload)


def packet(*fields: bytes, auth: bytes = b"1 abc", tail: bytes = b"") -> bytes:
    return b"###\n" + b"".join(ns(f) for f in fields) + b"%%%\n" + ns(auth) + tail


GOOD = packet(b"(0)t=status", b"(1)u=\x00\xff")


def test_the_hand_built_packet_is_valid() -> None:
    decoded = decode(GOOD)
    assert decoded.message == Message.of(("t", "status"), ("u", b"\x00\xff"))
    assert (decoded.auth_index, decoded.token) == (1, "abc")


def test_one_trailing_nul_is_tolerated() -> None:
    assert decode(GOOD + b"\x00") == decode(GOOD)


def test_every_strict_prefix_of_a_packet_is_truncated() -> None:
    whole = seal(STATUS, AUTH)
    for end in range(len(whole)):
        with pytest.raises(WireError) as caught:
            decode(whole[:end])
        assert caught.value.reason is Verdict.TRUNCATED, (end, caught.value)


@pytest.mark.parametrize(
    ("data", "verdict"),
    [
        (b"###\n" + b"x" * MAX_DATAGRAM, Verdict.OVERSIZED),
        (b"", Verdict.TRUNCATED),
        (b"hello", Verdict.MALFORMED),
        (b"###\n+11:(0)t=status,%%%\n5:1 abc,", Verdict.MALFORMED),
        (b"###\n-1:x,%%%\n5:1 abc,", Verdict.MALFORMED),
        (b"###\n 11:(0)t=status,%%%\n5:1 abc,", Verdict.MALFORMED),
        (b"###\n011:(0)t=status,%%%\n5:1 abc,", Verdict.MALFORMED),
        (b"###\n0000011:(0)t=status,%%%\n5:1 abc,", Verdict.MALFORMED),
        (b"###\n11 :(0)t=status,%%%\n5:1 abc,", Verdict.MALFORMED),
        (b"###\n10:(0)t=status,%%%\n5:1 abc,", Verdict.MALFORMED),
        (b"###\n12:(0)t=status,x%%%\n5:1 abc,", Verdict.MALFORMED),
        (b"###\n9999999:x,%%%\n5:1 abc,", Verdict.MALFORMED),
        (packet(b"(2)s=x"), Verdict.MALFORMED),
        (packet(b"(3)l=1:a,"), Verdict.MALFORMED),
        (packet(b"(4)c=x"), Verdict.MALFORMED),
        (packet(b"(x)t=status"), Verdict.MALFORMED),
        (packet(b"t=status"), Verdict.MALFORMED),
        (packet(b"(0)t"), Verdict.MALFORMED),
        (packet(b"(0)=x"), Verdict.MALFORMED),
        (packet(b"(0)sp ace=x"), Verdict.MALFORMED),
        (packet(b"(0)t=\xff\xfe"), Verdict.MALFORMED),
        (packet(b"(0)t=a\nb"), Verdict.MALFORMED),
        (packet(b"(0)t=status", tail=b"x"), Verdict.MALFORMED),
        (packet(b"(0)t=status", tail=b"\x00\x00"), Verdict.MALFORMED),
        (packet(b"(0)t=status", auth=b"1  abc"), Verdict.MALFORMED),
        (packet(b"(0)t=status", auth=b"01 abc"), Verdict.MALFORMED),
        (packet(b"(0)t=status", auth=b"1 ABC"), Verdict.MALFORMED),
        (packet(b"(0)t=status", auth=b"1 xyz"), Verdict.MALFORMED),
        (packet(b"(0)t=status", auth=b"100 abc"), Verdict.MALFORMED),
        (packet(b"(0)t=status", auth=b"1 " + b"a" * 129), Verdict.MALFORMED),
        (b"###\n11:(0)t=status,%%%\n", Verdict.TRUNCATED),
        (packet(*[b"(0)f=1"] * (MAX_FIELDS + 1)), Verdict.MALFORMED),
        (b">>>\nt=status\n<<<\n", Verdict.BAD_AUTH),
        (b">>>\nt=status\nauth=1 ab\nauth=1 ab\n<<<\n", Verdict.MALFORMED),
        (b">>>\nt=status\n(1)auth=AA==\n<<<\n", Verdict.MALFORMED),
        (b">>>\nt=status\nauth=1 AB\n<<<\n", Verdict.MALFORMED),
        (b">>>\n(0)t=status\nauth=1 ab\n<<<\n", Verdict.MALFORMED),
        (b">>>\n(2)t=status\nauth=1 ab\n<<<\n", Verdict.MALFORMED),
        (b">>>\n(1)u=QR==\nauth=1 ab\n<<<\n", Verdict.MALFORMED),
        (b">>>\n(1)u=Q\nauth=1 ab\n<<<\n", Verdict.MALFORMED),
        (b">>>\nt=status\r\nauth=1 ab\n<<<\n", Verdict.MALFORMED),
        (b">>>\nt=a\x13b\nauth=1 ab\n<<<\n", Verdict.MALFORMED),
        (b">>>\nstatus\nauth=1 ab\n<<<\n", Verdict.MALFORMED),
        (b">>>\n\nauth=1 ab\n<<<\n", Verdict.MALFORMED),
        (b">>>\nt=status\nauth=1 ab<<<\n", Verdict.MALFORMED),
        (b">>>\nauth=1 ab\n<<<\nx", Verdict.MALFORMED),
        (b">>>\nauth=1 ab\n", Verdict.TRUNCATED),
    ],
)
def test_decode_refuses(data: bytes, verdict: Verdict) -> None:
    with pytest.raises(WireError) as caught:
        decode(data)
    assert caught.value.reason is verdict, caught.value


def test_decode_accepts_up_to_max_fields() -> None:
    assert len(decode(packet(*[b"(0)f=1"] * MAX_FIELDS)).message.fields) == MAX_FIELDS


def test_wire_error_says_why_and_where() -> None:
    with pytest.raises(WireError) as caught:
        decode(packet(b"(2)s=x"))
    assert caught.value.verdict is Verdict.MALFORMED
    assert str(caught.value) == "malformed: unsupported field type '2'"


# --- hostile input: any bytes give a Decoded or a WireError, nothing else ------------------

names = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="="),
    min_size=1,
    max_size=12,
).filter(lambda n: not n.startswith("("))
values = st.one_of(st.text(st.characters(exclude_categories=("Cs", "Cc"))), st.binary())
messages = st.lists(st.tuples(names, values), max_size=12).map(lambda f: Message(tuple(f)))


def decode_or_wire_error(data: bytes) -> None:
    with contextlib.suppress(WireError):
        decode(data)


@given(st.binary(max_size=400))
def test_random_bytes_never_escape_as_another_exception(data: bytes) -> None:
    decode_or_wire_error(data)


@given(st.sampled_from([b"###\n", b">>>\n"]), st.binary(max_size=400))
def test_random_bodies_never_escape_as_another_exception(start: bytes, data: bytes) -> None:
    decode_or_wire_error(start + data)


@given(messages, st.data())
def test_mutated_packets_never_escape_as_another_exception(
    msg: Message, data: st.DataObject
) -> None:
    classic = data.draw(st.booleans())
    buf = bytearray(encode_classic(msg, KEY) if classic else seal(msg, AUTH))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(buf)))
        match data.draw(st.sampled_from(["flip", "insert", "delete", "cut"])):
            case "flip" if at < len(buf):
                buf[at] ^= data.draw(st.integers(1, 255))
            case "insert":
                buf[at:at] = data.draw(st.binary(min_size=1, max_size=8))
            case "delete":
                del buf[at : at + data.draw(st.integers(1, 8))]
            case "cut":
                del buf[at:]
    decode_or_wire_error(bytes(buf))


@given(messages)
def test_any_message_survives_both_forms(msg: Message) -> None:
    assert decode(seal(msg, AUTH)).message == with_inner_auth(msg, KEY)
    assert decode(encode_classic(msg, KEY)).message == with_inner_auth(msg, KEY)
