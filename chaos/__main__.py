"""``python -m chaos [--minutes N] [--seed S] [--report FILE]``: needs root (namespaces)."""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from chaos.run import run
from hacore.lab.netns import LabError

MAX_MINUTES = 24 * 60


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chaos",
        description="Drive a three-node hacore cluster (VIP + Dummy) through random faults "
        "in network namespaces and check issue 7's invariants; exits 1 if one breaks.",
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the run [10]")
    parser.add_argument("--seed", type=int, help="seed of the fault sequence [random, printed]")
    parser.add_argument("--report", type=Path, help="also write the whole record as JSON here")
    args = parser.parse_args(argv)
    if not 0.5 <= args.minutes <= MAX_MINUTES:
        parser.error(f"--minutes must be within 0.5..{MAX_MINUTES}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    try:
        return run(args.minutes, seed, lambda line: print(line, flush=True), args.report)
    except LabError as err:
        print(f"chaos: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
