"""Inputs the fuzzer (``python -m fuzz``) found to crash something, each kept as a test.

Each test names what the input was, why it crashed and where it was fixed; the last one replays
the fuzzer's own input through its target, byte for byte.
"""

from __future__ import annotations

import base64

import pytest

from fuzz import targets
from hacore.membership.replay import is_fresh
from hacore.membership.wire import Message, Verdict


def _status(**override: str) -> Message:
    fields = {"t": "status", "src": "pc2", "seq": "1", "hg": "7", "st": "active"}
    fields["ts"] = f"{int(targets.WALL):x}"
    return Message(tuple({**fields, **override}.items()))


def _verdicts(message: Message) -> list[Verdict]:
    membership = targets._membership()
    events = membership.receive(message, "eth0", 1.0, targets.WALL)
    return [e.verdict for e in events if hasattr(e, "verdict")]


def test_a_timestamp_beyond_any_float_is_not_fresh() -> None:
    # Found by the envelope target: an authentic status with ts = 'f' * 255 made
    # is_fresh raise OverflowError (hacore/membership/replay.py).
    assert not is_fresh(int("f" * 255, 16), targets.WALL, 5.0)
    assert not is_fresh(-(10**400), targets.WALL, 5.0)


@pytest.mark.parametrize("field", ["ts", "hg", "seq", "dt"])
@pytest.mark.parametrize("digits", [17, 255, 4000])
def test_a_number_longer_than_64_bits_is_malformed_not_a_crash(field: str, digits: int) -> None:
    # Heartbeat writes these with %lx. Longer ones overflowed the freshness check (float) and,
    # past 4300 decimal digits, the log line's int formatting (ValueError); fixed in
    # hacore/membership/detector.py (_hex).
    assert _verdicts(_status(**{field: "f" * digits})) == [Verdict.MALFORMED]


def test_a_sixty_four_bit_number_is_still_read() -> None:
    message = _status(seq="ffffffffffffffff")
    assert _verdicts(message) == []


# The envelope target's input: mode 3 (classic form, sealed with the real key), then the
# structured choices that give an NS_reqnodes from pc2 with hg=7 and a 255-digit ts.
CRASH_INPUTS = {
    "envelope-huge-ts": "Ay8FAQICAQFjZTAxMmY4AgIBBwEGdwGBAgE=",
}


@pytest.mark.parametrize("name", sorted(CRASH_INPUTS))
def test_the_fuzzers_input_now_passes_its_target(name: str) -> None:
    target = targets.TARGETS[name.split("-", 1)[0]]
    target.run(base64.b64decode(CRASH_INPUTS[name]))
