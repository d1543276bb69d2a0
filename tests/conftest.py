"""Shared fixtures: namespace labs that are always torn down.

A test that builds namespaces is marked ``@pytest.mark.netns`` (so ``-m "not netns"`` runs the
rest anywhere) and needs root. Without root it FAILS with the reason: CI runs as root, and a
skip there would hide a broken lab.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import pytest

from hacore.lab import Lab, LabError


class LabFactory(Protocol):
    def __call__(
        self,
        prefix: str | None = None,
        subnet: str = "198.51.100.0/24",
        subnet6: str = "2001:db8:1::/64",
    ) -> Lab: ...


@pytest.fixture
def make_lab(request: pytest.FixtureRequest) -> Iterator[LabFactory]:
    """Build labs on demand (several, or with other subnets); every one is closed afterwards."""
    if request.node.get_closest_marker("netns") is None:
        pytest.fail(
            f"{request.node.nodeid} builds namespaces: mark it with @pytest.mark.netns",
            pytrace=False,
        )
    labs: list[Lab] = []

    def make(
        prefix: str | None = None,
        subnet: str = "198.51.100.0/24",
        subnet6: str = "2001:db8:1::/64",
    ) -> Lab:
        try:
            lab = Lab(prefix, subnet, subnet6)
        except LabError as exc:
            problem = str(exc)
        else:
            labs.append(lab)
            return lab
        # Outside the except block, so the report is this one line, not a chained traceback.
        pytest.fail(f"cannot build a namespace lab: {problem}", pytrace=False)

    yield make
    problems: list[str] = []
    for lab in reversed(labs):
        try:
            lab.close()
        except LabError as exc:
            problems.append(str(exc))
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


@pytest.fixture
def lab(make_lab: LabFactory) -> Lab:
    """A fresh lab (198.51.100.0/24, 2001:db8:1::/64), closed when the test ends."""
    return make_lab()
