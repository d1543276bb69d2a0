"""ha.cf is read exactly as Heartbeat 3.0.6 reads it (reference section 1.1 and 1.2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hacore.config.errors import Problem, Severity
from hacore.config.hacf import HaCf, read_hacf
from hacore.config.model import AutoFailback, Ignored, Link, LinkKind, Location, PingGroup

# Everything a ha.cf needs to be valid, so that each test adds only what it is about.
BASE = "node pc1 pc2\nbcast eth0\nauto_failback on\n"


def read(tmp_path: Path, text: str) -> HaCf:
    path = tmp_path / "ha.cf"
    path.write_text(text)
    return read_hacf(path)


def errors(result: HaCf) -> list[tuple[int, str]]:
    return [(p.location.line, p.message) for p in result.problems if p.severity is Severity.ERROR]


def warnings(result: HaCf) -> list[tuple[int, str]]:
    return [(p.location.line, p.message) for p in result.problems if p.severity is Severity.WARNING]


def test_valid_file_has_no_problems(tmp_path: Path) -> None:
    assert read(tmp_path, BASE).problems == []


# -- lines and tokens


def test_comment_starts_anywhere_on_a_line(tmp_path: Path) -> None:
    result = read(tmp_path, "# a comment\nnode pc1 # pc9\nnode pc2#pc8\nbcast eth0\n")
    assert result.nodes == ["pc1", "pc2"]


def test_leading_white_space_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    result = read(tmp_path, "\n   \n\t node pc1\n  node pc2\nbcast eth0\n")
    assert result.nodes == ["pc1", "pc2"]


def test_crlf_line_endings_are_read(tmp_path: Path) -> None:
    result = read(tmp_path, BASE.replace("\n", "\r\n"))
    assert result.problems == []
    assert result.nodes == ["pc1", "pc2"]


def test_node_line_with_two_names_adds_two_nodes(tmp_path: Path) -> None:
    assert read(tmp_path, "node a b\nbcast eth0\n").nodes == ["a", "b"]


def test_tokens_may_be_separated_by_commas(tmp_path: Path) -> None:
    assert read(tmp_path, "node a,b, c\nbcast eth0\n").nodes == ["a", "b", "c"]


def test_node_names_are_lower_cased(tmp_path: Path) -> None:
    assert read(tmp_path, "node PC1 Pc2\nbcast eth0\n").nodes == ["pc1", "pc2"]


def test_node_listed_twice_is_kept_once_with_a_warning(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "node PC1\n")
    assert result.nodes == ["pc1", "pc2"]
    assert warnings(result) == [(4, "node 'pc1' is listed twice")]


def test_bcast_with_two_interfaces_makes_two_links(tmp_path: Path) -> None:
    result = read(tmp_path, "node a\nbcast eth0 eth1\n")
    assert [(link.kind, link.interface) for link in result.links] == [
        (LinkKind.BCAST, "eth0"),
        (LinkKind.BCAST, "eth1"),
    ]


def test_every_token_is_applied_so_deadtime_10_ms_fails_on_ms(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "deadtime 10 ms\n")
    assert errors(result) == [
        (4, "deadtime: 'ms' is not a time (write the unit next to the number, like '10ms')")
    ]
    assert result.timers.deadtime_ms == 10_000


def test_unknown_directive_suggests_the_nearest_one(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "keepaliv 2\n")
    assert errors(result) == [(4, "unknown directive 'keepaliv' (did you mean 'keepalive'?)")]


def test_unknown_directive_far_from_any_has_no_suggestion(tmp_path: Path) -> None:
    assert errors(read(tmp_path, BASE + "frobnicate 2\n")) == [
        (4, "unknown directive 'frobnicate'")
    ]


def test_directive_names_are_case_sensitive(tmp_path: Path) -> None:
    assert errors(read(tmp_path, BASE + "Deadtime 10\n")) == [
        (4, "unknown directive 'Deadtime' (did you mean 'deadtime'?)")
    ]


def test_directive_without_a_value_does_nothing_and_says_so(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "keepalive\n")
    assert warnings(result) == [(4, "'keepalive' has no value, so this line does nothing")]
    assert result.timers.keepalive_ms == 1000


def test_setting_given_twice_warns_and_the_last_wins(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "keepalive 2\nkeepalive 3\n")
    assert result.timers.keepalive_ms == 3000
    assert warnings(result) == [
        (5, "'keepalive' is set again (first on line 4); the last value wins")
    ]


def test_line_that_is_not_utf8_is_reported_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "ha.cf"
    path.write_bytes(BASE.encode() + b"cluster caf\xe9\n")
    assert errors(read_hacf(path)) == [(4, "this line is not UTF-8 text")]


def test_missing_file_is_one_problem_saying_where_to_look(tmp_path: Path) -> None:
    result = read_hacf(tmp_path / "ha.cf")
    assert not result.readable
    assert [str(p) for p in result.problems] == [
        f"{tmp_path}/ha.cf: not found "
        "(create it or point --config-dir at the directory that holds it)"
    ]


# -- timers


def test_timers_default_like_heartbeat(tmp_path: Path) -> None:
    timers = read(tmp_path, BASE).timers
    assert (timers.keepalive_ms, timers.deadtime_ms) == (1000, 30_000)
    assert (timers.warntime_ms, timers.initdead_ms, timers.deadping_ms) == (15_000, 30_000, 30_000)


def test_warntime_defaults_to_half_of_deadtime(tmp_path: Path) -> None:
    assert read(tmp_path, BASE + "deadtime 9\n").timers.warntime_ms == 4500


def test_deadping_defaults_to_deadtime(tmp_path: Path) -> None:
    assert read(tmp_path, BASE + "deadtime 9\n").timers.deadping_ms == 9000


@pytest.mark.parametrize(
    ("deadtime", "initdead_ms"),
    [
        ("11", 11_000),
        ("10.001", 10_001),
        ("10", 20_000),
        ("6", 12_000),
        ("5.9", 12_000),
        ("3", 12_000),
    ],
)
def test_initdead_derives_from_deadtime(tmp_path: Path, deadtime: str, initdead_ms: int) -> None:
    result = read(tmp_path, BASE + f"keepalive 500ms\ndeadtime {deadtime}\n")
    assert result.problems == []
    assert result.timers.initdead_ms == initdead_ms


def test_written_timers_are_kept(tmp_path: Path) -> None:
    text = BASE + "keepalive 200ms\ndeadtime 2\nwarntime 1500ms\ninitdead 30\ndeadping 5\n"
    timers = read(tmp_path, text).timers
    assert (timers.keepalive_ms, timers.deadtime_ms, timers.warntime_ms) == (200, 2000, 1500)
    assert (timers.initdead_ms, timers.deadping_ms) == (30_000, 5000)


def test_seconds_suffix_is_read_with_a_warning(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "deadtime 12s\n")
    assert result.timers.deadtime_ms == 12_000
    assert warnings(result) == [
        (
            4,
            "deadtime: '12s' is accepted by hacore but Heartbeat 3.0.6 rejects it; "
            "write '12' for a configuration both can read",
        )
    ]


def test_deadtime_must_exceed_twice_keepalive(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "keepalive 1\ndeadtime 2\n")
    assert errors(result) == [
        (
            5,
            "deadtime (2 s) must be more than twice keepalive (1 s): "
            "raise deadtime or lower keepalive",
        )
    ]


def test_deadtime_check_points_at_keepalive_when_deadtime_is_the_default(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "keepalive 15\n")
    assert [line for line, _ in errors(result)] == [4]


def test_keepalive_zero_is_an_error(tmp_path: Path) -> None:
    assert errors(read(tmp_path, BASE + "keepalive 0\n")) == [(4, "keepalive must be more than 0")]


def test_initdead_below_deadtime_is_an_error(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "deadtime 30\ninitdead 20\n")
    assert errors(result) == [(5, "initdead (20 s) must not be less than deadtime (30 s)")]


def test_initdead_below_ten_seconds_is_a_warning(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "deadtime 3\ninitdead 8\n")
    assert errors(result) == []
    assert warnings(result) == [
        (
            5,
            "initdead (8 s) is under 10 s: a peer whose network comes up slowly at boot "
            "may be declared dead",
        )
    ]


def test_warntime_zero_is_an_error(tmp_path: Path) -> None:
    assert errors(read(tmp_path, BASE + "warntime 0\n")) == [(4, "warntime must be more than 0")]


def test_warntime_not_below_deadtime_is_a_warning(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "deadtime 10\nwarntime 10\n")
    assert warnings(result) == [
        (
            5,
            "warntime (10 s) is not below deadtime (10 s), so no late heartbeat "
            "will ever be reported",
        )
    ]


def test_deadping_must_exceed_twice_keepalive(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "keepalive 2\ndeadping 4\n")
    assert errors(result) == [(5, "deadping (4 s) must be more than twice keepalive (2 s)")]


def test_freshness_is_hacores_own_directive_and_warns(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "freshness 60\n")
    assert result.timers.freshness_ms == 60_000
    assert warnings(result) == [
        (4, "'freshness' is hacore's own directive: Heartbeat 3.0.6 refuses a ha.cf that has it")
    ]


# -- required directives


def test_missing_media_is_an_error(tmp_path: Path) -> None:
    result = read(tmp_path, "node pc1\nauto_failback on\n")
    assert errors(result) == [
        (
            0,
            "no heartbeat media: add a 'bcast <interface>' or 'ucast <interface> <peer-ip>' line",
        )
    ]


def test_missing_nodes_is_an_error(tmp_path: Path) -> None:
    result = read(tmp_path, "bcast eth0\nauto_failback on\n")
    assert errors(result) == [(0, "no nodes: add a 'node <name>' line for every cluster member")]


# -- media


def test_udpport_sets_the_port_of_the_bcast_and_ucast_links_after_it(tmp_path: Path) -> None:
    result = read(tmp_path, "udpport 700\nnode a\nbcast eth0\nucast eth1 192.0.2.2\n")
    assert result.udpport == 700
    assert [link.port for link in result.links] == [700, 700]


def test_udpport_after_a_media_line_leaves_those_links_on_the_old_port(tmp_path: Path) -> None:
    # Heartbeat's bcast plugin reads udpport once, at its first line, and keeps it.
    text = "node a\nauto_failback on\nbcast eth0\nudpport 700\nbcast eth1\nucast eth2 192.0.2.2\n"
    result = read(tmp_path, text)
    assert [link.port for link in result.links] == [694, 694, 700]
    assert result.udpport == 700
    assert warnings(result) == [
        (
            4,
            "udpport comes after a bcast/ucast line; those links keep the port that was in "
            "force when their first line was read: move udpport above the media lines",
        )
    ]


@pytest.mark.parametrize("port", ["0", "65536", "694x", "-1"])
def test_udpport_out_of_range_is_an_error(tmp_path: Path, port: str) -> None:
    assert errors(read(tmp_path, BASE + f"udpport {port}\n")) == [
        (4, f"udpport: '{port}' is not a port number (1 to 65535)")
    ]


def test_udp_is_the_old_name_of_bcast(tmp_path: Path) -> None:
    result = read(tmp_path, "node a\nudp eth0\n")
    assert [link.kind for link in result.links] == [LinkKind.BCAST]
    assert (2, "'udp' is Heartbeat's old name for 'bcast'; write 'bcast'") in warnings(result)


def test_interface_name_longer_than_the_kernel_allows_is_an_error(tmp_path: Path) -> None:
    assert errors(read(tmp_path, BASE + "bcast averyveryverylongname\n")) == [
        (
            4,
            "bcast: 'averyveryverylongname' is not a network interface name "
            "(at most 15 characters, no '/')",
        )
    ]


def test_same_link_twice_is_kept_once_with_a_warning(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "bcast eth0\n")
    assert len(result.links) == 1
    assert warnings(result) == [
        (4, "link 'eth0' is already defined on line 2; this one is ignored")
    ]


def test_mcast_line_makes_a_multicast_link(tmp_path: Path) -> None:
    result = read(tmp_path, "node a\nmcast eth1 239.0.0.1 1694 2 1\n")
    at = Location(str(tmp_path / "ha.cf"), 2)
    assert result.links == [Link(LinkKind.MCAST, "eth1", 1694, "239.0.0.1", 2, True, at)]


def test_mcast_takes_its_own_port_not_udpport(tmp_path: Path) -> None:
    result = read(tmp_path, "udpport 700\nnode a\nmcast eth1 239.0.0.1 694 1 0\n")
    assert result.links[0].port == 694


def test_mcast_ttl_above_four_is_an_error(tmp_path: Path) -> None:
    assert errors(read(tmp_path, BASE + "mcast eth1 239.0.0.1 694 5 0\n")) == [
        (4, "mcast: ttl '5' is not a whole number from 0 to 4")
    ]


def test_mcast_loop_must_be_0_or_1(tmp_path: Path) -> None:
    assert errors(read(tmp_path, BASE + "mcast eth1 239.0.0.1 694 1 yes\n")) == [
        (4, "mcast: loop 'yes' is not 0 or 1 (write 0)")
    ]


def test_mcast_group_must_be_a_multicast_address(tmp_path: Path) -> None:
    assert errors(read(tmp_path, BASE + "mcast eth1 10.0.0.1 694 1 0\n")) == [
        (4, "mcast: '10.0.0.1' is not an IPv4 multicast group (224.0.0.0 to 239.255.255.255)")
    ]


def test_mcast_missing_field_is_named(tmp_path: Path) -> None:
    assert errors(read(tmp_path, BASE + "mcast eth1 239.0.0.1\n")) == [
        (
            4,
            "mcast: missing the port (write 'mcast <interface> <group> <port> <ttl> <loop>')",
        )
    ]


def test_words_after_the_mcast_loop_flag_are_ignored_with_a_warning(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "mcast eth1 239.0.0.1 694 1 0 extra\n")
    assert len(result.links) == 2
    assert warnings(result) == [(4, "mcast: 'extra' after the loop flag is ignored")]


def test_mcast6_line_makes_an_ipv6_multicast_link(tmp_path: Path) -> None:
    result = read(tmp_path, "node a\nmcast6 eth0 ff12::1:2:3:4 694 1 0\n")
    link = result.links[0]
    assert (link.kind, link.address) == (LinkKind.MCAST6, "ff12::1:2:3:4")
    assert (link.port, link.ttl, link.loop) == (694, 1, False)


def test_ucast_line_makes_a_unicast_link_to_the_peer(tmp_path: Path) -> None:
    result = read(tmp_path, "node a\nucast eth0 192.0.2.2\n")
    link = result.links[0]
    assert (link.kind, link.interface, link.address, link.port) == (
        LinkKind.UCAST,
        "eth0",
        "192.0.2.2",
        694,
    )
    assert link.name == "ucast:eth0:192.0.2.2"


def test_ucast_peer_must_be_an_ipv4_address(tmp_path: Path) -> None:
    assert errors(read(tmp_path, BASE + "ucast eth0 192.0.2.300\n")) == [
        (4, "ucast: '192.0.2.300' is not an IPv4 address")
    ]


def test_ucast_peer_given_by_name_is_refused_with_a_hint(tmp_path: Path) -> None:
    assert errors(read(tmp_path, BASE + "ucast eth0 pc2\n")) == [
        (4, "ucast: 'pc2' is not an IPv4 address (write the address, not a host name)")
    ]


def test_ucast_without_a_peer_is_an_error(tmp_path: Path) -> None:
    assert errors(read(tmp_path, BASE + "ucast eth0\n")) == [
        (4, "ucast: missing the peer address (write 'ucast <interface> <peer-ip>')")
    ]


def test_second_ucast_peer_on_one_line_is_ignored_with_a_warning(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "ucast eth0 192.0.2.2 192.0.2.3\n")
    assert [link.address for link in result.links] == [None, "192.0.2.2"]
    assert warnings(result) == [
        (
            4,
            "ucast: '192.0.2.3' after the peer address is ignored (write one ucast line per peer)",
        )
    ]


def test_ucast6_peer_may_carry_a_scope(tmp_path: Path) -> None:
    result = read(tmp_path, "node a\nucast6 eth0 fe80::2%eth0\n")
    assert (result.links[0].kind, result.links[0].address) == (LinkKind.UCAST6, "fe80::2%eth0")


# -- ping nodes


def test_ping_adds_one_ping_node_per_address(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "ping 192.0.2.1 192.0.2.254\n")
    assert result.ping_nodes == ["192.0.2.1", "192.0.2.254"]


def test_ping_address_must_be_ipv4(tmp_path: Path) -> None:
    assert errors(read(tmp_path, BASE + "ping gw\n")) == [
        (4, "ping: 'gw' is not an IPv4 address (write the address, not a host name)")
    ]


def test_ping_group_is_one_pseudo_node_with_many_addresses(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "ping_group Routers 192.0.2.1 192.0.2.2\n")
    assert result.ping_groups == [PingGroup("routers", ("192.0.2.1", "192.0.2.2"))]


def test_ping_group_without_addresses_is_an_error(tmp_path: Path) -> None:
    assert errors(read(tmp_path, BASE + "ping_group routers\n")) == [
        (4, "ping_group: missing addresses (write 'ping_group <name> <ip> ...')")
    ]


# -- failback


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("on", AutoFailback.ON),
        ("yes", AutoFailback.ON),
        ("Y", AutoFailback.ON),
        ("true", AutoFailback.ON),
        ("1", AutoFailback.ON),
        ("off", AutoFailback.OFF),
        ("NO", AutoFailback.OFF),
        ("0", AutoFailback.OFF),
        ("legacy", AutoFailback.LEGACY),
        ("Legacy", AutoFailback.LEGACY),
    ],
)
def test_auto_failback_spellings(tmp_path: Path, value: str, expected: AutoFailback) -> None:
    assert read(tmp_path, f"node a\nbcast eth0\nauto_failback {value}\n").auto_failback is expected


def test_auto_failback_left_unset_is_legacy_with_heartbeats_warning(tmp_path: Path) -> None:
    result = read(tmp_path, "node a\nbcast eth0\n")
    assert result.auto_failback is AutoFailback.LEGACY
    assert warnings(result) == [
        (
            0,
            "auto_failback is 'legacy' (the default when it is not set), which Heartbeat "
            "deprecates: write 'auto_failback on' or 'auto_failback off'",
        )
    ]


def test_auto_failback_other_word_is_an_error(tmp_path: Path) -> None:
    assert errors(read(tmp_path, BASE + "auto_failback sometimes\n")) == [
        (4, "auto_failback: 'sometimes' is not on, off or legacy")
    ]


def test_obsolete_nice_failback_on_means_auto_failback_off(tmp_path: Path) -> None:
    result = read(tmp_path, "node a\nbcast eth0\nnice_failback on\n")
    assert result.auto_failback is AutoFailback.OFF
    assert warnings(result) == [
        (
            3,
            "'nice_failback' is obsolete: hacore reads 'nice_failback on' as "
            "'auto_failback off'; write 'auto_failback on' or 'auto_failback off' instead",
        )
    ]


def test_obsolete_nice_failback_off_means_legacy(tmp_path: Path) -> None:
    result = read(tmp_path, "node a\nbcast eth0\nnice_failback off\n")
    assert result.auto_failback is AutoFailback.LEGACY


# -- logging and the rest


def test_logging_directives(tmp_path: Path) -> None:
    text = BASE + "logfile /var/log/ha-log\ndebugfile /var/log/ha-debug\nlogfacility local0\n"
    result = read(tmp_path, text + "debug 3\n")
    assert (result.logfile, result.debugfile, result.logfacility, result.debug) == (
        "/var/log/ha-log",
        "/var/log/ha-debug",
        "local0",
        3,
    )


def test_logfacility_none_means_no_syslog(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "logfacility none\n")
    assert result.problems == []
    assert result.logfacility is None


def test_unknown_logfacility_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    assert errors(read(tmp_path, BASE + "logfacility deamon\n")) == [
        (4, "logfacility: unknown syslog facility 'deamon' (did you mean 'daemon'?)")
    ]


@pytest.mark.parametrize("value", ["256", "-1", "lots"])
def test_debug_level_is_0_to_255(tmp_path: Path, value: str) -> None:
    assert errors(read(tmp_path, BASE + f"debug {value}\n")) == [
        (4, f"debug: '{value}' is not a whole number from 0 to 255")
    ]


def test_realtime_is_a_boolean(tmp_path: Path) -> None:
    assert read(tmp_path, BASE + "realtime off\n").realtime is False
    assert errors(read(tmp_path, BASE + "realtime maybe\n")) == [
        (4, "realtime: 'maybe' is not a boolean (write on/off, yes/no or true/false)")
    ]


def test_hbgenmethod_is_file_or_time(tmp_path: Path) -> None:
    assert read(tmp_path, BASE + "hbgenmethod time\n").hbgenmethod == "time"
    assert errors(read(tmp_path, BASE + "hbgenmethod clock\n")) == [
        (4, "hbgenmethod: 'clock' is not 'file' or 'time'")
    ]


def test_cluster_names_the_cluster(tmp_path: Path) -> None:
    assert read(tmp_path, BASE + "cluster web\n").cluster == "web"


# -- directives hacore does not act on


IGNORED_LINES = [
    "respawn hacluster /usr/lib/heartbeat/ipfail",
    "failfast hacluster /usr/lib/heartbeat/ccm",
    "apiauth ipfail gid=haclient uid=hacluster",
    "pacemaker on",
    "crm respawn",
    "crm_daemon_dir /usr/lib/pacemaker",
    "crmd_spawns_pengine yes",
    "record_config_changes on",
    "record_pengine_inputs on",
    "enable_config_writes on",
    "hopfudge 1",
    "use_logd yes",
    "conn_logd_time 60",
    "rtprio 5",
    "watchdog /dev/watchdog",
    "stonith baytech /etc/ha.d/conf/stonith.baytech",
    "stonith_host * baytech 10.0.0.3 mylogin mysecretpassword",
    "msgfmt netstring",
    "compression bz2",
    "compression_threshold 2",
    "traditional_compression no",
    "coredumps true",
    "coreroot /var/lib/heartbeat/cores",
    "uuidfrom nodename",
    "env TZ=UTC",
    "max_rexmit_delay 250",
    "memreserve 6500",
    "log_badpack true",
    "syslogmsgfmt true",
    "quorum_server quorum.example",
    "use_apphbd no",
    "serial /dev/ttyS0",
    "baud 19200",
    "hbaping fc-card-name",
    "ping6 2001:db8::1",
]


@pytest.mark.parametrize("line", IGNORED_LINES)
def test_other_heartbeat_directives_are_accepted_ignored_and_recorded(
    tmp_path: Path, line: str
) -> None:
    directive, value = line.split(" ", 1)
    result = read(tmp_path, BASE + line + "\n")
    assert errors(result) == []
    assert result.ignored == [Ignored(directive, value, Location(str(tmp_path / "ha.cf"), 4))]
    [(number, message)] = warnings(result)
    assert number == 4
    assert message.startswith(f"'{directive}' is accepted but ignored by hacore (")


def test_pacemaker_warning_says_hacore_manages_the_groups_itself(tmp_path: Path) -> None:
    assert warnings(read(tmp_path, BASE + "pacemaker respawn\n")) == [
        (
            4,
            "'pacemaker' is accepted but ignored by hacore (hacore manages the haresources "
            "groups itself and does not start Pacemaker)",
        )
    ]


def test_autojoin_none_is_ignored(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "autojoin none\n")
    assert errors(result) == []
    assert [i.directive for i in result.ignored] == ["autojoin"]


def test_autojoin_any_is_an_error(tmp_path: Path) -> None:
    assert errors(read(tmp_path, BASE + "autojoin any\n")) == [
        (
            4,
            "'autojoin any' is not supported: list every node with 'node' "
            "(Heartbeat also refuses autojoin with haresources)",
        )
    ]


def test_problems_print_as_file_line_message(tmp_path: Path) -> None:
    result = read(tmp_path, BASE + "keepaliv 2\n")
    problem: Problem = result.problems[0]
    assert str(problem) == (
        f"{tmp_path}/ha.cf:4: unknown directive 'keepaliv' (did you mean 'keepalive'?)"
    )
