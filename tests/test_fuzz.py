"""The fuzzer still runs: ``python -m fuzz --quick`` (a couple of seconds per target, under
atheris) must finish without a crash, having run every target from its seeds. The long run
(``python -m fuzz``, at least 1 M datagram inputs) is run by hand; see fuzz/__main__.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from fuzz.__main__ import DEFAULT_RUNS
from fuzz.targets import TARGETS

ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT = 120.0
_LINE = re.compile(r"^(\w+)\s+(\d+) runs\s+[\d.]+ s\s+\d+/s\s+(\S+)", re.MULTILINE)


def test_a_quick_run_of_every_target_finds_no_crash(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fuzz", "--quick", "--work", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    ran = {name: (int(runs), verdict) for name, runs, verdict in _LINE.findall(done.stdout)}
    assert set(ran) == set(TARGETS), done.stdout
    for name, (runs, verdict) in ran.items():
        assert verdict == "ok" and runs > 0, (name, runs, verdict)
        # Every target started from its seeds, and coverage guidance added inputs to them.
        seeded = sum(1 for _ in TARGETS[name].seeds())
        assert len(list((tmp_path / name / "corpus").iterdir())) > min(seeded, 1)


def test_every_seed_passes_its_target() -> None:
    for target in TARGETS.values():
        seeds = list(target.seeds())
        assert seeds, target.name
        for _name, data in seeds:
            target.run(data)


def test_the_long_run_does_at_least_a_million_datagram_inputs() -> None:
    datagram_targets = [t for t in TARGETS.values() if t.datagram]
    assert len(datagram_targets) * DEFAULT_RUNS >= 1_000_000
