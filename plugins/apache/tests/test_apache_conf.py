"""Reading Apache configurations: the directives the agent needs, as httpd would read them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hacore_apache.conf import Listen, parse_listen, read_config
from hacore_apache.environment import source_envfiles

DEBIAN_CONF = Path("/etc/apache2/apache2.conf")
DEBIAN_ENVVARS = Path("/etc/apache2/envvars")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.skipif(not DEBIAN_CONF.exists(), reason="Debian's apache2 is not installed")
def test_debians_own_configuration_with_its_envvars() -> None:
    env = asyncio.run(source_envfiles([DEBIAN_ENVVARS], {"PATH": "/usr/bin:/bin"}))
    config = read_config(DEBIAN_CONF, env)

    assert config.server_root == Path("/etc/apache2")
    assert config.pid_file == Path("/var/run/apache2/apache2.pid")
    assert config.error_log == Path("/var/log/apache2/error.log")
    assert config.runtime_dir == Path("/var/run/apache2")
    assert config.listens[0] == Listen(None, 80)  # ports.conf, through an Include
    assert config.status_location == "/server-status"  # mods-enabled/status.conf
    assert config.status_url() == "http://127.0.0.1/server-status"
    assert Path("/etc/apache2/ports.conf") in config.files


def test_includes_follow_httpds_order_and_relative_paths(tmp_path: Path) -> None:
    write(tmp_path / "conf.d" / "b.conf", "Listen 8082\n")
    write(tmp_path / "conf.d" / "a.conf", "Listen 8081\n")
    write(tmp_path / "dir" / "sub" / "deep.conf", "Listen 8083\n")
    main = write(
        tmp_path / "httpd.conf",
        f"ServerRoot {tmp_path}\n"
        "Include conf.d/*.conf\n"  # relative to ServerRoot, in alphabetical order
        "IncludeOptional missing/*.conf\n"  # nothing there: fine
        "Include dir\n",  # a directory: every file below it
    )
    config = read_config(main, {})
    assert [listen.port for listen in config.listens] == [8081, 8082, 8083]


def test_an_include_loop_ends(tmp_path: Path) -> None:
    write(tmp_path / "a.conf", f"Include {tmp_path}/b.conf\nListen 81\n")
    write(tmp_path / "b.conf", f"Include {tmp_path}/a.conf\nListen 82\n")
    config = read_config(tmp_path / "a.conf", {})
    assert [listen.port for listen in config.listens] == [82, 81]


def test_variables_come_from_define_then_the_environment(tmp_path: Path) -> None:
    main = write(
        tmp_path / "httpd.conf",
        "Define run /srv/run\n"
        "PidFile ${run}/httpd.pid\n"
        "ErrorLog ${LOGS}/error.log\n"
        "DefaultRuntimeDir ${UNDEFINED}\n",  # httpd keeps it as written (and warns)
    )
    config = read_config(main, {"LOGS": "/srv/logs", "run": "/not/this"})
    assert config.pid_file == Path("/srv/run/httpd.pid")
    assert config.error_log == Path("/srv/logs/error.log")
    assert config.runtime_dir == Path("/etc/apache2/${UNDEFINED}")


def test_relative_paths_follow_httpd_24(tmp_path: Path) -> None:
    main = write(
        tmp_path / "httpd.conf",
        "ServerRoot /srv/www\nDefaultRuntimeDir run\nPidFile httpd.pid\nErrorLog logs/err\n",
    )
    config = read_config(main, {})
    # PidFile is relative to DefaultRuntimeDir, which (like a log) is relative to ServerRoot.
    assert config.pid_file == Path("/srv/www/run/httpd.pid")
    assert config.error_log == Path("/srv/www/logs/err")


def test_defaults_when_the_configuration_says_nothing(tmp_path: Path) -> None:
    config = read_config(write(tmp_path / "httpd.conf", "# nothing\n"), {})
    assert config.pid_file is None
    assert config.error_log == Path("/etc/apache2/logs/error_log")
    assert config.listens == ()
    assert config.status_url() == "http://127.0.0.1/"
    assert config.status_url(8080) == "http://127.0.0.1:8080/"


def test_server_root_from_the_command_line(tmp_path: Path) -> None:
    config = read_config(write(tmp_path / "httpd.conf", "PidFile run/x.pid\n"), {}, tmp_path)
    assert config.pid_file == tmp_path / "logs" / "run" / "x.pid"


def test_continuations_comments_quotes_and_case(tmp_path: Path) -> None:
    main = write(
        tmp_path / "httpd.conf",
        "# Listen 1\n"
        "listen \\\n    8080\n"
        'ERRORLOG "/var/log/my httpd/error.log"\n'
        '<Location "/status">\n'
        "    # SetHandler server-info\n"
        "    SetHandler Server-Status\n"
        "</Location>\n",
    )
    config = read_config(main, {})
    assert config.listens == (Listen(None, 8080),)
    assert config.error_log == Path("/var/log/my httpd/error.log")
    assert config.status_location == "/status"


def test_a_virtual_hosts_error_log_is_not_the_servers(tmp_path: Path) -> None:
    main = write(
        tmp_path / "httpd.conf",
        "<VirtualHost *:443>\n  ErrorLog /var/log/vhost.log\n</VirtualHost>\n"
        "ErrorLog /var/log/main.log\n",
    )
    assert read_config(main, {}).error_log == Path("/var/log/main.log")


def test_piped_and_syslog_logs_cannot_be_read(tmp_path: Path) -> None:
    for value in ('"|/usr/bin/rotatelogs /x 86400"', "syslog:local1"):
        main = write(tmp_path / "httpd.conf", f"ErrorLog {value}\n")
        assert read_config(main, {}).error_log is None


def test_a_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_config(tmp_path / "nowhere.conf", {})


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["80"], Listen(None, 80)),
        (["0.0.0.0:80"], Listen(None, 80)),
        (["*:8080"], Listen(None, 8080)),
        (["198.51.100.100:443"], Listen("198.51.100.100", 443)),
        (["[2001:db8::1]:80"], Listen("2001:db8::1", 80)),
        (["[::]:80"], Listen("::", 80)),
        (["8443", "https"], Listen(None, 8443, "https")),
        (["443", "http"], Listen(None, 443, "http")),
        (["eighty"], None),
        (["70000"], None),
        ([], None),
    ],
)
def test_listen(args: list[str], expected: Listen | None) -> None:
    assert parse_listen(args) == expected


@pytest.mark.parametrize(
    ("listen", "port", "url"),
    [
        ("Listen 80", None, "http://127.0.0.1/server-status"),
        ("Listen 8443 https", None, "https://127.0.0.1:8443/server-status"),
        ("Listen 443", None, "https://127.0.0.1/server-status"),
        ("Listen 198.51.100.100:80", None, "http://198.51.100.100/server-status"),
        ("Listen [::]:80", None, "http://[::1]/server-status"),
        ("Listen 80\nListen 8080", 8080, "http://127.0.0.1:8080/server-status"),
        ("Listen 198.51.100.100:80", 81, "http://198.51.100.100:81/server-status"),
    ],
)
def test_the_default_status_url(tmp_path: Path, listen: str, port: int | None, url: str) -> None:
    text = f"{listen}\n<Location /server-status>\nSetHandler server-status\n</Location>\n"
    config = read_config(write(tmp_path / "httpd.conf", text), {})
    assert config.status_url(port) == url
