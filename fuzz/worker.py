"""One target under atheris, in its own process: libFuzzer ends the process when it is done,
so ``python -m fuzz`` runs this once per target. Arguments: the target's name, then libFuzzer's
(corpus directory and ``-flag=value`` options)."""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-untyped]

# Coverage comes from instrumenting hacore's bytecode as it is imported: the targets module
# imports it, so it must be imported here, inside the block, and nowhere before.
with atheris.instrument_imports(include=["hacore"]):
    from fuzz.targets import TARGETS


def main() -> None:
    name, *libfuzzer_args = sys.argv[1:]
    target = TARGETS[name]
    atheris.Setup([sys.argv[0], *libfuzzer_args], target.run)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
