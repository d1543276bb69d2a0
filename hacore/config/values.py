"""The value syntaxes the readers share: times, booleans, whole numbers, ports and addresses.

Each parser returns the value or raises ``InvalidValueError`` whose message says what to write
instead; the reader adds the file, line and directive. The Heartbeat spellings follow
cluster-glue exactly (``cl_get_msec``, ``cl_str_to_boolean``) so that a ha.cf means the same
thing to hacore as it did to Heartbeat 3.0.6.
"""

from __future__ import annotations

import grp
import ipaddress
import math
import re
from dataclasses import dataclass


class InvalidValueError(ValueError):
    """A value that does not parse; ``str()`` is the explanation a person reads."""


# --------------------------------------------------------------------------------------------
# Times


# The longest time hacore accepts (about 24 days): far beyond any sane timer, and small enough
# that every timer fits the 32-bit fields of the status output and the wire format.
MAX_MS = 2**31 - 1

_HEARTBEAT_TIME = re.compile(r"(?P<number>\d+(?:\.\d*)?|\.\d+)(?P<unit>[A-Za-z]*)")
_TIME_HINT = "write seconds like '10' or '1.5', or milliseconds like '500ms'"
_UNIT_ALONE = re.compile(r"(?i)(ms|msec|us|usec|s)")


@dataclass(frozen=True)
class HeartbeatTime:
    """A ha.cf time. ``note`` is set when hacore reads a spelling that Heartbeat 3.0.6 rejects
    or reads only by accident; the reader turns it into a warning."""

    ms: int
    note: str | None = None


def _to_ms(number: str, multiplier: int, divisor: int, text: str) -> int:
    # cl_get_msec computes in a C double and rounds by adding 0.5 and truncating, so
    # 500us -> 1 and 499us -> 0. Python floats are the same IEEE doubles, so this matches
    # Heartbeat bit for bit, including at the rounding edges.
    value = float(number) * multiplier / divisor + 0.5
    if not math.isfinite(value) or value > MAX_MS:
        raise InvalidValueError(f"'{text}' is too long a time (at most {MAX_MS} ms)")
    return int(value)


def parse_heartbeat_time(text: str) -> HeartbeatTime:
    """A ha.cf time: seconds unless suffixed ``ms``/``msec`` or ``us``/``usec`` (any case).

    hacore also takes an ``s`` suffix, which Heartbeat rejects, and says so in ``note``.
    """
    m = _HEARTBEAT_TIME.fullmatch(text)
    if m is None:
        if _UNIT_ALONE.fullmatch(text):
            # 'deadtime 10 ms': the space made 'ms' a token of its own (every token of a
            # ha.cf line is applied separately), so '10' meant 10 seconds.
            raise InvalidValueError(
                f"'{text}' is not a time (write the unit next to the number, like '10{text}')"
            )
        raise InvalidValueError(f"'{text}' is not a time ({_TIME_HINT})")
    number, unit = m["number"], m["unit"].lower()
    if unit == "":
        return HeartbeatTime(_to_ms(number, 1000, 1, text))
    if unit == "s":
        return HeartbeatTime(
            _to_ms(number, 1000, 1, text),
            f"'{text}' is accepted by hacore but Heartbeat 3.0.6 rejects it; "
            f"write '{number}' for a configuration both can read",
        )
    # Heartbeat compares only the first two letters of the unit, so '5msecs' is 5 ms to it.
    if unit.startswith("ms"):
        ms = _to_ms(number, 1, 1, text)
    elif unit.startswith("us"):
        ms = _to_ms(number, 1, 1000, text)
    else:
        raise InvalidValueError(f"'{text}' is not a time ({_TIME_HINT})")
    if unit in ("ms", "msec", "us", "usec"):
        return HeartbeatTime(ms)
    return HeartbeatTime(
        ms,
        f"'{text}' is read as {ms} ms because only '{unit[:2]}' of the unit counts; "
        f"write '{number}{unit[:2]}'",
    )


_DURATION = re.compile(r"(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>us|ms|s)")
_DURATION_SCALE = {"us": (1, 1000), "ms": (1, 1), "s": (1000, 1)}


def parse_duration(text: str) -> int:
    """A cluster.toml time string: a number with a unit, ``"1s"``, ``"500ms"``, ``"250us"``."""
    m = _DURATION.fullmatch(text.strip().lower())
    if m is None:
        raise InvalidValueError(
            f'\'{text}\' is not a time (write a number with a unit: "10s", "500ms"; '
            "or an integer of milliseconds)"
        )
    multiplier, divisor = _DURATION_SCALE[m["unit"]]
    return _to_ms(m["number"], multiplier, divisor, text)


def format_duration(ms: int) -> str:
    """The cluster.toml spelling of a time: whole seconds as ``"10s"``, else ``"1500ms"``."""
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def describe_ms(ms: int) -> str:
    """A time for messages: ``10 s``, ``1.5 s``, ``500 ms``."""
    if ms < 1000:
        return f"{ms} ms"
    return f"{ms / 1000:g} s"


# --------------------------------------------------------------------------------------------
# Booleans and numbers

