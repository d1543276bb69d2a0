"""Fixtures for the real tests: a fresh namespace lab per test, torn down even on failure.

Without root the lab cannot be built and the test FAILS saying so, as hacore's own lab tests do:
CI runs as root, and a skip there would hide a broken lab. Run ``-m "not netns"`` elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hacore.lab.netns import LabError
from ping_lab import PingLab


@pytest.fixture
def lab() -> Iterator[PingLab]:
    try:
        built = PingLab.build()
    except LabError as err:
        problem = str(err)
    else:
        try:
            yield built
        finally:
            built.close()
        return
    pytest.fail(f"cannot build a namespace lab: {problem}", pytrace=False)
