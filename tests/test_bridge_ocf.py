"""The OCF bridge: Debian's real shell agents (resource-agents) as hacore Agents, and small
agents written by the tests where a behaviour must be provoked (an exit code, a hang)."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hacore.agent import (
    AgentError,
    ConfigurationError,
    Instance,
    NotInstalledError,
    OCFResult,
    ParamType,
)
from hacore.bridge import OCFAgent, ocf_agent, parse_metadata
from hacore.bridge import ocf as ocf_module
from hacore.bridge.process import SAFE_PATH
from hacore.lab import Host
from hacore.lab.nsloop import NamespaceLoop
from hacore.plugins import AgentNotFound, AgentRegistry
from hacore.testing.conformance import check_agent
from tests.bridge_lab import NODE_IP, lab_prefix, node_with_loop

if TYPE_CHECKING:
    from tests.conftest import LabFactory

REAL_ROOT = Path("/usr/lib/ocf")

needs_resource_agents = pytest.mark.skipif(
    not (REAL_ROOT / "resource.d/heartbeat/IPaddr2").exists(),
    reason="needs the Debian package resource-agents (apt install resource-agents)",
)


@pytest.fixture(autouse=True)
def rsctmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Agents' pid and state files go to the test's directory, not the machine's."""
    path = tmp_path / "rsctmp"
    monkeypatch.setenv("HACORE_RSCTMP", str(path))
    return path


def make(cls: type[OCFAgent], instance: str = "r1", **params: str) -> OCFAgent:
    return cls(Instance(instance, cls.resolve(params)))


# -- agents written by the tests -------------------------------------------------------------

METADATA = """\
<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="@TYPE@" version="0.9">
<version>1.0</version>
<longdesc lang="en">An agent written by hacore's tests.</longdesc>
<shortdesc lang="en">Test agent</shortdesc>
<parameters>
<parameter name="dir" unique="1" required="1">
<longdesc lang="en">Where the agent keeps its files</longdesc>
<shortdesc lang="en">Directory</shortdesc>
<content type="string"/>
</parameter>
<parameter name="count">
<longdesc lang="en">A number</longdesc>
<shortdesc lang="en">Count</shortdesc>
<content type="integer" default="5"/>
</parameter>
</parameters>
<actions>
<action name="start" timeout="30s"/>
<action name="stop" timeout="40s"/>
<action name="monitor" timeout="25s" interval="15s" depth="0"/>
<action name="monitor" timeout="50s" interval="2min" depth="10"/>
<action name="meta-data" timeout="5s"/>
<action name="validate-all" timeout="10s"/>
</actions>
</resource-agent>
"""


def write_agent(root: Path, type_: str, actions: str) -> Path:
    """An OCF agent ``ocf:hctest:<type_>`` under ``root``: the meta-data above, then the shell
    ``case`` branches in ``actions`` (``$1`` is the action; unknown actions exit 3)."""
    script = root / "resource.d" / "hctest" / type_
    script.parent.mkdir(parents=True, exist_ok=True)
    body = textwrap.dedent(actions).strip()
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        "meta-data) cat <<'EOF'\n" + METADATA.replace("@TYPE@", type_) + "EOF\n"
        "exit 0;;\n" + body + "\n*) exit 3;;\nesac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


# A well-behaved agent that also writes the environment of each action to <dir>/<action>.env.
RECORDER = """
start) env > "$OCF_RESKEY_dir/start.env"; touch "$OCF_RESKEY_dir/running"; exit 0;;
stop) env > "$OCF_RESKEY_dir/stop.env"; rm -f "$OCF_RESKEY_dir/running"; exit 0;;
monitor) env > "$OCF_RESKEY_dir/monitor.env"
    [ -e "$OCF_RESKEY_dir/running" ] && exit 0; exit 7;;
validate-all) env > "$OCF_RESKEY_dir/validate-all.env"; exit 0;;
"""


def read_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep:
            env[name] = value
    return env


@pytest.fixture
def test_root(tmp_path: Path) -> Path:
    return tmp_path / "ocf"


# -- meta-data of the real agents ------------------------------------------------------------


