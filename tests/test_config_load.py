"""The public API: load(), check(), and how a source and the local node are found."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hacore.config import DEFAULT_DIR, ConfigError, check, load, to_toml
from hacore.config.errors import Problem, Severity
from hacore.config.model import (
    Auth,
    AuthKey,
    AuthMethod,
    AutoFailback,
    ClusterConfig,
    Group,
    Link,
    LinkKind,
    Resource,
    Timers,
)

# The reference scenario of DESIGN.md, byte for byte.
REFERENCE_HA_CF = """\
# ha.cf
logfile /var/log/heartbeat.log
logfacility daemon
node pc1
node pc2
keepalive 1
deadtime 10
bcast eth0
ping 51.159.198.27
auto_failback yes
"""
REFERENCE_AUTHKEYS = "auth 1\n1 sha1 SuperMDP\n"
REFERENCE_HARESOURCES = "pc1 IPaddr::192.168.10.55/24/eth0\n"


def heartbeat_dir(
    root: Path,
    ha_cf: str = REFERENCE_HA_CF,
    authkeys: str | None = REFERENCE_AUTHKEYS,
    haresources: str | None = REFERENCE_HARESOURCES,
    nodeinfo: str | None = "pc1\n",
) -> Path:
    directory = root / "ha.d"
    directory.mkdir()
    (directory / "ha.cf").write_text(ha_cf)
    if authkeys is not None:
        (directory / "authkeys").write_text(authkeys)
        (directory / "authkeys").chmod(0o600)
    if haresources is not None:
        (directory / "haresources").write_text(haresources)
    if nodeinfo is not None:
        (directory / "nodeinfo").write_text(nodeinfo)
    return directory


def test_default_directory_is_etc_ha_d() -> None:
    assert Path("/etc/ha.d") == DEFAULT_DIR


def test_reference_scenario_loads_into_the_expected_model(tmp_path: Path) -> None:
    directory = heartbeat_dir(tmp_path)
    loaded = load(directory)
    assert loaded.config == ClusterConfig(
        nodes=("pc1", "pc2"),
        local_node="pc1",
        links=(Link(LinkKind.BCAST, "eth0", 694),),
        auth=Auth(1, (AuthKey(1, AuthMethod.SHA1, b"SuperMDP"),)),
        timers=Timers(
            keepalive_ms=1000,
            deadtime_ms=10_000,
            warntime_ms=5000,
            initdead_ms=20_000,
            deadping_ms=10_000,
        ),
        auto_failback=AutoFailback.ON,
        ping_nodes=("51.159.198.27",),
        groups=(Group("pc1", (Resource("IPaddr", ("192.168.10.55/24/eth0",)),)),),
        logfile="/var/log/heartbeat.log",
        logfacility="daemon",
        source=directory,
    )
    assert loaded.warnings == ()


def test_reference_scenario_values_remember_their_lines(tmp_path: Path) -> None:
    directory = heartbeat_dir(tmp_path)
    config = load(directory).config
    assert str(config.links[0].location) == f"{directory}/ha.cf:8"
    assert str(config.groups[0].location) == f"{directory}/haresources:1"


def test_haresources_is_optional(tmp_path: Path) -> None:
    assert load(heartbeat_dir(tmp_path, haresources=None)).config.groups == ()


def test_node_name_argument_wins_over_nodeinfo(tmp_path: Path) -> None:
    assert load(heartbeat_dir(tmp_path), node_name="PC2").config.local_node == "pc2"


def test_nodeinfo_first_line_names_the_local_node(tmp_path: Path) -> None:
    directory = heartbeat_dir(tmp_path, nodeinfo="  PC2 \nignored\n")
    assert load(directory).config.local_node == "pc2"


def test_host_name_names_the_local_node_without_nodeinfo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.uname()
    fake = os.uname_result((real.sysname, "PC2", real.release, real.version, real.machine))
    monkeypatch.setattr(os, "uname", lambda: fake)
    assert load(heartbeat_dir(tmp_path, nodeinfo=None)).config.local_node == "pc2"


def test_local_node_not_in_the_node_list_is_an_error_on_ha_cf(tmp_path: Path) -> None:
    directory = heartbeat_dir(tmp_path, nodeinfo="pc3\n")
    with pytest.raises(ConfigError) as e:
        load(directory)
    assert str(e.value) == (
        f"{directory}/ha.cf: local node 'pc3' is not in the node list "
        f"(add 'node pc3' or write its name to {directory}/nodeinfo)"
    )


def test_empty_nodeinfo_is_an_error(tmp_path: Path) -> None:
    directory = heartbeat_dir(tmp_path, nodeinfo="\n")
    assert [str(p) for p in check(directory)] == [
        f"{directory}/nodeinfo:1: empty: write this node's name on the first line, "
        "or remove the file"
    ]


def test_load_reports_every_problem_of_every_file_at_once(tmp_path: Path) -> None:
    directory = heartbeat_dir(
        tmp_path,
        ha_cf=REFERENCE_HA_CF + "keepaliv 2\nrespawn hacluster /usr/lib/heartbeat/ipfail\n",
        authkeys="auth 1\n1 sha1\n",
        haresources="pc9 apache\n",
    )
    with pytest.raises(ConfigError) as e:
        load(directory)
    found = [(Path(p.location.file).name, p.location.line, p.severity) for p in e.value.problems]
    assert found == [
        ("ha.cf", 11, Severity.ERROR),
        ("ha.cf", 12, Severity.WARNING),
        ("authkeys", 2, Severity.ERROR),
        ("haresources", 1, Severity.ERROR),
    ]


def test_check_returns_the_same_problems_without_raising(tmp_path: Path) -> None:
    directory = heartbeat_dir(tmp_path, ha_cf=REFERENCE_HA_CF + "keepaliv 2\n")
    with pytest.raises(ConfigError) as e:
        load(directory)
    assert check(directory) == e.value.problems


def test_check_of_a_good_configuration_is_empty(tmp_path: Path) -> None:
    assert check(heartbeat_dir(tmp_path)) == ()


def test_warnings_come_with_the_loaded_configuration(tmp_path: Path) -> None:
    directory = heartbeat_dir(tmp_path, ha_cf=REFERENCE_HA_CF + "use_logd yes\n")
    loaded = load(directory)
    assert [str(w) for w in loaded.warnings] == [
        f"{directory}/ha.cf:11: warning: 'use_logd' is accepted but ignored by hacore "
        "(hacore logs to logfile and logfacility itself, not through ha_logd)"
    ]
    assert [i.directive for i in loaded.config.ignored] == ["use_logd"]


def test_missing_authkeys_is_an_error(tmp_path: Path) -> None:
    directory = heartbeat_dir(tmp_path, authkeys=None)
    assert [str(p) for p in check(directory)] == [
        f"{directory}/authkeys: not found "
        "(create it with the lines 'auth 1' and '1 sha1 <secret>', mode 600)"
    ]


def test_directory_with_only_cluster_toml_is_read_as_toml(tmp_path: Path) -> None:
    directory = heartbeat_dir(tmp_path)
    text = to_toml(load(directory).config)
    for name in ("ha.cf", "authkeys", "haresources"):
        (directory / name).unlink()
    (directory / "cluster.toml").write_text(text)
    (directory / "cluster.toml").chmod(0o600)
    config = load(directory).config
    assert config.local_node == "pc1"  # from nodeinfo beside the file
    assert config.source == directory / "cluster.toml"


def test_ha_cf_wins_over_cluster_toml_in_the_same_directory(tmp_path: Path) -> None:
    directory = heartbeat_dir(tmp_path)
    (directory / "cluster.toml").write_text("not even toml")
    assert load(directory).config.source == directory


def test_missing_source_is_one_problem(tmp_path: Path) -> None:
    assert [str(p) for p in check(tmp_path / "nowhere")] == [
        f"{tmp_path}/nowhere: not found "
        "(create it or point --config-dir at the directory that holds it)"
    ]


def test_empty_directory_reports_the_missing_files(tmp_path: Path) -> None:
    messages = [str(p) for p in check(tmp_path)]
    assert messages[0] == (
        f"{tmp_path}/ha.cf: not found "
        "(create it or point --config-dir at the directory that holds it)"
    )
    assert messages[1].startswith(f"{tmp_path}/authkeys: not found")


def test_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    directory = heartbeat_dir(tmp_path)
    assert [p.message for p in check(directory / "ha.cf")] == [
        "is neither a directory nor a .toml file (give the directory that holds ha.cf)"
    ]


def test_missing_toml_file_is_one_problem(tmp_path: Path) -> None:
    assert [str(p) for p in check(tmp_path / "cluster.toml")] == [
        f"{tmp_path}/cluster.toml: not found "
        "(create it or point --config-dir at the directory that holds it)"
    ]


# -- bad input never raises anything but ConfigError

_WORDS = [
    *("node", "bcast", "ucast", "mcast", "ucast6", "ping", "ping_group", "keepalive"),
    *("deadtime", "initdead", "udpport", "auto_failback", "logfacility", "debug", "respawn"),
    *("auth", "sha1", "crc", "#", "\\", ",", "::", "pc1", "eth0", "239.0.0.1", "192.0.2.1"),
    *("fe80::1%eth0", "1", "0", "5", "ms", "10ms", "2s", "legacy", "on"),
]
_LINE = st.lists(st.sampled_from(_WORDS) | st.text(max_size=5), max_size=6).map(" ".join)
_FILE = st.lists(_LINE, max_size=10).map("\n".join)


@settings(max_examples=150, deadline=None)
@given(ha_cf=_FILE, authkeys=_FILE, haresources=_FILE, junk=st.binary(max_size=20))
def test_any_heartbeat_files_give_problems_not_exceptions(
    ha_cf: str, authkeys: str, haresources: str, junk: bytes
) -> None:
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        (directory / "ha.cf").write_text(ha_cf)
        (directory / "authkeys").write_bytes(authkeys.encode() + junk)
        (directory / "authkeys").chmod(0o600)
        (directory / "haresources").write_bytes(haresources.encode() + junk)
        (directory / "nodeinfo").write_bytes(junk + b"pc1")
        try:
            load(directory)
        except ConfigError as e:
            assert all(isinstance(p, Problem) for p in e.problems)
