#!/usr/bin/env bash
# Set up everything hacore's demo, tests and benchmarks need on a Debian machine, idempotently:
# the Debian packages (installed only when missing) and a virtualenv in .venv with hacore, its
# plugins and the development tools. Sourced by scripts/demo.sh, scripts/test.sh and bench.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

# iproute2/nftables: the namespace labs; heartbeat/keepalived: the peers we interoperate with and
# measure against; apache2/resource-agents/iputils: the services and agents of the scenario.
# mount/passwd: the full-disk test mounts a tmpfs; the local-security test adds a throwaway user.
DEBS=(iproute2 nftables procps util-linux mount passwd iputils-ping iputils-arping tcpdump libxml2-utils
      heartbeat keepalived resource-agents apache2 openssl curl python3-venv)

if [ "$(id -u)" -ne 0 ]; then
  echo "hacore: run this as root (it installs Debian packages and builds network namespaces)" >&2
  exit 1
fi

missing=()
for pkg in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "hacore: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # Package scripts must not start daemons on the host: the labs start their own, in namespaces.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  rm -f /usr/sbin/policy-rc.d
  trap - EXIT
fi

PY="${PYTHON:-python3}"
shopt -s nullglob
manifests=("$ROOT"/pyproject.toml "$ROOT"/plugins/*/pyproject.toml)
stamp="$VENV/.hacore-stamp"
want="$(cat "${manifests[@]}" | sha256sum | cut -c1-16)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "hacore: preparing $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  plugins=()
  for p in "$ROOT"/plugins/*/pyproject.toml; do
    plugins+=(-e "$(dirname "$p")")
  done
  "$VENV/bin/pip" install -q -e "$ROOT[dev]" "${plugins[@]}"
  echo "$want" > "$stamp"
fi
