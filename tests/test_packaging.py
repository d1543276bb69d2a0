"""What a user gets from ``pip install``: wheels of hacore, its four plugins and the example
third-party agent (examples/hacore-agent-motd), built from copies of the sources and installed
into a clean virtual environment (``python -m venv``, not the development one). There, hactl
finds every agent and plugin, checks a configuration, and the example agent passes the
conformance kit under the clean environment's own pytest.

Our packages come only from the wheels built here; third-party dependencies come from pip's
index through its cache (~/.cache/pip), so repeated runs download nothing. The wheels are built
by one build environment without isolation (setuptools installed once), not one isolated
environment per package: that is what keeps this test near 40 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml"))
EXAMPLE = ROOT / "examples" / "hacore-agent-motd"
STEP_TIMEOUT = 300.0  # one pip run on a loaded machine with a cold cache; never reached warm
# What setuptools needs to build our pyproject.toml files (SPDX `license = "..."`).
BUILD_REQUIRES = "setuptools>=77"
NOT_SOURCES = shutil.ignore_patterns("*.egg-info", "build", "dist", "__pycache__", ".*cache")


def _run(argv: list[str | Path], cwd: Path, what: str) -> str:
    # A clean environment means clean of ours too: no PYTHONPATH into this checkout.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("HACORE")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    done = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _entry_points(group: str) -> set[str]:
    """The names every distribution built here declares in an entry-point group."""
    names: set[str] = set()
    for project in [ROOT, *PLUGINS, EXAMPLE]:
        data = tomllib.loads((project / "pyproject.toml").read_text())
        names |= set(data["project"].get("entry-points", {}).get(group, {}))
    return names


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with every distribution installed from its wheel."""
    base = tmp_path_factory.mktemp("packaging")
    # Sources are copied first: building in place would leave build/ and egg-info in the tree.
    sources = base / "src"
    core = sources / "hacore"
    core.mkdir(parents=True)
    shutil.copytree(ROOT / "hacore", core / "hacore", ignore=NOT_SOURCES)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, core / name)
    projects = [core]
    for project in [*PLUGINS, EXAMPLE]:
        projects.append(sources / project.name)
        shutil.copytree(project, projects[-1], ignore=NOT_SOURCES)

    pip: list[str | Path] = [sys.executable, "-m", "pip"]
    build_env = base / "build-env"
    _run([sys.executable, "-m", "venv", "--without-pip", build_env], base, "venv (build)")
    build_python = build_env / "bin" / "python"
    _run([*pip, "--python", build_python, "install", "-q", BUILD_REQUIRES], base, "setuptools")
    wheels = base / "wheels"
    wheel: list[str | Path] = [*pip, "--python", build_python, "wheel", "-q", "--no-deps"]
    _run([*wheel, "--no-build-isolation", "-w", wheels, *projects], base, "pip wheel")
    built = sorted(wheels.glob("*.whl"))
    assert len(built) == len(projects), [w.name for w in built]

    venv = base / "venv"
    _run([sys.executable, "-m", "venv", venv], base, "venv")
    # The wheel files themselves, so pip cannot take hacore or a plugin from anywhere else.
    _run([venv / "bin" / "pip", "install", "-q", *built, "pytest"], base, "pip install")
    return venv


def test_the_installed_packages_are_the_wheels_not_this_checkout(clean_venv: Path) -> None:
    modules = ["hacore", "hacore_ipaddr", "hacore_apache", "hacore_ping", "hacore_notify"]
    script = f"import {', '.join([*modules, 'hacore_motd'])}, sys\n" + "\n".join(
        f"print({m}.__file__)" for m in [*modules, "hacore_motd"]
    )
    files = _run([clean_venv / "bin" / "python", "-c", script], clean_venv, "import").split()
    site = str(clean_venv / "lib")
    assert all(f.startswith(site) for f in files), files


def test_hactl_plugins_lists_every_agent_and_plugin_of_the_wheels(clean_venv: Path) -> None:
    out = _run([clean_venv / "bin" / "hactl", "plugins", "--json"], clean_venv, "hactl plugins")
    found = json.loads(out)
    assert set(found["agents"]) == _entry_points("hacore.agents")
    assert set(found["plugins"]) == _entry_points("hacore.plugins")
    assert found["agents"]["Motd"] == "hacore-agent-motd 0.1.0"


def test_hactl_config_check_accepts_a_configuration_using_the_installed_agents(
    clean_venv: Path, tmp_path: Path
) -> None:
    ha_d = tmp_path / "ha.d"
    ha_d.mkdir()
    (ha_d / "ha.cf").write_text(
        "logfacility none\nnode pc1\nnode pc2\nkeepalive 1\ndeadtime 10\nbcast eth0\n"
        "ping 198.51.100.254\nauto_failback on\n"
    )
    (ha_d / "authkeys").write_text("auth 1\n1 sha256 packaging-test\n")
    (ha_d / "authkeys").chmod(0o600)
    (ha_d / "haresources").write_text(
        f"pc1 IPaddr::198.51.100.55/24/eth0 apache Motd::{tmp_path}/motd\n"
    )
    (ha_d / "nodeinfo").write_text("pc1\n")
    hactl = clean_venv / "bin" / "hactl"
    out = _run([hactl, "config", "check", "-c", ha_d], tmp_path, "hactl config check")
    assert out.strip() == "configuration OK"

    # And it refuses an agent that no wheel provides, naming it.
    (ha_d / "haresources").write_text("pc1 IPaddr::198.51.100.55/24/eth0 NoSuchAgent\n")
    done = subprocess.run(
        [hactl, "config", "check", "-c", ha_d],
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    assert done.returncode == 2
    assert "NoSuchAgent" in done.stderr


def test_the_example_agent_passes_the_conformance_kit_in_the_clean_venv(
    clean_venv: Path, tmp_path: Path
) -> None:
    # Only its tests are copied: the agent itself must come from the installed wheel.
    tests = tmp_path / "tests"
    shutil.copytree(EXAMPLE / "tests", tests, ignore=NOT_SOURCES)
    out = _run(
        [clean_venv / "bin" / "python", "-m", "pytest", "-p", "no:cacheprovider", "-v", tests],
        tmp_path,
        "the example's tests",
    )
    assert "test_motd_passes_the_conformance_kit PASSED" in out, out
    assert " failed" not in out
