"""Fixtures for the real tests: a namespace lab, site directories and an event loop in a node,
all torn down even when a test fails (apache instances first, killed by pid)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from apache_lab import ApacheLab, SiteFactory, SiteRegistry, missing_tools
from hacore.lab import Lab
from hacore.lab.nsloop import NamespaceLoop


@pytest.fixture(autouse=True)
def rsctmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Agents' default pid files go to the test's own directory."""
    path = tmp_path / "rsctmp"
    monkeypatch.setenv("HACORE_RSCTMP", str(path))
    return path


@pytest.fixture
def site_registry() -> Iterator[SiteRegistry]:
    registry = SiteRegistry()
    try:
        yield registry
    finally:
        registry.remove()


@pytest.fixture
def sites(site_registry: SiteRegistry) -> SiteFactory:
    """``sites(node, **write_site options)`` writes a site; its apache is killed at teardown."""
    return site_registry.write


@pytest.fixture
def lab(site_registry: SiteRegistry) -> Iterator[ApacheLab]:
    reason = missing_tools()
    if reason:
        # Never a skip: CI installs apache2 and runs as root, so this is a failure.
        pytest.fail(f"real apache tests: {reason} (scripts/bootstrap.sh installs what is missing)")
    built = Lab(prefix=f"hcap-{secrets.token_hex(2)}")
    loops: list[NamespaceLoop] = []
    try:
        yield ApacheLab(built, built.add_host("n1"), built.add_host("cli"), loops)
    finally:
        for loop in loops:
            loop.close()
        # Apache first, by its own pids; then the lab, which deletes the namespaces.
        site_registry.kill_all()
        built.close()


@pytest.fixture
def node(lab: ApacheLab) -> NamespaceLoop:
    """The event loop in n1's namespace: where the agent runs."""
    return lab.loop(lab.node)
