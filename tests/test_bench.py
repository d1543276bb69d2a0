"""The benchmark still runs: ``python -m bench --quick`` of one cheap scenario, end to end, in
real namespaces with real hacore and keepalived daemons. Nothing is asserted about the figures
(that is the benchmark's job, not CI's): only that the run completed and wrote its table and its
JSON with samples in them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT = 300.0


def test_quick_failover_benchmark_completes_and_writes_its_table_and_json(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bench", "--quick"),
            *("--scenario", "failover-fast", "--systems", "hacore,keepalived"),
            *("--out", str(tmp_path)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    table = (tmp_path / "table.md").read_text()
    assert "| unplanned failover, fast" in table
    assert table in done.stdout

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["meta"]["quick"] is True
    failovers = {s["system"]: s for s in results["series"] if s["metric"] == "failover_s"}
    assert set(failovers) == {"hacore", "keepalived"}
    for system, series in failovers.items():
        assert series["samples"], f"{system}: no sample; errors: {series['errors']}"
        assert series["command"].startswith("python -m bench --scenario failover-fast")
