"""The chaos run in CI: ``python -m chaos`` for one minute on a fixed seed must exit 0, i.e.
every invariant of issue 7 held (its output is printed on failure). The invariant arithmetic
is tested on its own, without namespaces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chaos.invariants import FaultRecord, episodes, judge_dual, judge_empty

ROOT = Path(__file__).resolve().parent.parent


def _timeline(*marks: tuple[float, str]) -> list[tuple[float, frozenset[str]]]:
    return [(at, frozenset(filter(None, who.split(",")))) for at, who in marks]


def test_episodes_find_dual_and_empty_runs() -> None:
    timeline = _timeline((0, "a"), (1, "a,b"), (2, "b"), (3, ""), (3.5, "a"), (4, "a,b,c"))
    assert [(e.start, e.end) for e in episodes(timeline, 5, dual=True)] == [(1, 2), (4, 5)]
    assert [(e.start, e.end) for e in episodes(timeline, 5, dual=False)] == [(3, 3.5)]


def test_a_dual_episode_counts_only_after_its_cause_is_reverted() -> None:
    # A frozen holder from 10 to 14: a second holder from 11.5 until 14.3.
    timeline = _timeline((0, "a"), (11.5, "a,b"), (14.3, "a"))
    frozen = FaultRecord(1, "sigstop", ("a",), "", applied=10, reverted=14)
    raw, excess, lines = judge_dual(timeline, [frozen], end=20, bound=1.0)
    assert raw.worst == pytest.approx(2.8)
    assert excess.worst == pytest.approx(0.3) and excess.ok
    assert "sigstop" in lines[0]
    # Without a fault to explain it, the whole window counts.
    _, unexplained, _ = judge_dual(timeline, [], end=20, bound=1.0)
    assert unexplained.worst == pytest.approx(2.8) and not unexplained.ok


def test_the_no_holder_bound() -> None:
    timeline = _timeline((0, "a"), (5, ""), (7.5, "b"), (9, ""), (13, "c"))
    verdict, lines = judge_empty(timeline, [], end=20, start_at=0, bound=3.5)
    assert verdict.worst == pytest.approx(4.0) and not verdict.ok
    assert len(lines) == 2


@pytest.mark.netns
def test_a_one_minute_chaos_run_keeps_every_invariant() -> None:
    argv = [sys.executable, "-m", "chaos", "--minutes", "1", "--seed", "1"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    print(done.stdout)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert done.stdout.count("\nok ") >= 7
