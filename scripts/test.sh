#!/usr/bin/env bash
# `npm test`: installs everything the tests need and runs every test of every project.
# The tests start and stop their own servers (git, the go command, Redis, FerretDB) on
# loopback, on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
export NX_DAEMON=false NX_NO_CLOUD=true NX_SKIP_NX_CACHE=true

echo "== install"
if [ -n "${CI:-}" ] || [ ! -f node_modules/.package-lock.json ]; then
  # Exactly the committed lock; install scripts follow package.json's allowScripts.
  npm ci --no-audit --no-fund
fi
bash scripts/install-system-deps.sh

echo "== typecheck"
npx tsc -p tsconfig.json --noEmit

echo "== lint"
npx prettier --check . --log-level warn
npx nx run-many -t lint --outputStyle=stream

echo "== test"
rm -rf tmp/test-results
status=0
npx nx run-many -t test --outputStyle=stream || status=$?
node scripts/test-summary.mjs tmp/test-results || status=$?
exit "$status"
