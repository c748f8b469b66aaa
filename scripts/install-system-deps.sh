#!/usr/bin/env bash
# Everything outside npm that the tests use: the go command and git (on the machine already),
# and the servers the integration tests start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "install-system-deps: '$1' is required: $2" >&2; exit 1; }; }
need go "install Go 1.22 or newer"
need git "install git"

# redis-server: the lathens tests start their own on a free loopback port (libs/testing
# startRedisServer). Installed from the distribution's packages when missing; needs root, as
# CI has. The package's own service is not used (nor stopped): tests run their own instance.
if ! command -v redis-server >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: 'redis-server' is required: install Redis 6.2 or newer" >&2
    exit 1
  fi
  echo "install-system-deps: installing redis-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  need redis-server "apt-get install redis-server did not put it on PATH"
fi

# PostgreSQL's server (Debian's postgresql): FerretDB's primary backend, which the MongoDB
# storage tests and benchmarks use (libs/storage-mongo/src/testing/postgres-server.ts runs
# initdb and postgres in a temp dir on a free loopback port, as the `postgres` user the package
# creates when the tests run as root). The package's own cluster and service are not used.
has_postgres() {
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1
}
if ! has_postgres; then
  command -v apt-get >/dev/null 2>&1 || { echo "install-system-deps: install the PostgreSQL server (13 or newer)" >&2; exit 1; }
  echo "install-system-deps: installing postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  has_postgres || { echo "install-system-deps: apt-get install postgresql did not install initdb" >&2; exit 1; }
fi

# docker-compose (Debian's v1) validates docker-compose.yml offline, and promtool (in Debian's
# prometheus package) checks the Prometheus configuration: the deployment tests
# (apps/deploy-tests) run both; neither needs a container engine or a running server.
missing=()
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if ((${#missing[@]} > 0)); then
  command -v apt-get >/dev/null 2>&1 || { echo "install-system-deps: install ${missing[*]}" >&2; exit 1; }
  echo "install-system-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  need docker-compose "apt-get install docker-compose did not put it on PATH"
  need promtool "apt-get install prometheus did not put promtool on PATH"
fi

# chromium (Debian's package, at /usr/bin/chromium): the dashboard tests
# (apps/e2e/src/dashboards.e2e.test.ts) drive it headless through playwright-core, which never
# downloads a browser of its own.
if [ ! -x /usr/bin/chromium ]; then
  command -v apt-get >/dev/null 2>&1 || { echo "install-system-deps: install chromium (/usr/bin/chromium)" >&2; exit 1; }
  echo "install-system-deps: installing chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
  [ -x /usr/bin/chromium ] || { echo "install-system-deps: apt-get install chromium did not install /usr/bin/chromium" >&2; exit 1; }
fi

# FerretDB (MongoDB wire protocol, on the PostgreSQL above): no MongoDB server installs on these machines.
# Built once from the Go module proxy into tmp/bin and reused (about 2 minutes cold).
bash scripts/ensure-ferretdb.sh >/dev/null
