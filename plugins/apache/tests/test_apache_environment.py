"""The envfiles: sourced by a real /bin/sh with a fixed program, never built into shell text."""

from __future__ import annotations

import asyncio
import os
import pwd
from pathlib import Path

import pytest

from hacore_apache.environment import (
    EnvfileError,
    parse_env0,
    prepare_directories,
    source_envfiles,
)

BASE = {"PATH": "/usr/bin:/bin", "HOME": "/root", "KEEP": "kept"}


def source(*files: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    return asyncio.run(source_envfiles(list(files), base or BASE))


def test_env0_output_is_split_on_nul_and_the_first_equals_sign() -> None:
    data = b"A=1\0MULTI=line one\nline two\0EQ=a=b\0EMPTY=\0"
    assert parse_env0(data) == {"A": "1", "MULTI": "line one\nline two", "EQ": "a=b", "EMPTY": ""}


def test_an_envfile_is_shell_its_variables_expand_and_unset_works(tmp_path: Path) -> None:
    # What Debian's envvars does: computed values, `unset HOME`, plain assignments exported.
    envvars = tmp_path / "envvars"
    envvars.write_text(
        'unset HOME\nSUFFIX="-two"\nexport APACHE_RUN_DIR=/run/apache2$SUFFIX\nexport LANG=C\n'
    )
    env = source(envvars)
    assert env["APACHE_RUN_DIR"] == "/run/apache2-two"
    assert env["LANG"] == "C"
    assert env["KEEP"] == "kept"
    assert "HOME" not in env
    assert "SUFFIX" not in env  # not exported: httpd would not see it either


def test_later_files_override_earlier_ones_and_missing_ones_are_skipped(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    first.write_text("export X=1 Y=1\n")
    second.write_text("export X=2\n")
    env = source(first, tmp_path / "missing", second)
    assert (env["X"], env["Y"]) == ("2", "1")


def test_a_failing_envfile_is_an_error_with_the_shells_words(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.write_text("if then fi\n")
    with pytest.raises(EnvfileError, match=r"cannot source .*broken: .*[Ss]yntax error"):
        source(broken)


def test_a_file_name_is_never_shell_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    hostile = tmp_path / 'x"; touch pwned; "$(touch pwned2)`touch pwned3`.env'
    hostile.write_text("export SAFE=yes\n")
    env = source(hostile)
    assert env["SAFE"] == "yes"
    assert sorted(p.name for p in tmp_path.iterdir()) == [hostile.name]


def test_no_envfiles_means_the_base_environment() -> None:
    assert source() == BASE


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_directories_are_made_as_apache2ctl_makes_them(tmp_path: Path) -> None:
    env = {
        "APACHE_RUN_USER": "www-data",
        "APACHE_RUN_DIR": str(tmp_path / "run"),
        "APACHE_LOCK_DIR": str(tmp_path / "lock"),
        "APACHE_LOG_DIR": str(tmp_path / "log"),
    }
    created = prepare_directories(env)
    www = pwd.getpwnam("www-data").pw_uid
    assert set(created) == {tmp_path / d for d in ("run", "run/socks", "lock", "log")}
    assert (tmp_path / "run").stat().st_uid == 0
    assert (tmp_path / "run" / "socks").stat().st_uid == www
    assert (tmp_path / "lock").stat().st_uid == www
    assert prepare_directories(env) == []  # there already


def test_no_apache_variables_no_directories() -> None:
    assert prepare_directories({"PATH": "/bin"}) == []
