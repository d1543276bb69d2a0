"""``python -m bench``: run the benchmarks, print the table, write JSON, markdown and a plot."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.profiles import SYSTEMS
from bench.report import markdown, plot, write_json
from bench.results import Run
from bench.scale import scale
from bench.scenarios import Options, failover, footprint, planned_moves, soak
from hacore.lab.netns import LabError

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
DEFAULT_REPS = 10
QUICK_REPS = 2

# name → (runner, long: skipped by --quick unless named)
SCENARIOS: dict[str, tuple[Callable[[Run, Options], None], bool]] = {
    "failover-classic": (lambda run, opts: failover(run, opts, "classic"), False),
    "failover-fast": (lambda run, opts: failover(run, opts, "fast"), False),
    "failover-fastest": (lambda run, opts: failover(run, opts, "fastest"), False),
    "switchover": (planned_moves, False),
    "footprint": (footprint, False),
    "scale": (scale, False),
    "false-failovers": (soak, True),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Failover, planned moves, footprint and scale of hacore, side by side with "
        "Heartbeat 3.0.6 and keepalived, in network namespaces (needs root).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_REPS} repetitions, short windows, long scenarios skipped",
    )
    parser.add_argument("--reps", type=int, help=f"repetitions per scenario [{DEFAULT_REPS}]")
    parser.add_argument(
        "--scenario",
        "-s",
        action="append",
        choices=sorted(SCENARIOS),
        help="run only this scenario (repeatable) [all]",
    )
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated systems to compare [{','.join(SYSTEMS)}]",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="directory for results.json, table.md, failover.png [bench/results]",
    )
    parser.add_argument("--soak-minutes", type=float,
                        help="false-failover run length [10; 0.5 with --quick]")  # fmt: skip
    parser.add_argument("--footprint-seconds", type=float,
                        help="footprint window [20; 5 with --quick]")  # fmt: skip
    parser.add_argument(
        "--scale-sizes", help="comma-separated cluster sizes [2,4,8,16; 2,4 with --quick]"
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="RESULTS",
        help="measure nothing: render the table and plot of a results.json again into --out",
    )
    return parser


def _machine() -> dict[str, object]:
    def first(path: str, key: str) -> str:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return ""

    def version(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return "not installed"
        return (done.stdout + done.stderr).strip().splitlines()[0] if done.returncode == 0 else ""

    return {
        "nproc": os.cpu_count(),
        "cpu": first("/proc/cpuinfo", "model name"),
        "memory": first("/proc/meminfo", "MemTotal"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "keepalived": version(["keepalived", "--version"]),
        "heartbeat": "3.0.6 (Debian package)" if Path("/usr/libexec/heartbeat").exists() else "",
        "loadavg_at_start": Path("/proc/loadavg").read_text().strip(),
    }


def _command_for(args: argparse.Namespace, reps: int) -> Callable[[str], str]:
    def command(scenario: str) -> str:
        words = ["python", "-m", "bench", "--scenario", scenario]
        words += ["--quick"] if args.quick else []
        words += (
            ["--reps", str(reps)] if reps != (QUICK_REPS if args.quick else DEFAULT_REPS) else []
        )
        if args.systems != ",".join(SYSTEMS) and scenario not in ("scale",):
            words += ["--systems", args.systems]
        return shlex.join(words)

    return command


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.from_json is not None:
        return _render(args.from_json, args.out)
    reps = args.reps or (QUICK_REPS if args.quick else DEFAULT_REPS)
    systems = tuple(s.strip() for s in args.systems.split(",") if s.strip())
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        print(f"--systems: unknown {', '.join(unknown) or 'empty list'}; choose from "
              f"{', '.join(SYSTEMS)}", file=sys.stderr)  # fmt: skip
        return 2
    if reps < 1:
        print("--reps must be at least 1", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("python -m bench builds network namespaces: run it as root", file=sys.stderr)
        return 1
    sizes = tuple(
        int(s) for s in (args.scale_sizes or ("2,4" if args.quick else "2,4,8,16")).split(",")
    )
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f} s] {message}", file=sys.stderr, flush=True)

    opts = Options(
        reps=reps,
        quick=args.quick,
        systems=systems,
        footprint_s=args.footprint_seconds or (5.0 if args.quick else 20.0),
        soak_minutes=args.soak_minutes or (0.5 if args.quick else 10.0),
        scale_sizes=sizes,
        command=_command_for(args, reps),
        say=say,
    )
    chosen = args.scenario or [
        name for name, (_, long) in SCENARIOS.items() if not (long and args.quick)
    ]
    run = Run(
        meta={
            "argv": ["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])],
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": _machine(),
            "reps": reps,
            "quick": args.quick,
            "systems": list(systems),
            "scenarios": chosen,
            "probe_interval_s": 0.005,
        }
    )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    try:
        for name in chosen:
            began = time.monotonic()
            say(f"scenario {name}")
            try:
                SCENARIOS[name][0](run, opts)
            except LabError as exc:
                say(f"scenario {name} failed: {exc}")
                run.meta.setdefault("failed_scenarios", {})[name] = str(exc)
            timings[name] = round(time.monotonic() - began, 1)
            _write(run, out, timings, plot_it=False)  # keep what is measured so far
    except KeyboardInterrupt:
        say("interrupted: writing what was measured")
    table = _write(run, out, timings, plot_it=True)
    print(table)
    why_not = run.meta.get("plot")
    picture = f", {out / 'failover.png'}" if why_not == "failover.png" else f" ({why_not})"
    say(f"wrote {out / 'results.json'}, {out / 'table.md'}{picture}")
    return 0


def _render(results: Path, out: Path) -> int:
    try:
        run = Run.from_json(json.loads(results.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"{results}: cannot read a benchmark run: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    why_not = plot(run, out / "failover.png")
    table = markdown(run)
    (out / "table.md").write_text(table)
    print(table)
    if why_not:
        print(why_not, file=sys.stderr)
    return 0


def _write(run: Run, out: Path, timings: dict[str, float], *, plot_it: bool) -> str:
    run.meta["seconds_per_scenario"] = timings
    run.meta["loadavg_at_end"] = Path("/proc/loadavg").read_text().strip()
    run.meta["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    if plot_it:
        why_not = plot(run, out / "failover.png")
        run.meta["plot"] = why_not or "failover.png"
    table = markdown(run)
    (out / "table.md").write_text(table)
    write_json(run, out / "results.json")
    return table


if __name__ == "__main__":
    sys.exit(main())