@needs_resource_agents
def test_ipaddr2_meta_data_gives_its_parameters_and_timeouts() -> None:
    meta = ocf_agent("heartbeat", "IPaddr2").metadata

    assert meta.name == "ocf:heartbeat:IPaddr2"
    ip = meta.parameter("ip")
    assert ip is not None
    assert (ip.required, ip.unique, ip.default) == (True, True, None)  # it prints default=""
    arp_count = meta.parameter("arp_count")
    assert arp_count is not None
    assert (arp_count.type, arp_count.default) == (ParamType.INTEGER, "5")
    lvs_support = meta.parameter("lvs_support")
    assert lvs_support is not None
    assert (lvs_support.type, lvs_support.default) == (ParamType.BOOLEAN, "false")
    assert {"nic", "cidr_netmask", "broadcast", "iflabel"} <= {p.name for p in meta.parameters}
    assert meta.timeout_ms("start") == 20_000
    assert meta.timeout_ms("stop") == 20_000
    assert meta.timeout_ms("meta-data") == 5_000
    monitor = meta.action("monitor")
    assert monitor is not None
    assert (monitor.timeout_ms, monitor.interval_ms, monitor.depth) == (20_000, 10_000, 0)
    # Only what the bridge can run is described: IPaddr2's "status" is not.
    assert meta.action("status") is None


@needs_resource_agents
def test_apache_meta_data_gives_its_parameters_and_timeouts() -> None:
    meta = ocf_agent("heartbeat", "apache").metadata

    configfile = meta.parameter("configfile")
    assert configfile is not None
    assert (configfile.default, configfile.unique, configfile.required) == (
        "/etc/apache2/apache2.conf",
        True,
        False,
    )
    port = meta.parameter("port")
    assert port is not None
    assert port.type is ParamType.INTEGER
    assert {"httpd", "statusurl", "testregex", "options", "envfiles"} <= {
        p.name for p in meta.parameters
    }
    assert (meta.timeout_ms("start"), meta.timeout_ms("stop")) == (40_000, 60_000)
    assert meta.timeout_ms("validate-all") == 5_000


@needs_resource_agents
def test_the_class_is_made_once_per_script() -> None:
    assert ocf_agent("heartbeat", "Dummy") is ocf_agent("heartbeat", "Dummy")


def test_meta_data_times_take_pacemakers_units_and_unique_groups_of_one_are_unique() -> None:
    xml = textwrap.dedent("""\
        <resource-agent name="x" version="2.1">
          <version>1.1</version>
          <longdesc lang="en">long</longdesc><shortdesc lang="en">short</shortdesc>
          <parameters>
            <parameter name="a" unique-group="solo"><shortdesc lang="en">A</shortdesc>
              <content type="select" default="x"><option value="x"/><option value="y"/></content>
            </parameter>
            <parameter name="b" unique-group="pair"><shortdesc lang="en">B</shortdesc>
              <content type="time"/></parameter>
            <parameter name="c" unique-group="pair"><shortdesc lang="en">C</shortdesc>
              <content type="string"/></parameter>
          </parameters>
          <actions>
            <action name="start" timeout="2m"/>
            <action name="stop" timeout="500ms"/>
            <action name="monitor" timeout="90" interval="1h" depth="0"/>
            <action name="reload-agent" timeout="20s"/>
          </actions>
        </resource-agent>""")

    meta = parse_metadata(xml, "ocf:t:x")

    assert (meta.name, meta.version, meta.shortdesc) == ("ocf:t:x", "2.1", "short")
    a, b, c = meta.parameters
    assert (a.type, a.choices, a.default, a.unique) == (ParamType.SELECT, ("x", "y"), "x", True)
    assert (b.type, b.unique, c.unique) == (ParamType.STRING, False, False)
    assert meta.timeout_ms("start") == 120_000
    assert meta.timeout_ms("stop") == 500
    monitor = meta.action("monitor")
    assert monitor is not None
    assert (monitor.timeout_ms, monitor.interval_ms) == (90_000, 3_600_000)
    assert meta.action("reload-agent") is None
    # Actions the bridge always runs get Pacemaker's default timeout when not listed.
    assert meta.timeout_ms("validate-all") == 20_000


