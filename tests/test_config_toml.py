"""cluster.toml: hacore's native format says what the Heartbeat files say, and round-trips."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from hacore.config import ConfigError, Loaded, load, to_toml
from hacore.config.errors import Problem, Severity
from hacore.config.model import (
    Auth,
    AuthKey,
    AuthMethod,
    AutoFailback,
    ClusterConfig,
    Group,
    Ignored,
    Link,
    LinkKind,
    Location,
    PingGroup,
    Resource,
    Timers,
)

MINIMAL = """\
[cluster]
nodes = ["pc1", "pc2"]
auto_failback = "on"

[[link]]
kind = "bcast"
interface = "eth0"

[auth]
active = 1

[[auth.key]]
index = 1
method = "sha256"
secret = "s3cret"
"""

REFERENCE_HA_CF = """\
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


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def problems_of(path: Path) -> list[tuple[int, str]]:
    with pytest.raises(ConfigError) as e:
        load(path, node_name="pc1")
    return [(p.location.line, p.message) for p in e.value.problems if p.severity is Severity.ERROR]


def round_trip(tmp_path: Path, config: ClusterConfig) -> Loaded:
    path = tmp_path / "written" / "cluster.toml"
    path.parent.mkdir()
    path.write_text(to_toml(config))
    path.chmod(0o600)
    return load(path, node_name=config.local_node)


def same(a: ClusterConfig, b: ClusterConfig) -> bool:
    return dataclasses.replace(a, source=b.source) == b


# -- round trips


def test_reference_scenario_round_trips(tmp_path: Path) -> None:
    (tmp_path / "ha.cf").write_text(REFERENCE_HA_CF)
    (tmp_path / "authkeys").write_text("auth 1\n1 sha1 SuperMDP\n")
    (tmp_path / "authkeys").chmod(0o600)
    (tmp_path / "haresources").write_text("pc1 IPaddr::192.168.10.55/24/eth0\n")
    original = load(tmp_path, node_name="pc1").config
    loaded = round_trip(tmp_path, original)
    assert same(loaded.config, original)
    assert loaded.warnings == ()


def rich_config() -> ClusterConfig:
    at = Location("")
    return ClusterConfig(
        nodes=("alpha", "beta", "gamma"),
        local_node="beta",
        links=(
            Link(LinkKind.BCAST, "eth0", 700),
            Link(LinkKind.BCAST, "eth1", 694),
            Link(LinkKind.UCAST, "eth2", 700, "192.0.2.7"),
            Link(LinkKind.UCAST6, "eth2", 700, "fe80::7%eth2"),
            Link(LinkKind.MCAST, "eth3", 1694, "239.1.2.3", 0, True),
            Link(LinkKind.MCAST6, "eth3", 1695, "ff12::1:2:3:4", 4, False),
        ),
        auth=Auth(
            2,
            (
                AuthKey(1, AuthMethod.SHA1, b"old"),
                AuthKey(2, AuthMethod.SHA256, b'with "quotes" and \\ and \xc3\xa9'),
                AuthKey(3, AuthMethod.MD5, b"\xff\x00 binary"),
                AuthKey(0, AuthMethod.CRC, b""),
            ),
        ),
        timers=Timers(
            keepalive_ms=100,
            deadtime_ms=300,
            warntime_ms=250,
            initdead_ms=15_000,
            deadping_ms=2500,
            freshness_ms=60_000,
        ),
        udpport=700,
        auto_failback=AutoFailback.OFF,
        ping_nodes=("192.0.2.1", "192.0.2.254"),
        ping_groups=(PingGroup("routers", ("198.51.100.1", "198.51.100.2")),),
        groups=(
            Group("alpha", (Resource("IPaddr", ("192.168.10.55/24/eth0",)), Resource("apache"))),
            Group(
                "gamma",
                (
                    Resource("IPaddr2", ("10.0.0.9/24",), (("lvs_support", "1"),), 5000),
                    Resource("Filesystem", ("/dev/sda1", "/data::1", "ext4")),
                    Resource("ocf", (), (("type", "heartbeat:apache"), ("weird key", "x = y"))),
                ),
                at,
            ),
        ),
        logfile="/var/log/hacore.log",
        debugfile="/var/log/hacore.debug",
        logfacility="local3",
        debug=2,
        realtime=False,
        hbgenmethod="time",
        cluster="web",
    )


def test_rich_config_round_trips(tmp_path: Path) -> None:
    original = rich_config()
    loaded = round_trip(tmp_path, original)
    assert same(loaded.config, original)


@pytest.mark.parametrize("address", ["127.0.0.1:9694", "[::1]:9694", "0.0.0.0:9694"])
def test_metrics_address_round_trips(tmp_path: Path, address: str) -> None:
    original = dataclasses.replace(rich_config(), metrics_address=address)
    assert f'[metrics]\naddress = "{address}"\n' in to_toml(original)
    assert same(round_trip(tmp_path, original).config, original)


