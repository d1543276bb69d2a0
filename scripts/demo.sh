#!/usr/bin/env bash
# The main job: a live two-node hacore cluster in network namespaces on this machine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
exec "$ROOT/.venv/bin/hactl" demo "$@"