def test_meta_data_that_is_not_xml_is_refused() -> None:
    with pytest.raises(ValueError, match="not well-formed XML"):
        parse_metadata("usage: foo {start|stop}", "ocf:t:foo")


# -- finding agents --------------------------------------------------------------------------


@needs_resource_agents
def test_the_registry_loads_ocf_names_through_the_bridge() -> None:
    agent = AgentRegistry().load("ocf:heartbeat:IPaddr2")

    assert issubclass(agent, OCFAgent)
    assert agent is ocf_agent("heartbeat", "IPaddr2")
    assert agent.script == REAL_ROOT / "resource.d/heartbeat/IPaddr2"


@needs_resource_agents
def test_an_unknown_ocf_type_is_a_clear_error() -> None:
    with pytest.raises(AgentNotFound) as caught:
        AgentRegistry().load("ocf:heartbeat:IPadr2")

    assert str(caught.value) == (
        "unknown OCF agent 'ocf:heartbeat:IPadr2': /usr/lib/ocf/resource.d/heartbeat/IPadr2 "
        "does not exist (did you mean 'ocf:heartbeat:IPaddr2'?); the heartbeat agents come "
        "with the Debian package resource-agents"
    )


def test_a_missing_provider_names_the_debian_package(test_root: Path) -> None:
    write_agent(test_root, "Recorder", RECORDER)

    with pytest.raises(AgentNotFound) as caught:
        ocf_agent("pacemaker", "ping", root=test_root)

    assert "no provider 'pacemaker'" in str(caught.value)
    assert "installed providers: hctest" in str(caught.value)
    assert str(caught.value).endswith("apt install pacemaker-resource-agents")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ocf:heartbeat", "is not an OCF agent name: write ocf:<provider>:<type>"),
        ("ocf:heartbeat:IPaddr2:x", "is not an OCF agent name"),
        ("ocf:..:IPaddr2", "'..' is not a valid OCF provider or type name"),
    ],
)
def test_a_malformed_ocf_name_is_refused(name: str, message: str) -> None:
    with pytest.raises(AgentNotFound, match=message):
        AgentRegistry().load(name)


def test_a_script_whose_meta_data_fails_is_not_loaded(test_root: Path) -> None:
    script = write_agent(test_root, "Broken", "")
    script.write_text("#!/bin/sh\necho 'ocf-exit-reason:no XML here' >&2\nexit 1\n")

    with pytest.raises(AgentNotFound, match=r"meta-data' failed \(exit 1\): no XML here"):
        ocf_agent("hctest", "Broken", root=test_root)


