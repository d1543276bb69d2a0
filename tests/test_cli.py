"""``hactl`` as a person uses it: exit statuses, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hacore.cli import main
from hacore.config import load
from tests.test_config_corpus import corpus_cases

REFERENCE_HA_CF = """\
logfile {dir}/hacore.log
logfacility none
node pc1
node pc2
keepalive 1
deadtime 10
bcast eth0
ping 198.51.100.254
auto_failback yes
"""


def _reference(tmp_path: Path) -> Path:
    d = tmp_path / "ha.d"
    d.mkdir()
    (d / "ha.cf").write_text(REFERENCE_HA_CF.format(dir=d))
    (d / "authkeys").write_text("auth 1\n1 sha1 SuperMDP\n")
    (d / "authkeys").chmod(0o600)
    (d / "haresources").write_text("pc1 IPaddr::198.51.100.55/24/eth0\n")
    (d / "nodeinfo").write_text("pc1\n")
    return d


def _hactl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hacore", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(("name", "case"), corpus_cases(), ids=[n for n, _ in corpus_cases()])
def test_config_check_prints_the_corpus_error_as_one_line_and_exits_2(
    tmp_path: Path, name: str, case: Path
) -> None:
    from tests.test_config_corpus import prepare_case

    source, expected = prepare_case(case, tmp_path)
    result = CliRunner().invoke(main, ["config", "check", "--config-dir", str(source)])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if ": warning: " not in line]
    assert errors == [expected]


def test_run_with_a_broken_configuration_exits_2_with_a_line_and_no_traceback(
    tmp_path: Path,
) -> None:
    d = _reference(tmp_path)
    (d / "ha.cf").write_text((d / "ha.cf").read_text().replace("keepalive 1", "keepaliv 1"))
    done = _hactl("run", "--config-dir", str(d))
    assert done.returncode == 2
    assert f"{d}/ha.cf:5: unknown directive 'keepaliv' (did you mean 'keepalive'?)" in done.stderr
    assert "Traceback" not in done.stderr


def test_run_refuses_an_authkeys_file_readable_by_others(tmp_path: Path) -> None:
    d = _reference(tmp_path)
    (d / "authkeys").chmod(0o644)
    done = _hactl("run", "--config-dir", str(d))
    assert done.returncode == 2
    assert "chmod 600" in done.stderr
    assert "Traceback" not in done.stderr


def test_config_check_accepts_the_reference_scenario(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["config", "check", "-c", str(_reference(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "configuration OK" in result.stdout


def test_config_import_writes_a_toml_that_loads_to_the_same_cluster(tmp_path: Path) -> None:
    d = _reference(tmp_path)
    out = tmp_path / "cluster.toml"
    result = CliRunner().invoke(main, ["config", "import", str(d), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    original = load(d).config
    imported = load(out, node_name="pc1").config
    assert imported.nodes == original.nodes
    assert imported.groups == original.groups
    assert imported.auth == original.auth
    assert imported.timers == original.timers
    assert imported.links == original.links


def test_keygen_writes_a_private_authkeys_that_config_check_accepts(tmp_path: Path) -> None:
    d = _reference(tmp_path)
    (d / "authkeys").unlink()
    result = CliRunner().invoke(main, ["keygen", "-o", str(d / "authkeys")])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((d / "authkeys").stat().st_mode) == 0o600
    assert load(d).config.auth.signing_key.method.value == "sha256"


def test_status_without_a_daemon_says_so_and_exits_3(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["status", "-c", str(_reference(tmp_path))])
    assert result.exit_code == 3
    assert "daemon not running" in result.stderr


@pytest.mark.netns
def test_demo_runs_to_completion_and_reports_the_failover_time() -> None:
    hactl = shutil.which("hactl", path=os.path.dirname(sys.executable))
    assert hactl is not None
    done = subprocess.run([hactl, "demo"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pc2 declared pc1 dead" in done.stdout
    assert "who answered: pc1 -> pc2 -> pc1" in done.stdout
    assert re.search(r"unplanned failover \(power cut\): +\d+ ms", done.stdout), done.stdout


def test_config_check_reports_an_agent_that_is_named_but_not_installed(tmp_path: Path) -> None:
    d = _reference(tmp_path)
    (d / "haresources").write_text("pc1 IPaddr::198.51.100.55/24/eth0 NoSuchAgent::x\n")
    result = CliRunner().invoke(main, ["config", "check", "-c", str(d)])
    assert result.exit_code == 2
    (line,) = [ln for ln in result.stderr.splitlines() if ": warning: " not in ln]
    assert line.startswith(f"{d}/haresources:1: NoSuchAgent::x: ")
    assert "NoSuchAgent" in line


def test_plugins_lists_the_installed_agents() -> None:
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    agents = json.loads(result.stdout)["agents"]
    assert {"Dummy", "IPaddr", "IPaddr2"} <= set(agents)


def test_status_watch_keeps_refreshing_while_the_daemon_is_away(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["status", "-c", str(_reference(tmp_path)), "--watch", "--interval", "0.1", "--count", "2"],
    )
    assert result.exit_code == 0
    assert result.stdout.count("daemon not running") == 2
