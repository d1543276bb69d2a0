"""Fixtures: a cluster configuration whose directory holds the test's notify.toml, and the local
servers the notifiers talk to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hacore.config.model import Auth, AuthKey, AuthMethod, ClusterConfig
from notify_servers import Mailbox, Webhook, smtp_server, webhook_server

from hacore_notify.settings import CONFIG_ENV


@pytest.fixture(autouse=True)
def no_inherited_notify_config(monkeypatch: pytest.MonkeyPatch) -> None:
    # A HACORE_NOTIFY_CONFIG in the environment of whoever runs the tests must not leak in.
    monkeypatch.delenv(CONFIG_ENV, raising=False)


@pytest.fixture
def config(tmp_path: Path) -> ClusterConfig:
    """pc2's configuration, read (as far as notify cares) from ``tmp_path``."""
    return ClusterConfig(
        nodes=("pc1", "pc2"),
        local_node="pc2",
        links=(),
        auth=Auth(1, (AuthKey(1, AuthMethod.SHA256, b"secret"),)),
        cluster="linux-ha",
        source=tmp_path,
    )


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with webhook_server() as hook:
        yield hook


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box
