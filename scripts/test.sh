#!/usr/bin/env bash
# The whole test suite, with its set-up: lint, types, then every test (unit and namespace labs,
# real Heartbeat included). Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
for p in plugins/*/ examples/*/; do (cd "$p" && "$ROOT/.venv/bin/mypy"); done
echo "== pytest"; exec .venv/bin/pytest "$@"
