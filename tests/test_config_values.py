"""The value syntaxes: Heartbeat's times and booleans exactly, and hacore's TOML times."""

from __future__ import annotations

import pytest

from hacore.config.values import (
    InvalidValueError,
    describe_ms,
    format_duration,
    parse_bool,
    parse_duration,
    parse_heartbeat_time,
    parse_int,
    parse_ipv4,
    parse_ipv4_multicast,
    parse_ipv6,
    parse_port,
)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        # The examples checked against the real cl_get_msec (reference section 1.1).
        ("2", 2000),
        ("1.5", 1500),
        (".5", 500),
        ("2000ms", 2000),
        ("500us", 1),
        ("2msec", 2),
        # And the ones cluster-glue documents next to it.
        ("1000000us", 1000),
        ("0.1", 100),
        ("0.001", 1),
        ("499us", 0),
        ("501us", 1),
        ("3000usec", 3),
        ("10MS", 10),
        ("0", 0),
        ("1.", 1000),
    ],
)
def test_heartbeat_time_reads_like_cl_get_msec(text: str, ms: int) -> None:
    assert parse_heartbeat_time(text).ms == ms
    assert parse_heartbeat_time(text).note is None


@pytest.mark.parametrize("text", ["10x", "-1", "1.2.3", "abc", "", "1e3", "2 s", "2min"])
def test_heartbeat_time_refuses_what_is_not_a_time(text: str) -> None:
    with pytest.raises(InvalidValueError, match="is not a time"):
        parse_heartbeat_time(text)


def test_heartbeat_time_explains_a_unit_written_apart_from_its_number() -> None:
    with pytest.raises(InvalidValueError) as e:
        parse_heartbeat_time("ms")
    assert str(e.value) == "'ms' is not a time (write the unit next to the number, like '10ms')"


def test_seconds_suffix_is_accepted_with_a_note_that_heartbeat_rejects_it() -> None:
    parsed = parse_heartbeat_time("2s")
    assert parsed.ms == 2000
    assert parsed.note == (
        "'2s' is accepted by hacore but Heartbeat 3.0.6 rejects it; "
        "write '2' for a configuration both can read"
    )


def test_unit_with_trailing_letters_reads_like_heartbeat_with_a_note() -> None:
    parsed = parse_heartbeat_time("5msecs")
    assert parsed.ms == 5
    assert parsed.note == (
        "'5msecs' is read as 5 ms because only 'ms' of the unit counts; write '5ms'"
    )


def test_heartbeat_time_refuses_an_absurdly_long_time() -> None:
    with pytest.raises(InvalidValueError, match="too long"):
        parse_heartbeat_time("9" * 400)


@pytest.mark.parametrize("text", ["true", "on", "yes", "y", "1", "TRUE", "On", "Y"])
def test_true_spellings(text: str) -> None:
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["false", "off", "no", "n", "0", "FALSE", "Off", "N"])
def test_false_spellings(text: str) -> None:
    assert parse_bool(text) is False


@pytest.mark.parametrize("text", ["maybe", "2", "", "yess", "t"])
def test_other_words_are_not_booleans(text: str) -> None:
    with pytest.raises(InvalidValueError, match="is not a boolean"):
        parse_bool(text)


@pytest.mark.parametrize(
    ("text", "ms"),
    [("1s", 1000), ("500ms", 500), ("250us", 0), ("1500us", 2), ("1.5s", 1500), ("2 s", 2000)],
)
def test_toml_duration_needs_a_unit(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["10", "1m", "", "s", "-1s"])
def test_toml_duration_refuses_a_number_without_a_known_unit(text: str) -> None:
    with pytest.raises(InvalidValueError, match="is not a time"):
        parse_duration(text)


@pytest.mark.parametrize(("ms", "text"), [(1000, "1s"), (0, "0s"), (1500, "1500ms"), (30, "30ms")])
def test_format_duration_is_exact(ms: int, text: str) -> None:
    assert format_duration(ms) == text
    assert parse_duration(text) == ms


@pytest.mark.parametrize(("ms", "text"), [(10_000, "10 s"), (1500, "1.5 s"), (500, "500 ms")])
def test_describe_ms_for_messages(ms: int, text: str) -> None:
    assert describe_ms(ms) == text


def test_parse_int_takes_decimal_digits_in_range() -> None:
    assert parse_int("255", 0, 255) == 255
    for bad in ("256", "-1", "1.0", "x", "", "\u0661"):
        with pytest.raises(InvalidValueError):
            parse_int(bad, 0, 255)


@pytest.mark.parametrize("text", ["0", "65536", "694x"])
def test_parse_port_refuses_what_is_not_a_port(text: str) -> None:
    with pytest.raises(InvalidValueError, match=r"is not a port number \(1 to 65535\)"):
        parse_port(text)


def test_ipv4_address_refuses_a_host_name_with_a_hint() -> None:
    with pytest.raises(InvalidValueError) as e:
        parse_ipv4("pc2")
    assert str(e.value) == "'pc2' is not an IPv4 address (write the address, not a host name)"


def test_ipv4_address_refuses_an_octet_out_of_range_without_the_host_name_hint() -> None:
    with pytest.raises(InvalidValueError) as e:
        parse_ipv4("192.168.1.300")
    assert str(e.value) == "'192.168.1.300' is not an IPv4 address"


def test_ipv6_address_keeps_its_scope_and_is_written_canonically() -> None:
    assert parse_ipv6("FE80::0001%eth0") == "fe80::1%eth0"


def test_multicast_group_must_be_in_the_multicast_range() -> None:
    assert parse_ipv4_multicast("239.0.0.1") == "239.0.0.1"
    with pytest.raises(InvalidValueError, match="not an IPv4 multicast group"):
        parse_ipv4_multicast("10.0.0.1")
