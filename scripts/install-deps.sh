#!/usr/bin/env bash
# Installs the client tools the acceptance tests drive, when they are missing:
# Debian packages (psql, the mariadb CLI, redis-cli) and mongosh from npm into
# the project-local .tools folder; and the servers heliosd's proxy mode
# forwards to in tests (PostgreSQL 15, MariaDB, Redis, PgBouncer, and FerretDB
# built from its Go module into .tools/bin), which internal/testupstream starts
# itself in temporary directories on free ports.
# Debian's install scripts may start the packages' own system instances (or
# policy-rc.d may deny it): the tests neither use nor need them. Safe to run
# again: it does nothing when all are present.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
command -v mariadb >/dev/null 2>&1 || need_apt+=(mariadb-client)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v jq >/dev/null 2>&1 || need_apt+=(jq)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_apt+=(postgresql)
[ -x /usr/sbin/mariadbd ] || need_apt+=(mariadb-server)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need_apt+=(redis-server)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || need_apt+=(pgbouncer)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium) # headless, for the web console's tests (e2e/console)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2) # network namespaces for e2e/raft's partition test
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd) # systemd-analyze verify, sysusers, tmpfiles (e2e/ops)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .tools/node_modules/.bin/mongosh ]; then
  command -v npm >/dev/null 2>&1 || { echo "npm is needed to install mongosh" >&2; exit 1; }
  echo "installing mongosh into .tools/"
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --loglevel=error mongosh >/dev/null
fi

# FerretDB 1.24.2, the MongoDB-wire server behind the gateway in tests,
# benchmarks and make run, built from its Go module into .tools/bin.
./scripts/build-ferretdb.sh