def test_no_metrics_address_writes_no_metrics_table() -> None:
    assert "[metrics]" not in to_toml(rich_config())


def test_ignored_directives_are_written_as_comments_and_not_read_back(tmp_path: Path) -> None:
    at = Location("/etc/ha.d/ha.cf", 12)
    ignored = Ignored("respawn", "hacluster /usr/lib/heartbeat/ipfail", at)
    config = dataclasses.replace(rich_config(), ignored=(ignored,))
    text = to_toml(config)
    assert "#   /etc/ha.d/ha.cf:12: respawn hacluster /usr/lib/heartbeat/ipfail\n" in text
    assert same(round_trip(tmp_path, config).config, dataclasses.replace(config, ignored=()))


def test_written_file_does_not_name_the_local_node(tmp_path: Path) -> None:
    assert "beta" not in to_toml(rich_config()).split("nodes = ")[1].split("\n", 1)[1]


def test_derived_timers_are_left_for_the_reader_to_derive(tmp_path: Path) -> None:
    config = dataclasses.replace(rich_config(), timers=Timers(1000, 10_000, 5000, 20_000, 10_000))
    text = to_toml(config)
    assert '[timers]\nkeepalive = "1s"\ndeadtime = "10s"\n\n' in text


# -- reading the native format


def test_minimal_file_loads(tmp_path: Path) -> None:
    loaded = load(write(tmp_path, MINIMAL), node_name="pc2")
    config = loaded.config
    assert config.nodes == ("pc1", "pc2")
    assert config.local_node == "pc2"
    assert config.links == (Link(LinkKind.BCAST, "eth0"),)
    assert config.auth.signing_key == AuthKey(1, AuthMethod.SHA256, b"s3cret")
    assert config.timers == Timers()
    assert config.source == tmp_path / "cluster.toml"
    assert loaded.warnings == ()


def test_timers_take_strings_with_units_or_integer_milliseconds(tmp_path: Path) -> None:
    text = MINIMAL + '[timers]\nkeepalive = 200\ndeadtime = "1.5s"\nwarntime = "900ms"\n'
    timers = load(write(tmp_path, text), node_name="pc1").config.timers
    assert (timers.keepalive_ms, timers.deadtime_ms, timers.warntime_ms) == (200, 1500, 900)
    assert timers.initdead_ms == 12_000


def test_timer_rules_are_heartbeats(tmp_path: Path) -> None:
    text = MINIMAL + '[timers]\nkeepalive = "1s"\ndeadtime = "2s"\n'
    assert problems_of(write(tmp_path, text)) == [
        (
            18,
            "deadtime (2 s) must be more than twice keepalive (1 s): "
            "raise deadtime or lower keepalive",
        )
    ]


def test_resources_as_tables_carry_params_and_a_monitor_interval(tmp_path: Path) -> None:
    text = MINIMAL + (
        '[[group]]\nnode = "pc1"\n'
        '[[group.resource]]\nagent = "IPaddr2"\nparams = { ip = "10.0.0.9", cidr_netmask = "24" }\n'
        'monitor_interval = "10s"\n'
        '[[group.resource]]\nagent = "apache"\n'
    )
    group = load(write(tmp_path, text), node_name="pc1").config.groups[0]
    assert group.resources == (
        Resource("IPaddr2", (), (("ip", "10.0.0.9"), ("cidr_netmask", "24")), 10_000),
        Resource("apache"),
    )
    assert [r.location.line for r in group.resources] == [18, 22]


def test_resources_in_haresources_spelling(tmp_path: Path) -> None:
    text = MINIMAL + '[[group]]\nnode = "PC1"\nresources = ["10.0.0.1", "apache"]\n'
    group = load(write(tmp_path, text), node_name="pc1").config.groups[0]
    assert (group.preferred_node, group.key) == ("pc1", "IPaddr::10.0.0.1")


def test_secret_may_be_hex(tmp_path: Path) -> None:
    text = MINIMAL.replace('secret = "s3cret"', 'secret_hex = "ff00"')
    config = load(write(tmp_path, text), node_name="pc1").config
    assert config.auth.signing_key.secret == b"\xff\x00"


def test_secret_may_live_in_its_own_file(tmp_path: Path) -> None:
    key = tmp_path / "key1"
    key.write_bytes(b"from a file\n")
    key.chmod(0o600)
    text = MINIMAL.replace('secret = "s3cret"', 'secret_file = "key1"')
    # Without inline secrets, the configuration itself may be world-readable.
    config = load(write(tmp_path, text, 0o644), node_name="pc1").config
    assert config.auth.signing_key.secret == b"from a file"


def test_secret_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "key1"
    key.write_bytes(b"k")
    key.chmod(0o644)
    text = MINIMAL.replace('secret = "s3cret"', 'secret_file = "key1"')
    with pytest.raises(ConfigError) as e:
        load(write(tmp_path, text), node_name="pc1")
    assert str(e.value) == f"{key}: readable by group or others (mode 0644); run 'chmod 600 {key}'"


