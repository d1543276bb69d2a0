"""ping.toml: the Pacemaker ping parameters, their defaults, and mistakes a person can fix."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hacore.config.model import Auth, AuthKey, AuthMethod, ClusterConfig, Timers

from hacore_ping.plugin import PingPlugin
from hacore_ping.settings import PingSettings, load_settings


@pytest.fixture
def config(tmp_path: Path) -> ClusterConfig:
    return ClusterConfig(
        nodes=("pc1", "pc2"),
        local_node="pc1",
        links=(),
        auth=Auth(1, (AuthKey(1, AuthMethod.SHA256, b"secret"),)),
        timers=Timers(deadping_ms=10_000),
        source=tmp_path,
    )


def test_without_ping_toml_pacemakers_defaults_apply(config: ClusterConfig) -> None:
    assert load_settings(config) == (
        PingSettings(attempts=3, timeout_ms=2000, multiplier=1, dampen_ms=5000, interval_ms=2000),
        [],
    )


def test_the_default_interval_is_half_of_a_short_deadping(config: ClusterConfig) -> None:
    short = replace(config, timers=Timers(deadping_ms=1500))

    assert load_settings(short)[0].interval_ms == 750


def test_every_setting_is_read(config: ClusterConfig) -> None:
    (config.source / "ping.toml").write_text(
        'attempts = 2\ntimeout = "1s"\nmultiplier = 100\ndampen = 0\ninterval = "500ms"\n'
    )

    assert load_settings(config) == (PingSettings(2, 1000, 100, 0, 500), [])


def test_the_file_beside_cluster_toml_is_read(config: ClusterConfig) -> None:
    (config.source / "cluster.toml").write_text("")
    (config.source / "ping.toml").write_text("attempts = 5\n")

    settings, _ = load_settings(replace(config, source=config.source / "cluster.toml"))
    assert settings.attempts == 5


def test_mistakes_are_reported_and_the_defaults_kept(config: ClusterConfig) -> None:
    path = config.source / "ping.toml"
    path.write_text('atempts = 2\nmultiplier = 0\ntimeout = "2 seconds"\ndampen = true\n')

    settings, problems = load_settings(config)

    assert settings == PingSettings(interval_ms=2000)
    assert problems == [
        f"{path}: unknown setting 'atempts' (did you mean 'attempts'?)",
        f"{path}: 'timeout': '2 seconds' is not a time (write a number with a unit: "
        '"10s", "500ms"; or an integer of milliseconds)',
        f"{path}: 'multiplier' must be a whole number from 1 to 1000000",
        f'{path}: \'dampen\' must be a time like "2s" or "500ms", or milliseconds',
    ]


def test_validation_reports_ping_toml_problems(config: ClusterConfig) -> None:
    (config.source / "ping.toml").write_text("interval = 0\n")

    assert PingPlugin().hacore_config_validate(config) == [
        f'{config.source}/ping.toml: \'interval\' must be a time like "2s" or "500ms", '
        "or milliseconds, more than 0"
    ]
