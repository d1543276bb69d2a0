"""The script bridge: Heartbeat resource scripts (status read from stdout) and LSB init scripts
(status from the exit code), found by bare name in temporary resource directories. The real
/etc/ha.d/resource.d and /etc/init.d are never used: HACORE_RESOURCE_DIRS points elsewhere."""

from __future__ import annotations

import asyncio
import stat
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hacore.agent import (
    Agent,
    AgentError,
    ConfigurationError,
    Instance,
    NotInstalledError,
    OCFResult,
)
from hacore.bridge import (
    ScriptAgent,
    ScriptStyle,
    find_script,
    heartbeat_status,
    lsb_agent,
    lsb_status,
)
from hacore.config import load
from hacore.lab import Host
from hacore.lab.nsloop import NamespaceLoop
from hacore.plugins import AgentNotFound, AgentRegistry
from hacore.resources.binding import bind
from hacore.testing.conformance import check_agent
from tests.bridge_lab import lab_prefix, node_with_loop

if TYPE_CHECKING:
    from tests.conftest import LabFactory

# Heartbeat's own wrapper (Debian package heartbeat): `IPaddr2 ip/cidr/nic start|stop|status`.
HEARTBEAT_IPADDR2 = Path("/etc/ha.d/resource.d/IPaddr2")

# A Heartbeat resource script: `svc STATE LABEL start|stop|status`. It keeps its state in the
# file STATE, logs every call to STATE.log, and fails its stop while STATE.failstop exists.
# Its status exits 3 even when running: Heartbeat ignores the code and reads the words.
HEARTBEAT_SCRIPT = """\
#!/bin/sh
state="$1"; label="$2"; action="$3"
echo "$*" >> "$state.log"
case "$action" in
start) touch "$state";;
stop) [ -e "$state.failstop" ] && exit 1; rm -f "$state";;
status) if [ -e "$state" ]; then echo "$label running"; else echo "$label stopped"; fi; exit 3;;
*) echo "usage: $0 state label {start|stop|status}"; exit 1;;
esac
exit 0
"""

# An LSB init script: `daemon start|stop|status`, no arguments, so its state file and call log
# sit next to it. Its status prints misleading words: only the exit code may count.
LSB_SCRIPT = """\
#!/bin/sh
state="$0.state"
echo "$*" >> "$0.log"
case "$1" in
start) [ -e "$0.misconfigured" ] && { echo "no config file" >&2; exit 6; }; touch "$state";;
stop) rm -f "$state";;
status) [ -e "$0.dead" ] && { echo "running (well, not really)"; exit 1; }
    if [ -e "$state" ]; then echo "not running, honest"; exit 0; fi
    echo "running"; exit 3;;
*) echo "Usage: $0 {start|stop|status}"; exit 2;;
esac
exit 0
"""


def write_script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def resource_d(tmp_path: Path) -> Path:
    return tmp_path / "ha.d" / "resource.d"


@pytest.fixture
def init_d(tmp_path: Path) -> Path:
    return tmp_path / "init.d"


@pytest.fixture(autouse=True)
def resource_dirs(resource_d: Path, init_d: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As the daemon sets it for a node: its own resource.d, then an init.d (a temporary one)."""
    monkeypatch.setenv("HACORE_RESOURCE_DIRS", f"{resource_d}:{init_d}")
    monkeypatch.setenv("HACORE_RSCTMP", str(resource_d.parent / "rsctmp"))


def make(cls: type[Agent], *args: str) -> Agent:
    return cls(Instance("r1", cls.resolve(cls.parse_args(args))))


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


# -- Heartbeat's status rule -----------------------------------------------------------------

# ResourceManager's we_own_resource, verbatim: what the rule must agree with.
WE_OWN_RESOURCE = """\
case "$1" in
  *[Nn][Oo][Tt]\\ *[Rr]unning*) echo stopped;;
  *[Rr]unning*|*OK*) echo running;;
  *) echo stopped;;
