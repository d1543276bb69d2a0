"""Heartbeat's rsc_hold words, both ways."""

from __future__ import annotations

import pytest

from hacore.resources.r1 import held_by, resource_fields, rsc_hold

PREFERRED = {"IPaddr::198.51.100.55": "pc1", "IPaddr::198.51.100.56": "pc2"}
A, B = PREFERRED


@pytest.mark.parametrize(
    ("node", "held", "word"),
    [
        ("pc1", set(), "none"),
        ("pc1", {A}, "local"),
        ("pc1", {B}, "foreign"),
        ("pc1", {A, B}, "all"),
        ("pc2", {A}, "foreign"),
        ("pc2", {B}, "local"),
    ],
)
def test_rsc_hold_is_relative_to_the_sender(node: str, held: set[str], word: str) -> None:
    assert rsc_hold(node, held, PREFERRED) == word
    assert held_by(node, word, PREFERRED) == frozenset(held)


def test_resource_fields_follow_heartbeats_order() -> None:
    fields = resource_fields("local", stable=True, info="shutdown", full=True)
    assert fields == [
        ("rsc_hold", "local"),
        ("rtype", "full"),
        ("isstable", "1"),
        ("info", "shutdown"),
    ]
