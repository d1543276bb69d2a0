"""The guides cannot go stale: docs/cli.md is what scripts/gen_cli_reference.py makes of the
commands, docs/configuration.md lists exactly the ha.cf directives and cluster.toml keys the
readers accept, docs/troubleshooting.md quotes log lines hacore really prints, and every
relative link in docs/ and README.md leads somewhere. (The hook reference, docs/hooks.md, is
checked against hacore.hookspecs in tests/test_plugins.py.)
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from hacore.config import hacf_directives, toml_schema

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_cli_reference", ROOT / "scripts" / "gen_cli_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- docs/cli.md -------------------------------------------------------------------------------


def test_cli_reference_is_what_the_generator_makes_of_the_commands() -> None:
    expected = _generator().render()
    assert (DOCS / "cli.md").read_text() == expected, (
        "docs/cli.md is stale: run .venv/bin/python scripts/gen_cli_reference.py"
    )


def test_cli_reference_has_a_section_for_every_command() -> None:
    import click

    from hacore.cli import main

    def paths(command: click.Command, path: tuple[str, ...]) -> list[str]:
        found = [" ".join(path)]
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                if not sub.hidden:
                    found += paths(sub, (*path, name))
        return found

    headings = re.findall(r"^### `(hactl.*)`$", (DOCS / "cli.md").read_text(), re.M)
    assert sorted(headings) == sorted(paths(main, ("hactl",)))


# -- docs/configuration.md ---------------------------------------------------------------------


def _section(text: str, heading: str) -> str:
    """The text under a '## heading' up to the next '## ' heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match is not None, f"docs/configuration.md has no '## {heading}' section"
    return match[1]


def _first_cells(text: str) -> list[str]:
    """The names in the first column of every Markdown table row: | `name` | ..."""
    return re.findall(r"^\| `([^`]+)` \|", text, re.M)


def _hacf_directives() -> set[str]:
    return set(hacf_directives.KNOWN)


def test_configuration_lists_every_ha_cf_directive_and_no_other() -> None:
    documented = _first_cells(_section((DOCS / "configuration.md").read_text(), "ha.cf"))
    duplicates = sorted({d for d in documented if documented.count(d) > 1})
    assert not duplicates, f"listed twice: {duplicates}"
    known = _hacf_directives()
    missing, unknown = sorted(known - set(documented)), sorted(set(documented) - known)
    assert not missing, f"docs/configuration.md lacks the ha.cf directives {missing}"
    assert not unknown, f"docs/configuration.md lists {unknown}, which the ha.cf reader refuses"


def test_configuration_says_which_ha_cf_directives_are_ignored() -> None:
    text = _section((DOCS / "configuration.md").read_text(), "ha.cf")
    ignored = text[text.index("### Directives accepted and ignored") :]
    assert set(_first_cells(ignored)) == set(hacf_directives.IGNORED)


# Each cluster.toml table and the tuple of keys the reader accepts in it (toml_schema.py).
TOML_TABLES = {
    "cluster": toml_schema.CLUSTER,
    "timers": toml_schema.TIMERS,
    "link": toml_schema.LINK,
    "auth": toml_schema.AUTH,
    "auth.key": toml_schema.KEY,
    "ping": toml_schema.PING,
    "ping.group": toml_schema.PING_GROUP,
    "logging": toml_schema.LOGGING,
    "metrics": toml_schema.METRICS,
    "control": toml_schema.CONTROL,
    "group": toml_schema.GROUP,
    "group.resource": toml_schema.RESOURCE,
}


def test_the_toml_table_map_above_covers_every_key_list_in_toml_schema() -> None:
    # A new table means a new tuple in toml_schema.py: it must be added above (and documented).
    tuples = {
        name
        for name, value in vars(toml_schema).items()
        if re.fullmatch(r"[A-Z][A-Z_]*", name)
        and isinstance(value, tuple)
        and value
        and all(isinstance(v, str) for v in value)
    }
    mapped = {name for name, value in vars(toml_schema).items() if value in TOML_TABLES.values()}
    assert tuples - {"TOP", "SECRETS", "MCAST_KINDS"} == mapped, "map these in TOML_TABLES"
    assert set(toml_schema.TOP) == {t for t in TOML_TABLES if "." not in t}


@pytest.mark.parametrize("table", sorted(TOML_TABLES))
def test_configuration_lists_every_key_of_each_toml_table_and_no_other(table: str) -> None:
    text = _section((DOCS / "configuration.md").read_text(), "cluster.toml")
    match = re.search(rf"^### `\[\[?{re.escape(table)}\]\]?`\n(.*?)(?=^### |\Z)", text, re.M | re.S)
    assert match is not None, f"docs/configuration.md has no section for [{table}]"
    assert sorted(_first_cells(match[1])) == sorted(TOML_TABLES[table])


def test_configuration_has_no_toml_section_for_a_table_that_does_not_exist() -> None:
    text = _section((DOCS / "configuration.md").read_text(), "cluster.toml")
    sections = re.findall(r"^### `\[\[?([a-z.]+)\]\]?`$", text, re.M)
    assert sorted(sections) == sorted(TOML_TABLES)


# -- docs/troubleshooting.md -------------------------------------------------------------------


def _log_formats() -> list[re.Pattern[str]]:
    """Every log call's message in hacore/ and plugins/ as a pattern (%s and friends match
    anything), so that a quoted log line can be traced to the code that prints it."""
    call = re.compile(
        r"\b(?:log|logger|_log|LOG)\.(?:debug|info|warning|error|critical|exception)\(\s*"
        r"((?:f?\"(?:[^\"\\]|\\.)*\"\s*)+)",
        re.S,
    )
    patterns = []
    sources = [*ROOT.glob("hacore/**/*.py"), *ROOT.glob("plugins/*/hacore_*/**/*.py")]
    for path in sources:
        for match in call.finditer(path.read_text()):
            pieces = re.findall(r"f?\"((?:[^\"\\]|\\.)*)\"", match[1])
            message = "".join(pieces)
            parts = re.split(r"%[-#0-9.]*[sdrfgi]|\{[^}]*\}", message)
            if len(re.findall(r"[A-Za-z]", "".join(parts))) < 2:
                continue  # "%s: %s": made elsewhere; as a pattern it would match any line
            patterns.append(re.compile(".*?".join(re.escape(p) for p in parts)))
    return patterns


def test_every_log_line_quoted_in_troubleshooting_is_printed_by_hacore() -> None:
    quoted = re.findall(r"^> `(.+)`$", (DOCS / "troubleshooting.md").read_text(), re.M)
    assert len(quoted) >= 10
    formats = _log_formats()
    unknown = [line for line in quoted if not any(f.fullmatch(line) for f in formats)]
    assert not unknown, f"docs/troubleshooting.md quotes lines hacore does not print: {unknown}"


# -- links -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "page", [*sorted(p.relative_to(ROOT) for p in DOCS.glob("*.md")), Path("README.md")], ids=str
)
def test_every_relative_link_leads_to_a_file(page: Path) -> None:
    text = (ROOT / page).read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    broken = [
        t
        for t in targets
        if "://" not in t
        and not t.startswith("mailto:")
        and not (ROOT / page).parent.joinpath(t).exists()
    ]
    assert not broken, f"{page}: links to missing files: {broken}"


def test_the_docs_index_links_every_guide() -> None:
    index = (DOCS / "index.md").read_text()
    linked = set(re.findall(r"\]\(([^)#]+\.md)", index))
    guides = {p.name for p in DOCS.glob("*.md")} - {"index.md"}
    assert guides <= linked, f"docs/index.md does not link {sorted(guides - linked)}"
