"""Reading cluster.toml's [auth] table and its [[auth.key]] tables: the keys that sign
heartbeats, and where their secrets come from."""

from __future__ import annotations

from pathlib import Path

from hacore.config.authkeys import KEYED_METHODS, MAX_INDEX, check_private, signing_warning
from hacore.config.files import read_with_mode
from hacore.config.model import Auth, AuthKey, AuthMethod
from hacore.config.toml_document import Document, Table
from hacore.config.toml_schema import AUTH, KEY, SECRETS


def read_auth(doc: Document, root: Table) -> Auth | None:
    table = doc.table(root, "auth", AUTH)
    if table is None:
        if "auth" not in root.data:
            doc.error(
                0,
                "no [auth] table: add [auth] with active = 1, and an [[auth.key]] with "
                'index = 1, method = "sha256" and a secret',
            )
        return None
    active = doc.integer(table, "active", 0, MAX_INDEX)
    keys: dict[int, tuple[AuthKey, int]] = {}
    broken = False
    for key_table in doc.array(table, "key", KEY):
        key = _auth_key(doc, key_table)
        if key is None:
            broken = True
        elif key.index in keys:
            doc.error(
                key_table.line,
                f"key {key.index} is already defined on line {keys[key.index][1]}",
            )
        else:
            keys[key.index] = (key, key_table.line)
    if active is None:
        if "active" not in table.data:
            doc.error(table.line, "[auth] has no 'active' (the index of the signing key)")
        return None
    if active not in keys:
        if not broken:
            doc.error(
                doc.key_line(table, "active"),
                f"'active' in [auth] names key {active}, but no [[auth.key]] has index = {active}",
            )
        return None
    signing, line = keys[active]
    crc = signing_warning(signing, doc.at(line))
    if crc is not None:
        doc.problems.append(crc)
    return Auth(active, tuple(k for k, _ in keys.values()))


def _auth_key(doc: Document, table: Table) -> AuthKey | None:
    index = doc.integer(table, "index", 0, MAX_INDEX)
    method_text = doc.string(table, "method")
    if index is None or method_text is None:
        for missing in ("index", "method"):
            if missing not in table.data:
                doc.error(table.line, f"[[auth.key]] has no '{missing}'")
        return None
    unknown = f"unknown method '{method_text}' (write sha256, sha1, md5 or crc)"
    method = doc.member(table, "method", method_text, AuthMethod, unknown)
    if method is None:
        return None
    given = [k for k in SECRETS if k in table.data]
    if method is AuthMethod.CRC:
        if given:
            doc.error(doc.key_line(table, given[0]), "method 'crc' takes no secret")
            return None
        return AuthKey(index, method, b"")
    if len(given) != 1:
        which = "no" if not given else "more than one"
        doc.error(
            table.line,
            f"key {index} has {which} secret (give one of secret, secret_hex, secret_file)",
        )
        return None
    secret = _secret(doc, table, given[0])
    if secret is None:
        return None
    if not secret:
        doc.error(doc.key_line(table, given[0]), f"the secret of key {index} is empty")
        return None
    assert method in KEYED_METHODS
    return AuthKey(index, method, secret)


def _secret(doc: Document, table: Table, key: str) -> bytes | None:
    text = doc.string(table, key)
    if text is None:
        return None
    line = doc.key_line(table, key)
    if key == "secret":
        doc.inline_secrets = True
        return text.encode("utf-8")
    if key == "secret_hex":
        doc.inline_secrets = True
        try:
            return bytes.fromhex(text)
        except ValueError:
            doc.error(line, "'secret_hex' in [[auth.key]] is not hexadecimal")
            return None
    path = Path(text)
    if not path.is_absolute():
        path = doc.path.parent / path
    try:
        data, mode = read_with_mode(path)
    except OSError as e:
        doc.error(line, f"secret_file '{path}' cannot be read ({e.strerror})")
        return None
    exposed = check_private(path, mode)
    if exposed is not None:
        doc.problems.append(exposed)
        return None
    # The whole file is the secret, less the line ending an editor or echo adds.
    return data.rstrip(b"\r\n")
