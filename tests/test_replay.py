"""The per-sender sequence window."""

from __future__ import annotations

from hacore.membership.replay import WINDOW, SenderWindow, SeqVerdict, is_fresh


def test_increasing_sequence_numbers_are_new() -> None:
    w = SenderWindow(5)
    assert [w.check(5, s) for s in (1, 2, 3)] == [SeqVerdict.NEW] * 3


def test_a_repeated_sequence_number_is_a_duplicate() -> None:
    w = SenderWindow(5)
    w.check(5, 1)
    w.check(5, 2)
    assert w.check(5, 1) is SeqVerdict.DUPLICATE
    assert w.check(5, 2) is SeqVerdict.DUPLICATE


def test_a_late_message_that_never_arrived_is_accepted_once() -> None:
    w = SenderWindow(5)
    w.check(5, 1)
    w.check(5, 3)
    assert w.missing() == [2]
    assert w.check(5, 2) is SeqVerdict.NEW
    assert w.check(5, 2) is SeqVerdict.DUPLICATE
    assert w.missing() == []


def test_nothing_before_the_first_heard_sequence_counts_as_missing() -> None:
    w = SenderWindow(5)
    w.check(5, 40)
    w.check(5, 42)
    assert w.missing() == [41]


def test_a_sequence_below_the_window_is_too_old() -> None:
    w = SenderWindow(5)
    w.check(5, 1)
    w.check(5, WINDOW + 10)
    assert w.check(5, 2) is SeqVerdict.TOO_OLD


def test_a_higher_generation_restarts_the_sequence() -> None:
    w = SenderWindow(5)
    w.check(5, 100)
    assert w.check(6, 1) is SeqVerdict.RESTART
    assert w.check(6, 2) is SeqVerdict.NEW
    assert w.check(5, 101) is SeqVerdict.STALE_GENERATION


def test_freshness_allows_skew_either_way_within_the_window() -> None:
    assert is_fresh(1000.0, 1100.0, 300)
    assert is_fresh(1100.0, 1000.0, 300)
    assert not is_fresh(1000.0, 1301.0, 300)
