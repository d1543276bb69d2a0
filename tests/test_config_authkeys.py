"""authkeys is read as Heartbeat 3.0.6's parse_authfile() reads it (reference section 1.3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hacore.config.authkeys import read_authkeys
from hacore.config.errors import Problem, Severity
from hacore.config.model import Auth, AuthKey, AuthMethod


def write(tmp_path: Path, content: str | bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "authkeys"
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    path.chmod(mode)
    return path


def read(
    tmp_path: Path, content: str | bytes, mode: int = 0o600
) -> tuple[Auth | None, list[Problem]]:
    return read_authkeys(write(tmp_path, content, mode))


def errors(problems: list[Problem]) -> list[tuple[int, str]]:
    return [(p.location.line, p.message) for p in problems if p.severity is Severity.ERROR]


def warnings(problems: list[Problem]) -> list[tuple[int, str]]:
    return [(p.location.line, p.message) for p in problems if p.severity is Severity.WARNING]


def test_reads_every_key_and_the_signing_key(tmp_path: Path) -> None:
    auth, problems = read(tmp_path, "auth 1\n1 sha1 SomeSecret\n2 md5  OtherSecret\n3 crc\n")
    assert problems == []
    assert auth == Auth(
        1,
        (
            AuthKey(1, AuthMethod.SHA1, b"SomeSecret"),
            AuthKey(2, AuthMethod.MD5, b"OtherSecret"),
            AuthKey(3, AuthMethod.CRC, b""),
        ),
    )
    assert auth.signing_key.secret == b"SomeSecret"


def test_secret_is_the_exact_bytes_of_the_word(tmp_path: Path) -> None:
    auth, _ = read(tmp_path, b"auth 1\n1 sha1 caf\xc3\xa9\xff\n")
    assert auth is not None
    assert auth.signing_key.secret == b"caf\xc3\xa9\xff"


def test_hash_inside_a_key_is_part_of_the_key(tmp_path: Path) -> None:
    auth, _ = read(tmp_path, "auth 1\n1 sha1 abc#def\n")
    assert auth is not None
    assert auth.signing_key.secret == b"abc#def"


def test_comment_lines_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    auth, problems = read(tmp_path, "# keys\n\n   # indented comment\nauth 1\n\n1 sha1 k\n")
    assert problems == []
    assert auth is not None


def test_sha256_is_hacores_own_method_and_warns(tmp_path: Path) -> None:
    auth, problems = read(tmp_path, "auth 1\n1 sha256 k\n")
    assert auth is not None
    assert auth.signing_key.method is AuthMethod.SHA256
    assert warnings(problems) == [
        (2, "'sha256' is hacore's own method: Heartbeat 3.0.6 refuses an authkeys file that has it")
    ]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o440])
def test_file_readable_by_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path, "auth 1\n1 sha1 k\n", mode)
    auth, problems = read_authkeys(path)
    assert auth is None
    assert [str(p) for p in problems] == [
        f"{path}: readable by group or others (mode {mode:04o}); run 'chmod 600 {path}'"
    ]


def test_write_bits_for_group_or_others_are_not_checked_like_heartbeat(tmp_path: Path) -> None:
    auth, problems = read(tmp_path, "auth 1\n1 sha1 k\n", 0o622)
    assert auth is not None
    assert problems == []


def test_missing_auth_line_is_an_error(tmp_path: Path) -> None:
    assert errors(read(tmp_path, "1 sha1 k\n")[1]) == [
        (0, "no 'auth <key number>' line (add 'auth 1' above the key lines)")
    ]


def test_auth_naming_a_key_without_a_line_is_an_error(tmp_path: Path) -> None:
    assert errors(read(tmp_path, "auth 2\n1 sha1 k\n")[1]) == [
        (1, "'auth 2' names key 2, but no line defines it (add '2 sha1 <secret>')")
    ]


def test_misspelt_auth_line_is_one_error(tmp_path: Path) -> None:
    assert errors(read(tmp_path, "auht 1\n1 sha1 k\n")[1]) == [
        (1, "expected 'auth <key number>', found 'auht 1'")
    ]


def test_crc_with_a_key_is_an_error(tmp_path: Path) -> None:
    assert errors(read(tmp_path, "auth 1\n1 crc k\n")[1]) == [
        (2, "method 'crc' takes no key (write '1 crc')")
    ]


@pytest.mark.parametrize("method", ["sha1", "md5", "sha256"])
def test_keyed_method_without_a_key_is_an_error(tmp_path: Path, method: str) -> None:
    assert errors(read(tmp_path, f"auth 1\n1 {method}\n")[1]) == [
        (2, f"method '{method}' needs a key (write '1 {method} <secret>')")
    ]


def test_unknown_method_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    assert errors(read(tmp_path, "auth 1\n1 SHA1 k\n")[1]) == [
        (2, "unknown method 'SHA1' (write sha1, md5, crc or sha256) (did you mean 'sha1'?)")
    ]


def test_duplicate_key_number_is_an_error(tmp_path: Path) -> None:
    assert errors(read(tmp_path, "auth 1\n1 sha1 a\n1 md5 b\n")[1]) == [
        (3, "key 1 is already defined on line 2")
    ]


@pytest.mark.parametrize("index", ["16", "-1"])
def test_key_number_must_be_0_to_15(tmp_path: Path, index: str) -> None:
    assert errors(read(tmp_path, f"auth 1\n1 sha1 a\n{index} sha1 b\n")[1]) == [
        (3, f"key number {index} is out of range (0 to 15)")
    ]


def test_invalid_key_line_is_reported_without_echoing_the_secret(tmp_path: Path) -> None:
    _, problems = read(tmp_path, "auth 1\n1 sha1 k\nsha1 TopSecret\n")
    assert errors(problems) == [(3, "this line is not '<key number> <method> [<key>]'")]
    assert "TopSecret" not in str(problems)


def test_words_after_the_key_are_ignored_with_a_warning(tmp_path: Path) -> None:
    auth, problems = read(tmp_path, "auth 1\n1 sha1 my pass phrase\n")
    assert auth is not None
    assert auth.signing_key.secret == b"my"
    assert warnings(problems) == [
        (2, "only the first word is the key; the words after it are ignored")
    ]


def test_auth_line_after_its_key_works_but_warns_that_heartbeat_needs_it_first(
    tmp_path: Path,
) -> None:
    auth, problems = read(tmp_path, "1 sha1 k\nauth 1\n")
    assert auth is not None
    assert warnings(problems) == [
        (
            2,
            "Heartbeat 3.0.6 needs 'auth 1' above the line of key 1; "
            "move it to the top of the file",
        )
    ]


def test_crc_as_signing_method_warns_that_it_can_be_forged(tmp_path: Path) -> None:
    auth, problems = read(tmp_path, "auth 3\n3 crc\n")
    assert auth is not None
    assert warnings(problems) == [
        (
            2,
            "key 3 (the signing key) uses crc, a checksum anyone on the network can forge; "
            "use sha1 (Heartbeat can read it) or sha256",
        )
    ]


def test_missing_file_says_how_to_create_it(tmp_path: Path) -> None:
    auth, problems = read_authkeys(tmp_path / "authkeys")
    assert auth is None
    assert [str(p) for p in problems] == [
        f"{tmp_path}/authkeys: not found "
        "(create it with the lines 'auth 1' and '1 sha1 <secret>', mode 600)"
    ]
