"""notify.toml: where it is found, what it may say, and how a mistake is reported."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from hacore.config.model import ClusterConfig

from hacore_notify.plugin import NotifyPlugin
from hacore_notify.settings import (
    CONFIG_ENV,
    EventKind,
    ExecSettings,
    MailSettings,
    WebhookSettings,
    load_settings,
)

BOTH = frozenset(EventKind)


def write(config: ClusterConfig, text: str) -> Path:
    path = config.source / "notify.toml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(config: ClusterConfig) -> list[str]:
    return NotifyPlugin().hacore_config_validate(config)


def test_no_file_means_no_notifiers_and_no_problem(config: ClusterConfig) -> None:
    assert load_settings(config) == ((), [])


def test_every_kind_is_read_with_its_defaults(config: ClusterConfig) -> None:
    write(
        config,
        """
        [[notifier]]
        kind = "exec"
        command = ["/bin/true", "--page"]

        [[notifier]]
        kind = "webhook"
        name = "chat"
        url = "https://hooks.example.org/hacore"
        timeout = "2500ms"
        events = ["resource"]

        [[notifier]]
        kind = "mail"
        smtp = "mail.example.org:587"
        to = ["ops@example.org"]
        timeout = 3000
        """,
    )

    assert load_settings(config) == (
        (
            ExecSettings("exec #1", BOTH, 5000, ("/bin/true", "--page")),
            WebhookSettings(
                "chat", frozenset({EventKind.RESOURCE}), 2500, "https://hooks.example.org/hacore"
            ),
            MailSettings(
                "mail #3",
                BOTH,
                3000,
                "mail.example.org",
                587,
                "hacore@pc2",
                ("ops@example.org",),
            ),
        ),
        [],
    )


def test_the_smtp_port_defaults_to_25_and_ipv6_is_bracketed(config: ClusterConfig) -> None:
    write(
        config,
        """
        [[notifier]]
        kind = "mail"
        smtp = "[2001:db8::25]"
        from = "cluster@example.org"
        to = ["ops@example.org"]
        """,
    )

    (mail,), _ = load_settings(config)
    assert isinstance(mail, MailSettings)
    assert (mail.host, mail.port, mail.sender) == ("2001:db8::25", 25, "cluster@example.org")


def test_the_file_beside_cluster_toml_is_read(config: ClusterConfig) -> None:
    toml_config = replace(config, source=config.source / "cluster.toml")
    (config.source / "cluster.toml").write_text("")
    write(config, '[[notifier]]\nkind = "webhook"\nurl = "http://127.0.0.1:9/"\n')

    assert [n.name for n in load_settings(toml_config)[0]] == ["webhook #1"]


def test_hacore_notify_config_names_another_file(
    config: ClusterConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(config, '[[notifier]]\nkind = "webhook"\nurl = "http://127.0.0.1:9/"\n')
    other = tmp_path / "elsewhere.toml"
    other.write_text('[[notifier]]\nkind = "exec"\ncommand = ["/bin/true"]\n')
    monkeypatch.setenv(CONFIG_ENV, str(other))

    assert [n.name for n in load_settings(config)[0]] == ["exec #1"]


def test_a_named_file_that_does_not_exist_is_a_problem(
    config: ClusterConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "missing.toml"))

    assert problems(config) == [f"{tmp_path}/missing.toml: not found (named by {CONFIG_ENV})"]


def test_mistakes_are_reported_with_the_file_and_the_notifier(config: ClusterConfig) -> None:
    path = write(
        config,
        """
        [[notifier]]
        kind = "exec"
        command = "/usr/local/bin/notify --all"

        [[notifier]]
        kind = "exec"
        name = "pager"
        command = ["notify-send"]
        timout = "5s"

        [[notifier]]
        kind = "webhok"

        [[notifier]]
        kind = "webhook"
        url = "ftp://example.org/"
        events = ["nodes"]
        timeout = "soon"

        [[notifier]]
        kind = "mail"
        smtp = "mail.example.org:smtp"
        to = "ops@example.org"
        """,
    )

    assert problems(config) == [
        f"{path}: notifier 'exec #1': 'command' must be a list like "
        '["/path/to/script", "arg"]: it is run directly, never through a shell',
        f"{path}: notifier 'pager': unknown key 'timout' (did you mean 'timeout'?)",
        f"{path}: notifier 'pager': the program 'notify-send' must be an absolute path",
        f"{path}: notifier #3: 'kind' must be one of exec, webhook, mail, not 'webhok' "
        "(did you mean 'webhook'?)",
        f"{path}: notifier 'webhook #4': 'events' must be a list of 'node' and 'resource', "
        "not ['nodes']",
        f"{path}: notifier 'webhook #4': 'timeout': 'soon' is not a time (write a number with "
        'a unit: "10s", "500ms"; or an integer of milliseconds)',
        f"{path}: notifier 'webhook #4': 'url' must be an http:// or https:// address, "
        "not 'ftp://example.org/'",
        f"{path}: notifier 'mail #5': 'smtp' must be \"host\" or \"host:port\", "
        "not 'mail.example.org:smtp'",
        f"{path}: notifier 'mail #5': 'to' must be a list of mail addresses, "
        'like ["ops@example.org"]',
    ]
    assert load_settings(config)[0] == ()  # one mistake, and nothing runs


def test_a_program_that_is_not_executable_is_a_problem(config: ClusterConfig) -> None:
    script = config.source / "notify.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    path = write(config, f'[[notifier]]\nkind = "exec"\ncommand = ["{script}"]\n')

    assert problems(config) == [
        f"{path}: notifier 'exec #1': the program '{script}' is not executable (chmod +x it)"
    ]


def test_a_toml_syntax_error_and_an_unknown_section_are_problems(config: ClusterConfig) -> None:
    path = write(config, "[[notifier]\n")
    (syntax,) = problems(config)
    assert syntax.startswith(f"{path}: ")

    write(config, '[notifiers]\nkind = "exec"\n')
    assert problems(config) == [
        f"{path}: unknown section 'notifiers' (did you mean 'notifier'?); "
        "write each notifier as a [[notifier]] table"
    ]


def test_two_notifiers_with_one_name_are_refused(config: ClusterConfig) -> None:
    path = write(
        config,
        """
        [[notifier]]
        kind = "exec"
        name = "ops"
        command = ["/bin/true"]

        [[notifier]]
        kind = "webhook"
        name = "ops"
        url = "http://127.0.0.1:9/"
        """,
    )

    assert problems(config) == [f"{path}: two notifiers are named 'ops'"]
