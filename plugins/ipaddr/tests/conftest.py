"""Fixtures for the real tests: a fresh namespace lab per test, torn down even on failure."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from hacore.lab.nsloop import NamespaceLoop
from ipaddr_lab import Lab, can_build_labs


@pytest.fixture
def lab() -> Iterator[Lab]:
    reason = can_build_labs()
    if reason:
        # Never a skip: CI runs as root with the packages installed, so this is a failure.
        pytest.fail(f"network namespace lab {reason} (run as root after scripts/bootstrap.sh)")
    built = Lab.build()
    try:
        yield built
    finally:
        built.destroy()


@pytest.fixture
def node(lab: Lab) -> Iterator[NamespaceLoop]:
    """An event loop whose thread lives in the lab node's namespace: where the agent runs."""
    with NamespaceLoop(lab.node) as loop:
        yield loop
        # An agent a test dropped may still be alive in a reference cycle (an exception's
        # traceback holds its frames): collect it while the loop runs, so that its netlink
        # socket is closed on the loop (asyncio warns about a transport outliving its loop).
        gc.collect()