def test_a_script_whose_meta_data_hangs_is_killed_and_not_loaded(
    test_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = write_agent(test_root, "Stuck", "")
    script.write_text('#!/bin/sh\nsleep 600 & echo "$$ $!" > "$0.pids"; wait\n')
    monkeypatch.setattr(ocf_module, "METADATA_TIMEOUT", 1.0)

    with pytest.raises(AgentNotFound, match="did not finish within 1 s"):
        ocf_agent("hctest", "Stuck", root=test_root)

    pids = [int(p) for p in Path(f"{script}.pids").read_text().split()]
    assert all_die(pids)


# -- parameters ------------------------------------------------------------------------------


def test_parameters_are_checked_against_the_scripts_meta_data(test_root: Path) -> None:
    write_agent(test_root, "Recorder", RECORDER)
    agent = ocf_agent("hctest", "Recorder", root=test_root)

    with pytest.raises(ConfigurationError, match=r"unknown parameter 'cuont' \(did you mean"):
        agent.resolve({"dir": "/x", "cuont": "3"})
    with pytest.raises(ConfigurationError, match="parameter 'dir' is required"):
        agent.resolve({"count": "3"})
    with pytest.raises(ConfigurationError, match="parameter 'dir' is required"):
        agent.resolve({"dir": ""})
    with pytest.raises(ConfigurationError, match="'count' must be an integer, not 'many'"):
        agent.resolve({"dir": "/x", "count": "many"})


def test_defaults_are_left_to_the_script(test_root: Path) -> None:
    write_agent(test_root, "Recorder", RECORDER)
    agent = ocf_agent("hctest", "Recorder", root=test_root)

    assert agent.resolve({"dir": "/x"}) == {"dir": "/x"}
    assert agent.resolve({"dir": "/x", "count": "7"}) == {"dir": "/x", "count": "7"}


def test_haresources_arguments_are_name_value_pairs(test_root: Path) -> None:
    write_agent(test_root, "Recorder", RECORDER)
    agent = ocf_agent("hctest", "Recorder", root=test_root)

    assert agent.parse_args(["dir=/srv/a=b", "count=2"]) == {"dir": "/srv/a=b", "count": "2"}
    with pytest.raises(ConfigurationError, match=r"argument '/srv' is not name=value"):
        agent.parse_args(["/srv"])
    with pytest.raises(ConfigurationError, match="'dir' given twice"):
        agent.parse_args(["dir=/a", "dir=/b"])


# -- the environment of an action ------------------------------------------------------------


def test_an_action_gets_the_ocf_environment_and_nothing_of_the_daemons(
    test_root: Path, tmp_path: Path, rsctmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCF_RESKEY_leak", "from the daemon's shell")
    write_agent(test_root, "Recorder", RECORDER)
    agent = make(ocf_agent("hctest", "Recorder", root=test_root), "rec", dir=str(tmp_path))

    asyncio.run(agent.start())

    env = read_env(tmp_path / "start.env")
    assert {k: v for k, v in env.items() if k.startswith("OCF_")} == {
        "OCF_ROOT": str(test_root),
        "OCF_RA_VERSION_MAJOR": "1",
        "OCF_RA_VERSION_MINOR": "0",
        "OCF_RESOURCE_INSTANCE": "rec",
        "OCF_RESOURCE_TYPE": "Recorder",
        "OCF_RESOURCE_PROVIDER": "hctest",
        "OCF_CHECK_LEVEL": "0",
        "OCF_RESKEY_CRM_meta_timeout": "30000",
        "OCF_RESKEY_CRM_meta_interval": "0",
        "OCF_RESKEY_dir": str(tmp_path),  # count is not set: the script's default applies
    }
    assert env["HA_RSCTMP"] == str(rsctmp)
    assert env["PATH"] == SAFE_PATH


def test_a_monitor_is_a_probe_until_the_resource_is_known_to_run(
    test_root: Path, tmp_path: Path
) -> None:
    write_agent(test_root, "Recorder", RECORDER)
    agent = make(ocf_agent("hctest", "Recorder", root=test_root), dir=str(tmp_path))

    def monitor(depth: int = 0) -> dict[str, str]:
        assert asyncio.run(agent.monitor(depth)) in (OCFResult.SUCCESS, OCFResult.NOT_RUNNING)
        env = read_env(tmp_path / "monitor.env")
        keys = ("OCF_RESKEY_CRM_meta_interval", "OCF_RESKEY_CRM_meta_timeout", "OCF_CHECK_LEVEL")
        return {k.rsplit("_", 1)[-1]: env[k] for k in keys}

    assert monitor() == {"interval": "0", "timeout": "25000", "LEVEL": "0"}
    asyncio.run(agent.start())
    assert monitor() == {"interval": "15000", "timeout": "25000", "LEVEL": "0"}
    assert monitor(10) == {"interval": "120000", "timeout": "50000", "LEVEL": "10"}
    agent.monitor_interval_ms = 5_000  # the configuration's own interval
    assert monitor() == {"interval": "5000", "timeout": "25000", "LEVEL": "0"}
    asyncio.run(agent.stop())
    assert monitor() == {"interval": "0", "timeout": "25000", "LEVEL": "0"}
    # A probe that finds the resource running (a daemon restarted under it) ends probing too.
    (tmp_path / "running").touch()
    assert monitor() == {"interval": "0", "timeout": "25000", "LEVEL": "0"}
    assert monitor()["interval"] == "5000"


def test_validate_runs_validate_all_at_check_level_10(test_root: Path, tmp_path: Path) -> None:
    write_agent(test_root, "Recorder", RECORDER)
    agent = make(ocf_agent("hctest", "Recorder", root=test_root), dir=str(tmp_path))

    asyncio.run(agent.validate())

    env = read_env(tmp_path / "validate-all.env")
    assert (env["OCF_CHECK_LEVEL"], env["OCF_RESKEY_CRM_meta_timeout"]) == ("10", "10000")


# -- exit codes ------------------------------------------------------------------------------

EXITS = """
start) echo "ha_log noise" >&2; echo "ocf-exit-reason:Invalid netmask 33" >&2; exit 6;;
stop) echo "nothing there" >&2; exit 5;;
monitor) echo "line one" >&2; echo "curl: (7) Failed to connect" >&2; exit 1;;
validate-all) exit 190;;
"""


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (
            "start",
            ConfigurationError,
            "ocf:hctest:Exits start (instance r1): OCF 6 ERR_CONFIGURED: Invalid netmask 33",
        ),
        (
            "stop",
            NotInstalledError,
            "ocf:hctest:Exits stop (instance r1): OCF 5 ERR_INSTALLED: nothing there",
        ),
        (
            "monitor",
            AgentError,
            "ocf:hctest:Exits monitor (instance r1): OCF 1 ERR_GENERIC: line one; "
            "curl: (7) Failed to connect",
        ),
    ],
)
def test_an_exit_code_becomes_the_matching_error_with_the_scripts_reason(
    test_root: Path, action: str, error: type[AgentError], message: str
) -> None:
    write_agent(test_root, "Exits", EXITS)
    agent = make(ocf_agent("hctest", "Exits", root=test_root), dir="/nowhere")
    call = getattr(agent, action)

    with pytest.raises(AgentError) as caught:
        asyncio.run(call())

    assert type(caught.value) is error
    assert str(caught.value) == message