esac
"""


@pytest.mark.parametrize(
    "output",
    [
        "apache2 is running\n",
        "apache2 is not running\n",
        "Not Running",
        "NOT yet, but soon Running",
        "notrunning",
        "not\nrunning",
        "RUNNING",
        "Status: OK\n",
        "ok",
        "stopped",
        "",
        "line one\nservice running\n",
        "is not\n running at all",
    ],
)
def test_the_heartbeat_rule_agrees_with_resourcemanager(output: str) -> None:
    shell = subprocess.run(
        ["sh", "-c", WE_OWN_RESOURCE, "sh", output],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )

    verdict = {"running": OCFResult.SUCCESS, "stopped": OCFResult.NOT_RUNNING}[shell.stdout.strip()]
    assert heartbeat_status(output) is verdict


def test_the_lsb_rule_reads_the_status_exit_code() -> None:
    assert lsb_status(0) is OCFResult.SUCCESS
    assert lsb_status(3) is OCFResult.NOT_RUNNING
    assert [lsb_status(code) for code in (1, 2, 4, 150)] == [None] * 4


# -- finding scripts -------------------------------------------------------------------------


def test_a_bare_name_is_looked_up_in_the_resource_dirs_in_order(
    resource_d: Path, init_d: Path
) -> None:
    write_script(resource_d / "svc", HEARTBEAT_SCRIPT)
    write_script(init_d / "svc", LSB_SCRIPT)
    write_script(init_d / "daemon", LSB_SCRIPT)

    assert find_script("svc") == resource_d / "svc"
    assert find_script("daemon") == init_d / "daemon"
    assert find_script("absent") is None
    assert find_script("../init.d/daemon") is None  # a name, never a path


def test_a_file_that_is_not_executable_is_not_a_script(resource_d: Path, init_d: Path) -> None:
    (resource_d / "svc").parent.mkdir(parents=True)
    (resource_d / "svc").write_text(HEARTBEAT_SCRIPT)
    write_script(init_d / "svc", LSB_SCRIPT)

    assert find_script("svc") == init_d / "svc"


def test_the_registry_serves_a_bare_name_from_the_script_bridge(
    resource_d: Path, init_d: Path
) -> None:
    write_script(resource_d / "svc", HEARTBEAT_SCRIPT)
    write_script(init_d / "daemon", LSB_SCRIPT)
    registry = AgentRegistry()

    svc = registry.load("svc")
    daemon = registry.load("daemon")

    assert issubclass(svc, ScriptAgent)
    assert (svc.script, svc.style, svc.metadata.name) == (
        resource_d / "svc",
        ScriptStyle.HEARTBEAT,
        "svc",
    )
    assert issubclass(daemon, ScriptAgent)
    assert (daemon.script, daemon.style) == (init_d / "daemon", ScriptStyle.LSB)
    assert registry.load("svc") is svc


def test_a_name_that_is_neither_agent_nor_script_is_still_unknown() -> None:
    with pytest.raises(AgentNotFound, match="unknown resource agent 'absent'; installed agents"):
        AgentRegistry().load("absent")


def test_an_installed_agent_wins_over_a_script_of_the_same_name(resource_d: Path) -> None:
    write_script(resource_d / "Dummy", HEARTBEAT_SCRIPT)

    assert not issubclass(AgentRegistry().load("Dummy"), ScriptAgent)


# -- arguments -------------------------------------------------------------------------------


def test_positional_arguments_become_numbered_parameters(resource_d: Path) -> None:
    write_script(resource_d / "svc", HEARTBEAT_SCRIPT)
    svc = AgentRegistry().load("svc")

    assert svc.parse_args(["/data", "web"]) == {"arg1": "/data", "arg2": "web"}
    assert svc.resolve({"arg2": "web", "arg1": "/data"}) == {"arg1": "/data", "arg2": "web"}
    with pytest.raises(ConfigurationError, match="arg1 is missing"):
        svc.resolve({"arg2": "web"})
    with pytest.raises(ConfigurationError, match="unknown parameter 'port'"):
        svc.resolve({"port": "80"})


# -- a Heartbeat resource script -------------------------------------------------------------


def test_a_heartbeat_script_gets_its_arguments_before_the_action(
    resource_d: Path, tmp_path: Path
) -> None:
    write_script(resource_d / "svc", HEARTBEAT_SCRIPT)
    state = tmp_path / "svc.state"
    svc = make(AgentRegistry().load("svc"), str(state), "web")

    asyncio.run(svc.start())

    assert state.exists()
    assert calls(Path(f"{state}.log")) == [f"{state} web status", f"{state} web start"]


def test_a_heartbeat_script_passes_the_conformance_suite(resource_d: Path, tmp_path: Path) -> None:
    write_script(resource_d / "svc", HEARTBEAT_SCRIPT)
    svc = AgentRegistry().load("svc")
    params = svc.parse_args([str(tmp_path / "svc.state"), "web"])

    report = asyncio.run(check_agent(svc, params, "svc"))

    assert report.passed, report.render()


def test_start_of_a_running_heartbeat_script_is_skipped(resource_d: Path, tmp_path: Path) -> None:
    write_script(resource_d / "svc", HEARTBEAT_SCRIPT)
    state = tmp_path / "svc.state"
    state.touch()
    svc = make(lsb_agent(resource_d / "svc"), str(state), "web")

    asyncio.run(svc.start())

    assert calls(Path(f"{state}.log")) == [f"{state} web status"]


def test_a_failed_stop_is_forgiven_when_status_says_stopped(
    resource_d: Path, tmp_path: Path
) -> None:
    write_script(resource_d / "svc", HEARTBEAT_SCRIPT)
    state = tmp_path / "svc.state"
    Path(f"{state}.failstop").touch()
    svc = make(lsb_agent(resource_d / "svc"), str(state), "web")

    asyncio.run(svc.stop())  # stopped already: the script's failure does not matter

    state.touch()
    with pytest.raises(AgentError, match=r"svc.state web stop \(instance r1\): exit 1") as caught:
        asyncio.run(svc.stop())
    # A Heartbeat script's exit codes carry no OCF meaning: any failure is generic.
    assert caught.value.result is OCFResult.ERR_GENERIC


# -- an LSB init script ----------------------------------------------------------------------


def test_an_lsb_script_is_judged_by_its_exit_codes(init_d: Path) -> None:
    script = write_script(init_d / "daemon", LSB_SCRIPT)
    daemon = make(lsb_agent(script))

    assert asyncio.run(daemon.monitor()) is OCFResult.NOT_RUNNING  # printed "running", exit 3
    asyncio.run(daemon.start())
    assert asyncio.run(daemon.monitor()) is OCFResult.SUCCESS  # printed "not running", exit 0
    Path(f"{script}.dead").touch()
    with pytest.raises(AgentError, match=r"exit 1 \(program is dead and a pid file exists\)"):
        asyncio.run(daemon.monitor())


def test_an_lsb_start_error_code_has_its_ocf_meaning(init_d: Path) -> None:
    script = write_script(init_d / "daemon", LSB_SCRIPT)
    Path(f"{script}.misconfigured").touch()
    daemon = make(lsb_agent(script))

    with pytest.raises(ConfigurationError, match=r"start .*: exit 6: no config file"):
        asyncio.run(daemon.start())


def test_an_lsb_script_passes_the_conformance_suite(init_d: Path) -> None:
    script = write_script(init_d / "daemon", LSB_SCRIPT)

    report = asyncio.run(check_agent(lsb_agent(script), {}, "daemon"))

    assert report.passed, report.render()
    assert calls(Path(f"{script}.log"))[:2] == ["status", "status"]  # no argument before it


def test_validate_finds_a_script_that_has_gone(init_d: Path) -> None:
    script = write_script(init_d / "daemon", LSB_SCRIPT)
    daemon = make(lsb_agent(script))
    script.unlink()

    with pytest.raises(NotInstalledError, match="is not executable"):
        asyncio.run(daemon.validate())
    with pytest.raises(NotInstalledError, match="cannot run"):
        asyncio.run(daemon.start())


# -- from haresources ------------------------------------------------------------------------


def test_a_script_in_haresources_is_bound_and_runs(
    tmp_path: Path, resource_d: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = resource_d.parent
    write_script(resource_d / "svc", HEARTBEAT_SCRIPT)
    state = tmp_path / "svc.state"
    (config_dir / "ha.cf").write_text("node pc1\nnode pc2\nbcast eth0\n")
    authkeys = config_dir / "authkeys"
    authkeys.write_text("auth 1\n1 sha1 SuperMDP\n")
    authkeys.chmod(0o600)
    (config_dir / "haresources").write_text(
        textwrap.dedent(f"""\
            pc1 svc::{state}::web
        """)
    )

    config = load(config_dir, node_name="pc1").config
    groups, problems = bind(config)

    assert problems == ()
    (resource,) = groups[0].resources
    assert resource.instance.params == {"arg1": str(state), "arg2": "web"}
    agent = resource.agent()
    asyncio.run(agent.start())
    assert asyncio.run(agent.monitor()) is OCFResult.SUCCESS
    asyncio.run(agent.stop())
    assert asyncio.run(agent.monitor()) is OCFResult.NOT_RUNNING
    assert calls(Path(f"{state}.log"))[1] == f"{state} web start"


# -- Heartbeat's real wrapper script, in a namespace -----------------------------------------


@pytest.fixture
def node(make_lab: LabFactory) -> Iterator[tuple[Host, NamespaceLoop]]:
    """A lab node (eth0 198.51.100.1/24 on a bridge) and an event loop inside its namespace."""
    with node_with_loop(make_lab(prefix=lab_prefix())) as host_and_loop:
        yield host_and_loop


@pytest.mark.skipif(
    not HEARTBEAT_IPADDR2.exists(), reason="needs the Debian package heartbeat (its resource.d)"
)
@pytest.mark.netns
def test_heartbeats_own_ipaddr2_wrapper_passes_the_conformance_suite(
    node: tuple[Host, NamespaceLoop],
) -> None:
    # What an unchanged haresources line `pc1 IPaddr2::198.51.100.100/24/eth0` ran under
    # Heartbeat: its wrapper, which prints "Running OK" for a served address.
    host, loop = node
    wrapper = lsb_agent(HEARTBEAT_IPADDR2)
    params = wrapper.parse_args(["198.51.100.100/24/eth0"])

    report = loop.run(check_agent(wrapper, params, "vip"))

    assert wrapper.style is ScriptStyle.HEARTBEAT
    assert report.passed, report.render()
    assert "198.51.100.100" not in host.addresses()
