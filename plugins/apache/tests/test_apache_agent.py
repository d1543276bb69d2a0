"""The agent without a running apache: meta-data, parameters, command line, missing software."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hacore.agent import (
    ArgumentError,
    ConfigurationError,
    Instance,
    NotInstalledError,
    OCFResult,
)
from hacore.testing import XMLCheckMethod, check_metadata_xml

from hacore_apache.agent import Apache
from hacore_apache.httpd import httpd_argv, summary


def make(**params: str) -> Apache:
    return Apache(Instance("apache", Apache.resolve(params)))


# -- meta-data -----------------------------------------------------------------------------


def test_metadata_is_valid_ocf_xml() -> None:
    checked = check_metadata_xml(Apache.metadata.to_xml())
    assert checked.ok, checked.detail
    if Path("/usr/share/resource-agents/ra-api-1.dtd").exists():
        assert checked.method is XMLCheckMethod.DTD


def test_actions_advertise_ocf_apaches_timeouts() -> None:
    meta = Apache.metadata
    timeouts = {(a.name, a.depth): (a.timeout_ms, a.interval_ms) for a in meta.actions}
    assert timeouts[("start", 0)] == (40_000, 0)
    assert timeouts[("stop", 0)] == (60_000, 0)
    assert timeouts[("monitor", 0)] == (20_000, 10_000)
    assert timeouts[("monitor", 10)][0] == 20_000
    # The core runs the first monitor: the cheap one.
    monitor = meta.action("monitor")
    assert monitor is not None
    assert (monitor.interval_ms, monitor.depth) == (10_000, 0)


def test_defaults_are_debians() -> None:
    assert Apache.resolve({}) == {
        "configfile": "/etc/apache2/apache2.conf",
        "httpd": "/usr/sbin/apache2",
        "testregex": "</ *html *>",
        "envfiles": "/etc/apache2/envvars",
    }


def test_heartbeats_argument_is_the_configuration_file() -> None:
    # haresources: `apache::/etc/apache2/apache2.conf`, as Heartbeat's resource.d/apache took it.
    assert Apache.parse_args(["/srv/web/apache2.conf"]) == {"configfile": "/srv/web/apache2.conf"}
    with pytest.raises(ConfigurationError, match="at most 1 argument"):
        Apache.parse_args(["a", "b"])


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"configfile": "apache2.conf"}, "configfile must be an absolute path"),
        ({"pidfile": "run/x.pid"}, "pidfile must be an absolute path"),
        ({"pidfile": '/run/"x".pid'}, "must not contain a double quote"),
        ({"testregex": "(unclosed"}, "testregex is not a regular expression"),
        ({"statusurl": "ftp://127.0.0.1/"}, "statusurl must be an http:// or https:// URL"),
        ({"statusurl": "http:///server-status"}, "with a host"),
        ({"statusurl": "http://127.0.0.1:99999/"}, "statusurl 'http://127.0.0.1:99999/'"),
        ({"port": "0"}, "port must be between 1 and 65535"),
        ({"port": "eighty"}, "must be an integer"),
        ({"options": "-c 'unbalanced"}, "options cannot be split into words"),
        ({"options": "-DFOREGROUND"}, "keeps httpd in the foreground"),
        ({"options": "-k start -X"}, "keeps httpd in the foreground"),
        ({"client": "wget"}, "unknown parameter 'client'"),
    ],
)
def test_parameters_that_can_never_work_are_configuration_errors(
    params: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        Apache.resolve(params)


# -- the command line ----------------------------------------------------------------------


def test_the_command_line_is_ocfs_without_a_shell() -> None:
    conf = Path("/srv/web/apache2.conf")
    assert httpd_argv(Path("/usr/sbin/apache2"), conf, ["-d", "/srv/web", "-DSSL"]) == [
        "/usr/sbin/apache2",
        "-DSTATUS",
        "-d",
        "/srv/web",
        "-DSSL",
        "-f",
        "/srv/web/apache2.conf",
    ]
    forced = httpd_argv(Path("/usr/sbin/apache2"), conf, [], Path("/run/x y.pid"), test=True)
    assert forced == [
        "/usr/sbin/apache2",
        "-t",
        "-DSTATUS",
        "-f",
        "/srv/web/apache2.conf",
        "-c",
        'PidFile "/run/x y.pid"',
    ]


def test_httpds_words_become_one_line_without_log_prefixes() -> None:
    syntax = (
        "AH00526: Syntax error on line 3 of /srv/apache2.conf:\n"
        "Invalid command 'Bogus', perhaps misspelled\n"
    )
    assert summary(syntax) == (
        "AH00526: Syntax error on line 3 of /srv/apache2.conf: Invalid command 'Bogus', "
        "perhaps misspelled"
    )
    logged = (
        "[Wed Nov 25 14:06:24.784403 2026] [mpm_event:notice] [pid 9:tid 9] AH00489: configured\n"
        "\n"
        "(98)Address already in use: AH00072: make_sock: could not bind to address 0.0.0.0:80\n"
        "[Wed Nov 25 14:06:24.784403 2026] [core:error] [pid 9:tid 9] [client 127.0.0.1:5] x\n"
    )
    assert summary(logged) == (
        "AH00489: configured; (98)Address already in use: AH00072: make_sock: could not bind "
        "to address 0.0.0.0:80; x"
    )
    assert summary("Syntax OK\n") == "no message (see the error log)"


def test_options_are_split_as_a_shell_would_but_no_shell_runs() -> None:
    apache = make(options="-D SSL -C 'ServerName \"my host\"' $(reboot)")
    assert apache.options == ["-D", "SSL", "-C", 'ServerName "my host"', "$(reboot)"]


# -- missing software and configuration ----------------------------------------------------


def test_a_missing_httpd_is_not_installed(tmp_path: Path) -> None:
    conf = tmp_path / "apache2.conf"
    conf.write_text("Listen 80\n")
    apache = make(httpd="/nonexistent/apache2", configfile=str(conf), envfiles="")
    for action in (apache.start, apache.validate):
        with pytest.raises(NotInstalledError, match="install apache2"):
            asyncio.run(action())
    assert asyncio.run(apache.monitor()) is OCFResult.NOT_RUNNING
    asyncio.run(apache.stop())


def test_a_missing_configuration_is_not_installed_here_but_stopped(tmp_path: Path) -> None:
    apache = make(configfile=str(tmp_path / "missing.conf"), httpd="/bin/true", envfiles="")
    with pytest.raises(NotInstalledError, match=r"missing\.conf: No such file"):
        asyncio.run(apache.start())
    # A probe on a node without the configuration: nothing of it can run here.
    assert asyncio.run(apache.monitor()) is OCFResult.NOT_RUNNING
    asyncio.run(apache.stop())


def test_an_envfile_that_fails_is_an_argument_error(tmp_path: Path) -> None:
    conf, envfile = tmp_path / "apache2.conf", tmp_path / "envvars"
    conf.write_text("Listen 80\n")
    envfile.write_text("exit 3\n")
    apache = make(configfile=str(conf), envfiles=str(envfile), httpd="/bin/true")
    with pytest.raises(ArgumentError, match="cannot source"):
        asyncio.run(apache.start())


def test_a_configured_envfile_that_is_missing_fails_validation(tmp_path: Path) -> None:
    conf = tmp_path / "apache2.conf"
    conf.write_text("Listen 80\n")
    apache = make(configfile=str(conf), envfiles=str(tmp_path / "nope"), httpd="/bin/true")
    with pytest.raises(ArgumentError, match=r"envfile .*nope does not exist"):
        asyncio.run(apache.validate())


def test_an_httpd_that_exits_at_once_without_a_pid_file_fails_the_start(tmp_path: Path) -> None:
    # /bin/false plays an httpd that refuses to start and says nothing. Its `-t` fails too,
    # and a failing syntax check is what makes a failed start the configuration's fault.
    conf = tmp_path / "apache2.conf"
    conf.write_text(f"PidFile {tmp_path}/httpd.pid\n")
    apache = make(configfile=str(conf), httpd="/bin/false", envfiles="")
    with pytest.raises(ConfigurationError, match=r"configuration .*apache2\.conf: no message"):
        asyncio.run(apache.start())
