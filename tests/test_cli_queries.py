"""``hactl``'s read commands as scripts use them: pcs-style exit codes (0 yes, 2 no, 1 error,
3 no daemon), ``--json`` output that matches the schemas shipped in ``hacore/schemas`` (and
documented in docs/json.md), and shell completion.

The answers come from real daemons in namespaces: pc1 runs, pc2 is started later, so the same
cluster answers "held nowhere" and "dead" first, then "held" and "active".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from hacore.cli import main
from hacore.lab.netns import Lab
from hacore.lab.nodes import HacoreNode, write_toml_cluster

KEEPALIVE_MS = 200
DEADTIME_MS = 1500
INITDEAD_MS = 4000  # how long pc1, started alone, waits before it declares pc2 dead
START_TIMEOUT = 60.0  # initdead, the VIP added, the Dummy's failed start: on a loaded machine

# Each schema in hacore/schemas and the command whose --json it describes.
SCHEMA_COMMANDS = {
    "status": "status",
    "resource-list": "resource list",
    "resource-status": "resource status",
    "resource-locate": "resource locate GROUP",
    "node-list": "node list",
    "node-status": "node status NAME",
    "plugins": "plugins",
    "config-check": "config check",
}


def schema(name: str) -> dict[str, Any]:
    text = files("hacore").joinpath(f"schemas/{name}.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def validate(name: str, text: str) -> Any:
    document = json.loads(text)
    jsonschema.validate(document, schema(name), format_checker=jsonschema.FormatChecker())
    return document


def test_every_schema_is_a_valid_json_schema_titled_with_its_command() -> None:
    shipped = sorted(p.name for p in Path(str(files("hacore").joinpath("schemas"))).iterdir())
    assert shipped == sorted(f"{name}.json" for name in SCHEMA_COMMANDS)
    for name, command in SCHEMA_COMMANDS.items():
        document = schema(name)
        jsonschema.Draft202012Validator.check_schema(document)
        assert document["title"] == f"hactl {command} --json"


# -- without a daemon --------------------------------------------------------------------------


def _reference(tmp_path: Path) -> Path:
    from tests.test_cli import _reference as reference

    return reference(tmp_path)


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["status", "--json"],
        ["resource", "list", "--json"],
        ["resource", "status", "--json"],
        ["resource", "locate", "x"],
        ["node", "list", "--json"],
        ["node", "status", "pc1"],
    ],
    ids=" ".join,
)
def test_a_query_without_a_daemon_says_so_on_stderr_and_exits_3(
    tmp_path: Path, argv: list[str]
) -> None:
    result = CliRunner().invoke(main, [*argv, "-c", str(_reference(tmp_path))])
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    assert "daemon not running" in result.stderr


def test_config_check_json_of_a_good_configuration_is_ok_and_exits_0(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["config", "check", "--json", "-c", str(_reference(tmp_path))]
    )
    assert result.exit_code == 0, result.output
    document = validate("config-check", result.stdout)
    assert document["ok"] is True
    assert all(p["severity"] == "warning" for p in document["problems"])


def test_config_check_json_of_a_broken_configuration_lists_the_error_and_exits_2(
    tmp_path: Path,
) -> None:
    d = _reference(tmp_path)
    (d / "ha.cf").write_text((d / "ha.cf").read_text().replace("keepalive 1", "keepaliv 1"))
    result = CliRunner().invoke(main, ["config", "check", "--json", "-c", str(d)])
    assert result.exit_code == 2, result.output
    document = validate("config-check", result.stdout)
    assert document["ok"] is False
    (error,) = [p for p in document["problems"] if p["severity"] == "error"]
    assert error["file"] == str(d / "ha.cf")
    assert error["line"] == 5
    assert error["message"] == "unknown directive 'keepaliv' (did you mean 'keepalive'?)"


def test_plugins_json_matches_its_schema() -> None:
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    assert "Dummy" in validate("plugins", result.stdout)["agents"]


# -- shell completion --------------------------------------------------------------------------


def _hactl_script() -> str:
    return os.path.join(os.path.dirname(sys.executable), "hactl")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_that_calls_back_into_hactl(shell: str) -> None:
    result = CliRunner().invoke(main, ["completion", shell])
    assert result.exit_code == 0, result.output
    assert "_HACTL_COMPLETE" in result.stdout
    assert f"{shell}_complete" in result.stdout


def test_clicks_own_completion_variable_produces_the_same_bash_script() -> None:
    done = subprocess.run(
        [_hactl_script()],
        env={**os.environ, "_HACTL_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == CliRunner().invoke(main, ["completion", "bash"]).stdout.strip()


@pytest.mark.parametrize(
    ("words", "expected"),
    [("hactl res", "resource"), ("hactl resource lo", "locate"), ("hactl node st", "status")],
)
def test_bash_completion_completes_a_command_prefix(words: str, expected: str) -> None:
    done = subprocess.run(
        [_hactl_script()],
        env={
            **os.environ,
            "_HACTL_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - 1),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"plain,{expected}"]


# -- against real daemons ----------------------------------------------------------------------


def _answers(node: HacoreNode, *argv: str) -> tuple[int, str, str]:
    done = node.hactl(*argv)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, done.stderr


VIP_KEY = "IPaddr::198.51.100.55/24/eth0"
VIP_INSTANCE = "IPaddr_198.51.100.55_24_eth0"


@pytest.mark.netns
def test_queries_answer_with_pcs_exit_codes_and_json_that_matches_the_schemas(
    lab: Lab, tmp_path: Path
) -> None:
    # pc1 prefers the VIP; pc2 prefers a Dummy that fails to start on any node, so it ends up
    # held nowhere. pc1 starts alone and declares pc2 dead after initdead.
    dirs = write_toml_cluster(
        tmp_path,
        ["pc1", "pc2"],
        lambda _node: [
            {"node": "pc1", "resources": [VIP_KEY]},
            {"node": "pc2", "resource": [{"agent": "Dummy", "params": {"fail_start": "true"}}]},
        ],
        keepalive=KEEPALIVE_MS,
        deadtime=DEADTIME_MS,
        initdead=INITDEAD_MS,
    )
    pc1 = HacoreNode(lab.add_host("pc1"), dirs["pc1"])
    pc2 = HacoreNode(lab.add_host("pc2"), dirs["pc2"])
    try:
        pc1.start()
        pc1.wait_status(
            lambda s: (
                {g["key"]: (g["holders"], g["failed_here"]) for g in s["groups"]}
                == {VIP_KEY: (["pc1"], False), "Dummy": ([], True)}
            ),
            START_TIMEOUT,
            "pc1 holds the VIP and the Dummy failed",
        )

        # Every read command's --json matches its schema.
        for name, argv in {
            "status": ["status"],
            "resource-list": ["resource", "list"],
            "resource-status": ["resource", "status"],
            "resource-locate": ["resource", "locate", VIP_KEY],
            "node-list": ["node", "list"],
            "node-status": ["node", "status", "pc1"],
        }.items():
            code, out, err = _answers(pc1, *argv, "--json")
            assert code == 0, f"{argv}: {code} {err}"
            validate(name, out)

        # Held: 0 and the holder (by key, instance or agent name); held nowhere: 2; unknown: 1.
        for name in (VIP_KEY, VIP_INSTANCE, "IPaddr"):
            assert _answers(pc1, "resource", "locate", name)[:2] == (0, "pc1\n")
        code, out, err = _answers(pc1, "resource", "locate", "Dummy")
        assert (code, out) == (2, "")
        assert "Dummy is held nowhere" in err
        located = pc1.hactl("resource", "locate", "Dummy", "--json")
        assert located.returncode == 2
        assert validate("resource-locate", located.stdout) == {"group": "Dummy", "holders": []}
        code, out, err = _answers(pc1, "resource", "locate", "no-such-group")
        assert (code, out) == (1, "")
        assert "no group 'no-such-group'" in err

        # The local node is active: 0; the peer that never started is dead: 2; a stranger: 1.
        assert _answers(pc1, "node", "status", "pc1")[:2] == (0, "active\n")
        assert _answers(pc1, "node", "status", "pc2")[:2] == (2, "dead\n")
        code, out, err = _answers(pc1, "node", "status", "pc3")
        assert (code, out) == (1, "")
        assert "no node 'pc3'" in err

        # pc2 comes: now it is active, and the answer turns to yes.
        pc2.start()
        pc1.wait_node_state("pc2", "active", START_TIMEOUT)
        assert _answers(pc1, "node", "status", "pc2")[:2] == (0, "active\n")
        status = validate("status", pc1.hactl("status", "--json").stdout)
        assert {n["name"]: n["state"] for n in status["nodes"]} == {"pc2": "active"}
        nodes = validate("node-list", pc1.hactl("node", "list", "--json").stdout)
        assert [(n["name"], n["state"], n["local"]) for n in nodes] == [
            ("pc1", "active", True),
            ("pc2", "active", False),
        ]
    finally:
        for node in (pc2, pc1):
            if node.running():
                node.stop()

    # The daemon is gone: the status command says so itself, with the LSB code.
    code, out, err = _answers(pc1, "status")
    assert (code, out) == (3, "")
    assert "daemon not running" in err
