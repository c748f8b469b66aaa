#!/usr/bin/env bash
# Everything outside npm that the tests use: the go command and git (on the machine already),
# and the servers the integration tests start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "install-system-deps: '$1' is required: $2" >&2; exit 1; }; }
need go "install Go 1.22 or newer"
need git "install git"
