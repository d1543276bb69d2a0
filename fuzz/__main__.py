"""``python -m fuzz [--quick] [--runs N] [target ...]``: fuzz hacore's inputs with atheris.

Each target runs in its own process (libFuzzer exits when done) from a corpus seeded with the
test vectors and the configuration corpus; what it learns stays in ``--work`` for the next run.
A crash stops that target, keeps its input (``crash-*``) and makes the exit status 1; turn it into
a test in tests/test_fuzz_regressions.py (``--replay FILE TARGET`` shows the traceback again).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import re
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from fuzz.targets import TARGETS, Target

DEFAULT_RUNS = 1_000_000  # per datagram target: the issue asks for at least 1 M in the long run
CONFIG_SHARE = 10  # configuration targets get runs / 10: each input writes files and loads them
# --quick (CI): seconds per datagram target, and per configuration target (each of those inputs
# costs file writes, so a second there already runs hundreds).
QUICK_SECONDS = 2.0
QUICK_CONFIG_SECONDS = 1.0
# libFuzzer's own limit on one input: a parser that loops on some input is a crash, too.
INPUT_TIMEOUT_S = 10
_EXECUTED = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")


@dataclass(frozen=True)
class Outcome:
    target: str
    runs: int
    seconds: float
    crash: Path | None
    excerpt: str

    @property
    def line(self) -> str:
        rate = self.runs / self.seconds if self.seconds else 0.0
        verdict = f"CRASH {self.crash}" if self.crash else "ok"
        return (
            f"{self.target:<12} {self.runs:>9} runs {self.seconds:8.1f} s {rate:>8.0f}/s  {verdict}"
        )


def _seed(target: Target, corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    for _name, data in target.seeds():
        # Named by content, as libFuzzer names what it adds: reseeding adds no duplicates.
        (corpus / hashlib.sha1(data).hexdigest()).write_bytes(data)


def _dictionary(target: Target, path: Path) -> Path:
    def quoted(token: str) -> str:
        return '"' + "".join(c if c.isalnum() else f"\\x{ord(c):02x}" for c in token) + '"'

    path.write_text("".join(f"{quoted(t)}\n" for t in target.tokens))
    return path


def run_target(target: Target, work: Path, *, runs: int | None, seconds: float | None) -> Outcome:
    home = work / target.name
    corpus = home / "corpus"
    _seed(target, corpus)
    args = [
        str(corpus),
        f"-dict={_dictionary(target, home / 'tokens.dict')}",
        f"-artifact_prefix={home}/",
        f"-timeout={INPUT_TIMEOUT_S}",
        "-print_final_stats=1",
        # A 16 KiB datagram is refused unread (OVERSIZED); the parser's work is in shorter ones.
        "-max_len=4096",
    ]
    if runs is not None:
        args.append(f"-runs={runs}")
    if seconds is not None:
        args.append(f"-max_total_time={max(1, round(seconds))}")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "fuzz.worker", target.name, *args],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    (home / "last-run.log").write_text(output)
    executed = _EXECUTED.findall(output)
    artifacts = _ARTIFACT.findall(output)
    crash = Path(artifacts[-1]) if artifacts else None
    if done.returncode != 0 and crash is None:
        crash = home / "last-run.log"  # died without saving an input: the log says why
    excerpt = "\n".join(output.splitlines()[-25:]) if crash else ""
    return Outcome(target.name, int(executed[-1]) if executed else 0, elapsed, crash, excerpt)


def replay(path: Path, names: list[str]) -> int:
    """Run one saved input through targets without the fuzzer, printing any traceback."""
    data = path.read_bytes()
    status = 0
    for name in names:
        try:
            TARGETS[name].run(data)
        except Exception:
            status = 1
            print(f"{name}: {path}: crashes", file=sys.stderr)
            traceback.print_exc()
        else:
            print(f"{name}: {path}: ok")
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fuzz",
        description="Coverage-guided fuzzing (atheris) of the wire decoder, the envelope with a "
        "real key and membership behind it, and the ha.cf/authkeys/haresources/TOML readers.",
    )
    parser.add_argument("targets", nargs="*", metavar="target", help=f"{', '.join(TARGETS)} [all]")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_SECONDS:g} s per datagram target, {QUICK_CONFIG_SECONDS:g} s per "
        "configuration target (what CI runs)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=DEFAULT_RUNS,
        help=f"inputs per datagram target [{DEFAULT_RUNS}]; configuration targets run "
        f"1/{CONFIG_SHARE} of it",
    )
    parser.add_argument("--seconds", type=float, help="stop each target after this long")
    parser.add_argument(
        "--work",
        type=Path,
        help="keep corpora and crash inputs here (reused by the next run) [a new temp dir]",
    )
    parser.add_argument("--replay", type=Path, metavar="FILE", help="run FILE through targets")
    return parser


def main(argv: list[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    unknown = [t for t in options.targets if t not in TARGETS]
    if unknown:
        print(f"python -m fuzz: unknown target {unknown[0]!r} (one of {', '.join(TARGETS)})")
        return 2
    names = options.targets or list(TARGETS)
    if options.replay is not None:
        return replay(options.replay, names)
    if importlib.util.find_spec("atheris") is None:
        print("python -m fuzz: atheris is not installed (.venv/bin/pip install -e '.[dev]')")
        return 2
    work = options.work or Path(tempfile.mkdtemp(prefix="hacore-fuzz-"))
    print(f"corpora and crash inputs in {work}")
    outcomes: list[Outcome] = []
    for name in names:
        target = TARGETS[name]
        if options.quick:
            quick = QUICK_SECONDS if target.datagram else QUICK_CONFIG_SECONDS
            runs, seconds = None, options.seconds or quick
        else:
            share = 1 if target.datagram else CONFIG_SHARE
            runs, seconds = max(1, options.runs // share), options.seconds
        outcome = run_target(target, work, runs=runs, seconds=seconds)
        outcomes.append(outcome)
        print(outcome.line, flush=True)
        if outcome.crash:
            print(outcome.excerpt)
    datagram = [o for o in outcomes if TARGETS[o.target].datagram]
    if datagram:
        total = sum(o.runs for o in datagram)
        spent = sum(o.seconds for o in datagram)
        print(f"datagram inputs: {total} in {spent:.1f} s")
    crashes = [o for o in outcomes if o.crash]
    if crashes:
        print(f"{len(crashes)} target(s) crashed: python -m fuzz --replay FILE TARGET reproduces")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