def test_a_degraded_resource_is_running(test_root: Path) -> None:
    write_agent(test_root, "Degraded", "monitor) exit 190;;")
    agent = make(ocf_agent("hctest", "Degraded", root=test_root), dir="/nowhere")

    assert asyncio.run(agent.monitor()) is OCFResult.SUCCESS


def test_a_code_outside_ocf_is_a_generic_error(test_root: Path) -> None:
    write_agent(test_root, "Odd", "start) exit 42;;")
    agent = make(ocf_agent("hctest", "Odd", root=test_root), dir="/nowhere")

    with pytest.raises(AgentError, match="exit 42, not an OCF exit code") as caught:
        asyncio.run(agent.start())
    assert caught.value.result is OCFResult.ERR_GENERIC


def test_an_unimplemented_validate_is_reported_as_such(test_root: Path) -> None:
    write_agent(test_root, "NoValidate", "start) exit 0;;")
    agent = make(ocf_agent("hctest", "NoValidate", root=test_root), dir="/nowhere")

    with pytest.raises(AgentError) as caught:
        asyncio.run(agent.validate())
    assert caught.value.result is OCFResult.ERR_UNIMPLEMENTED


def test_a_script_removed_after_loading_is_not_installed(test_root: Path) -> None:
    script = write_agent(test_root, "Gone", RECORDER)
    agent = make(ocf_agent("hctest", "Gone", root=test_root), dir="/nowhere")
    script.unlink()

    with pytest.raises(NotInstalledError, match="cannot run"):
        asyncio.run(agent.monitor())


# -- a hanging script ------------------------------------------------------------------------

HANGS = """
start) sleep 600 & echo "$$ $!" > "$OCF_RESKEY_dir/pids"; wait; exit 0;;
"""


def alive(pid: int) -> bool:
    """Is ``pid`` a living process? A zombie is dead: it only waits for its parent to reap it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


def all_die(pids: list[int], timeout: float = 5.0) -> bool:
    """Do all of ``pids`` die within ``timeout``? The bridge has sent SIGKILL to their group
    by the time the action ends, and a process with SIGKILL pending never runs another
    instruction of its own; but the kernel finishes tearing a process down asynchronously, so
    the sleep child may still show as running for a moment after its killer returns."""
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def group_members(pgid: int) -> list[int]:
    """Living processes of process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def pids_written(path: Path) -> bool:
    return path.exists() and len(path.read_text().split()) == 2