def test_file_with_inline_secrets_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL, 0o640)
    with pytest.raises(ConfigError) as e:
        load(path, node_name="pc1")
    assert str(e.value) == (
        f"{path}: readable by group or others (mode 0640); run 'chmod 600 {path}'"
    )


def test_local_node_may_be_written_in_the_file(tmp_path: Path) -> None:
    text = MINIMAL.replace('auto_failback = "on"', 'auto_failback = "on"\nlocal_node = "PC2"')
    assert load(write(tmp_path, text)).config.local_node == "pc2"


def test_node_name_argument_wins_over_local_node_in_the_file(tmp_path: Path) -> None:
    text = MINIMAL.replace('auto_failback = "on"', 'auto_failback = "on"\nlocal_node = "pc2"')
    assert load(write(tmp_path, text), node_name="pc1").config.local_node == "pc1"


def test_auto_failback_may_be_a_boolean(tmp_path: Path) -> None:
    text = MINIMAL.replace('auto_failback = "on"', "auto_failback = false")
    assert load(write(tmp_path, text), node_name="pc1").config.auto_failback is AutoFailback.OFF


# -- problems, with their lines


def test_syntax_error_has_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "oops = \n")
    assert problems_of(path) == [(16, "TOML syntax error: Invalid value (column 8)")]


def test_unknown_key_suggests_the_nearest(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '[timers]\nkeepaliv = "1s"\n')
    assert problems_of(path) == [
        (17, "unknown key 'keepaliv' in [timers] (did you mean 'keepalive'?)")
    ]


def test_unknown_table_suggests_the_nearest(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[timer]\n")
    assert problems_of(path) == [(16, "unknown table 'timer' (did you mean 'timers'?)")]


def test_wrong_type_names_both_types(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace('["pc1", "pc2"]', '"pc1"'))
    assert problems_of(path) == [
        (2, "'nodes' in [cluster] must be an array of strings, not a string")
    ]


def test_missing_nodes_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace('nodes = ["pc1", "pc2"]\n', ""))
    assert problems_of(path) == [
        (1, '[cluster] has no \'nodes\' (list every cluster member: nodes = ["pc1", "pc2"])')
    ]


def test_bad_time_string_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '[timers]\ndeadtime = "10"\n')
    assert problems_of(path) == [
        (
            17,
            "'deadtime' in [timers]: '10' is not a time (write a number with a unit: "
            '"10s", "500ms"; or an integer of milliseconds)',
        )
    ]


def test_key_that_does_not_apply_to_the_link_kind_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace('interface = "eth0"', 'interface = "eth0"\nttl = 2'))
    assert problems_of(path) == [(8, "'ttl' does not apply to a bcast link")]


def test_ucast_link_needs_a_peer(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace('"bcast"', '"ucast"'))
    assert problems_of(path) == [(5, "the ucast link has no 'peer'")]


def test_crc_key_takes_no_secret(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace('"sha256"', '"crc"'))
    assert problems_of(path) == [(15, "method 'crc' takes no secret")]


def test_group_with_both_resource_spellings_is_an_error(tmp_path: Path) -> None:
    text = MINIMAL + '[[group]]\nnode = "pc1"\nresources = ["a"]\n[[group.resource]]\nagent = "b"\n'
    assert problems_of(write(tmp_path, text)) == [
        (16, "give a group's resources either as 'resources' or as tables")
    ]


def test_group_on_an_unknown_node_is_an_error(tmp_path: Path) -> None:
    text = MINIMAL + '[[group]]\nnode = "pc3"\nresources = ["apache"]\n'
    assert problems_of(write(tmp_path, text)) == [
        (16, "unknown node 'pc3' in cluster.toml (nodes are: pc1, pc2)")
    ]


# -- bad input never raises anything but ConfigError

_KEYS = [
    *("cluster", "nodes", "local_node", "auto_failback", "udpport", "timers", "keepalive"),
    *("link", "kind", "interface", "port", "peer", "group", "ttl", "loop", "auth", "active"),
    *("key", "index", "method", "secret", "secret_hex", "secret_file", "ping", "addresses"),
    *("name", "logging", "facility", "debug", "resources", "resource", "agent", "params"),
]
_SCALAR = (
    st.booleans()
    | st.integers(-5, 70_000)
    | st.sampled_from(["pc1", "bcast", "eth0", "1s", "sha256", "239.0.0.1", "10", "ff", "on"])
    | st.text(max_size=4)
)
_VALUE = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner),
    max_leaves=15,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(_KEYS), _VALUE, max_size=8))
def test_any_toml_document_gives_problems_not_exceptions(document: dict[str, object]) -> None:
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "cluster.toml"
        path.write_text(tomli_w.dumps(document))
        path.chmod(0o600)
        try:
            load(path, node_name="pc1")
        except ConfigError as e:
            assert all(isinstance(p, Problem) for p in e.problems)
