"""The configuration error corpus: each broken configuration gives exactly one error line.

Each case is a directory under tests/config_corpus/ holding the input files (ha.cf, authkeys,
haresources, nodeinfo, or cluster.toml), ``expected`` with the one error line, where ``{dir}``
stands for the directory the case is read from, and optionally ``mode``: the octal mode to
give authkeys and cluster.toml (git does not keep modes, so they are set here; 600 otherwise).

Other tests (the CLI's exit status, say) reuse the corpus through ``corpus_cases``,
``prepare_case`` and ``expected_error``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hacore.config import ConfigError, load
from hacore.config.errors import Severity

CORPUS = Path(__file__).parent / "config_corpus"
_NOT_INPUT = ("expected", "mode")
_SECRET_FILES = ("authkeys", "cluster.toml")


def corpus_cases() -> list[tuple[str, Path]]:
    """Every case as (name, directory in the source tree), in name order."""
    return sorted((case.name, case) for case in CORPUS.iterdir() if case.is_dir())


def prepare_case(case: Path, tmp_path: Path) -> tuple[Path, str]:
    """Copy a case's input files under ``tmp_path`` with the modes it asks for. Returns the
    configuration directory to read and the one error line expected from it."""
    target = tmp_path / case.name
    shutil.copytree(case, target, ignore=shutil.ignore_patterns(*_NOT_INPUT))
    mode_file = case / "mode"
    mode = int(mode_file.read_text().strip(), 8) if mode_file.exists() else 0o600
    for name in _SECRET_FILES:
        if (target / name).exists():
            (target / name).chmod(mode)
    return target, expected_error(case, target)


def expected_error(case: Path, directory: Path) -> str:
    """The one error line the case must produce when read from ``directory``."""
    return (case / "expected").read_text().strip().replace("{dir}", str(directory))


def test_corpus_is_big_enough() -> None:
    assert len(corpus_cases()) >= 30


@pytest.mark.parametrize(("name", "case"), corpus_cases(), ids=[n for n, _ in corpus_cases()])
def test_broken_configuration_gives_exactly_its_one_error(
    name: str, case: Path, tmp_path: Path
) -> None:
    directory, expected = prepare_case(case, tmp_path)
    with pytest.raises(ConfigError) as e:
        load(directory)
    errors = [p for p in e.value.problems if p.severity is Severity.ERROR]
    assert [str(p) for p in errors] == [expected]