def test_a_cancelled_action_kills_the_script_and_its_children(
    test_root: Path, tmp_path: Path
) -> None:
    write_agent(test_root, "Hangs", HANGS)
    agent = make(ocf_agent("hctest", "Hangs", root=test_root), dir=str(tmp_path))
    pidfile = tmp_path / "pids"

    async def scenario() -> None:
        task = asyncio.create_task(agent.start())
        await until(lambda: pids_written(pidfile))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())

    script_pid, sleep_pid = (int(p) for p in pidfile.read_text().split())
    assert all_die([script_pid, sleep_pid])
    assert group_members(script_pid) == []  # the script led its own group


def test_an_action_that_times_out_leaves_no_process(test_root: Path, tmp_path: Path) -> None:
    write_agent(test_root, "Hangs", HANGS)
    agent = make(ocf_agent("hctest", "Hangs", root=test_root), dir=str(tmp_path))
    pidfile = tmp_path / "pids"

    async def scenario() -> None:
        # How the core bounds an action: a timeout around the awaited coroutine.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(30) as deadline:
                task = asyncio.ensure_future(agent.start())
                await until(lambda: pids_written(pidfile))
                deadline.reschedule(asyncio.get_running_loop().time())
                await task

    asyncio.run(scenario())

    script_pid, sleep_pid = (int(p) for p in pidfile.read_text().split())
    assert all_die([script_pid, sleep_pid])


def test_a_background_child_does_not_hold_the_action_up(test_root: Path, tmp_path: Path) -> None:
    # IPaddr2 leaves send_arp running after start; an init script may leave a daemon holding
    # its stdout. The action ends when the script exits, and the child is left alone.
    write_agent(test_root, "Spawns", 'start) sleep 600 & echo "$!" > "$OCF_RESKEY_dir/child";;')
    agent = make(ocf_agent("hctest", "Spawns", root=test_root), dir=str(tmp_path))

    began = time.monotonic()
    asyncio.run(agent.start())

    assert time.monotonic() - began < 30
    child = int((tmp_path / "child").read_text())
    try:
        assert alive(child)
    finally:
        os.kill(child, signal.SIGKILL)


# -- the real agents, end to end -------------------------------------------------------------


@needs_resource_agents
def test_dummy_passes_the_conformance_suite_with_its_own_defaults(rsctmp: Path) -> None:
    dummy = ocf_agent("heartbeat", "Dummy")

    report = asyncio.run(check_agent(dummy, {}, "dummy-1"))

    assert report.passed, report.render()
    # Its state file is the script's default for this instance, not the meta-data's text
    # ("Dummy-RESOURCE_ID.state"), which every instance would have shared.
    started = make(dummy, "dummy-2")
    asyncio.run(started.start())
    assert (rsctmp / "Dummy-dummy-2.state").exists()
    asyncio.run(started.stop())


@pytest.fixture
def node(make_lab: LabFactory) -> Iterator[tuple[Host, NamespaceLoop]]:
    """A lab node (eth0 198.51.100.1/24 on a bridge) and an event loop inside its namespace."""
    with node_with_loop(make_lab(prefix=lab_prefix())) as host_and_loop:
        yield host_and_loop


@needs_resource_agents
@pytest.mark.netns
def test_ipaddr2_passes_the_conformance_suite_in_a_namespace(
    node: tuple[Host, NamespaceLoop],
) -> None:
    host, loop = node
    assert host.address == NODE_IP
    ipaddr2 = AgentRegistry().load("ocf:heartbeat:IPaddr2")
    params = {"ip": "198.51.100.100", "cidr_netmask": "24", "nic": "eth0"}

    report = loop.run(check_agent(ipaddr2, params, "vip"))

    assert report.passed, report.render()
    assert "198.51.100.100" not in host.addresses()


@needs_resource_agents
@pytest.mark.netns
def test_ipaddr2_puts_the_address_on_the_nodes_eth0(node: tuple[Host, NamespaceLoop]) -> None:
    host, loop = node
    ipaddr2 = ocf_agent("heartbeat", "IPaddr2")
    vip = make(ipaddr2, "vip", ip="198.51.100.100", cidr_netmask="24", nic="eth0")

    loop.run(vip.start())
    try:
        assert "198.51.100.100" in host.addresses()
        assert loop.run(vip.monitor()) is OCFResult.SUCCESS
    finally:
        loop.run(vip.stop())
    assert "198.51.100.100" not in host.addresses()
    assert loop.run(vip.monitor()) is OCFResult.NOT_RUNNING