_TRUE = frozenset({"true", "on", "yes", "y", "1"})
_FALSE = frozenset({"false", "off", "no", "n", "0"})


def parse_bool(text: str) -> bool:
    """cl_str_to_boolean: true|on|yes|y|1 and false|off|no|n|0, in any case."""
    folded = text.lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise InvalidValueError(f"'{text}' is not a boolean (write on/off, yes/no or true/false)")


def parse_int(text: str, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high`` inclusive, written in decimal digits."""
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise InvalidValueError(f"'{text}' is not a whole number from {low} to {high}")
    return int(text)


def parse_port(text: str) -> int:
    try:
        return parse_int(text, 1, 65535)
    except InvalidValueError:
        raise InvalidValueError(f"'{text}' is not a port number (1 to 65535)") from None


# --------------------------------------------------------------------------------------------
# Addresses and interfaces

# IFNAMSIZ is 16 on Linux, including the terminating NUL.
MAX_INTERFACE_LENGTH = 15


def check_interface(text: str) -> str:
    if len(text) > MAX_INTERFACE_LENGTH or "/" in text:
        raise InvalidValueError(
            f"'{text}' is not a network interface name "
            f"(at most {MAX_INTERFACE_LENGTH} characters, no '/')"
        )
    return text


def _not_an_address(text: str, family: str) -> InvalidValueError:
    # Heartbeat resolved host names here at start-up; hacore does not, so that a name that
    # stops resolving cannot silently take a link or a ping node away.
    digits = "abcdef" if family == "6" else ""
    host = text.split("%", maxsplit=1)[0]
    looks_like_name = any(c.isalpha() and c.lower() not in digits for c in host)
    hint = " (write the address, not a host name)" if looks_like_name else ""
    return InvalidValueError(f"'{text}' is not an IPv{family} address{hint}")


def parse_ipv4(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise _not_an_address(text, "4") from None


def parse_ipv6(text: str) -> str:
    """An IPv6 address, optionally with a ``%scope`` (``fe80::1%eth0``)."""
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError:
        raise _not_an_address(text, "6") from None


def parse_ipv4_multicast(text: str) -> str:
    address = parse_ipv4(text)
    if not ipaddress.IPv4Address(address).is_multicast:
        raise InvalidValueError(
            f"'{text}' is not an IPv4 multicast group (224.0.0.0 to 239.255.255.255)"
        )
    return address


def parse_ipv6_multicast(text: str) -> str:
    address = parse_ipv6(text)
    if not ipaddress.IPv6Address(address).is_multicast:
        raise InvalidValueError(f"'{text}' is not an IPv6 multicast group (ff00::/8)")
    return address


def parse_listen_address(text: str) -> tuple[str, int]:
    """Where a server listens: an IPv4 address or an IPv6 one in brackets, a colon and a port
    (``127.0.0.1:9694``, ``[::1]:9694``, ``0.0.0.0:9694``). Returns the address (without
    brackets) and the port. Host names are refused, as everywhere in the configuration."""
    example = "write address:port, like 127.0.0.1:9694 or [::1]:9694"
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise InvalidValueError(f"'{text}' has no ']' after the IPv6 address ({example})")
        if not rest.startswith(":") or rest == ":":
            raise InvalidValueError(f"'{text}' has no port ({example})")
        return parse_ipv6(inside), parse_port(rest[1:])
    host, colon, port_text = text.rpartition(":")
    if ":" in host:
        raise InvalidValueError(
            f"'{text}': write an IPv6 address in brackets, then the port, like [::1]:9694"
        )
    if not host and colon:
        raise InvalidValueError(f"'{text}' has no address (write 0.0.0.0{text} for every address)")
    if not colon or not port_text:
        raise InvalidValueError(f"'{text}' has no port ({example})")
    return parse_ipv4(host), parse_port(port_text)


def format_listen_address(address: str, port: int) -> str:
    """The ``address:port`` spelling ``parse_listen_address`` reads (IPv6 in brackets)."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


# --------------------------------------------------------------------------------------------
# Local groups

# What useradd/groupadd accept by default (shadow's NAME_REGEX, plus a trailing '$' for Samba).
_GROUP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?")


def parse_group(text: str) -> str:
    """A local group that exists on this machine (the control socket's group)."""
    if _GROUP_NAME.fullmatch(text) is None:
        raise InvalidValueError(f"'{text[:40]}' is not a group name")
    try:
        grp.getgrnam(text)
    except KeyError:
        raise InvalidValueError(
            f"no group '{text}' on this machine (create it with 'groupadd {text}')"
        ) from None
    return text


# --------------------------------------------------------------------------------------------
# Syslog facilities

# What cl_syslogfac_str2int accepts on glibc (the facilitynames table), compared
# case-sensitively; 'none' means "no syslog" and is handled by the readers.
SYSLOG_FACILITIES = (
    "auth",
    "authpriv",
    "cron",
    "daemon",
    "ftp",
    "kern",
    "lpr",
    "mail",
    "news",
    "security",
    "syslog",
    "user",
    "uucp",
    *(f"local{n}" for n in range(8)),
)
