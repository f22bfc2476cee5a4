#!/usr/bin/env bash
# make run: heliosd with its embedded defaults, every listener on loopback,
# and real databases behind it when this machine has them (or can get them):
# PostgreSQL 15 and MariaDB from Debian's packages, initialised once under
# data/upstreams/ on private loopback ports, started here, stopped when
# heliosd stops (Ctrl-C). Without them heliosd runs its built-in responder
# and this script says how to get them.
#
# Settings (environment): BIN (bin), DATA_DIR (./data), PG_UPSTREAM_PORT
# (54329), MYSQL_UPSTREAM_PORT (33069), MONGO_UPSTREAM_PORT (27019, FerretDB),
# UPSTREAMS=0 to skip the databases,
# HELIOSD_ARGS (more heliosd flags, e.g. other listen addresses).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
# Absolute: PostgreSQL takes a relative socket directory (-k) as relative
# to its own data directory, and the servers run in other directories.
DATA_DIR=$(realpath -m "${DATA_DIR:-./data}")
UP="$DATA_DIR/upstreams"
PG_PORT=${PG_UPSTREAM_PORT:-54329}
MY_PORT=${MYSQL_UPSTREAM_PORT:-33069}
MONGO_PORT=${MONGO_UPSTREAM_PORT:-27019}
FERRETDB=.tools/bin/ferretdb
PGBIN=/usr/lib/postgresql/15/bin
MARIADBD=/usr/sbin/mariadbd

say() { echo "make run: $*" >&2; }
pids=()  # what this script started, by PID …
sigs=()  # … and the signal that stops each quickly
cleanup() {
  local i
  for i in "${!pids[@]}"; do
    kill -"${sigs[$i]}" "${pids[$i]}" 2>/dev/null || true
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$DATA_DIR"
chmod 700 "$DATA_DIR"
args=(--data-dir "$DATA_DIR")

root=0
[ "$(id -u)" -eq 0 ] && root=1

# Install the servers when they are missing and this user may.
if [ "${UPSTREAMS:-1}" = 1 ]; then
  need=()
  [ -x "$PGBIN/postgres" ] || need+=(postgresql)
  [ -x "$MARIADBD" ] || need+=(mariadb-server)
  if [ ${#need[@]} -gt 0 ]; then
    if [ $root = 1 ] && command -v apt-get >/dev/null 2>&1; then
      say "installing ${need[*]} (Debian packages) for real databases behind the gateway"
      apt-get update -qq >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 ||
        say "could not install ${need[*]}: continuing without them"
    else
      say "no ${need[*]}: the gateway runs its built-in responder for them."
      say "  for real databases behind it: sudo apt-get install ${need[*]}, then make run again"
    fi
  fi
fi

secret() { head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# waitport HOST PORT NAME LOG: wait until a server accepts connections.
waitport() {
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  say "$3 did not start; the end of its log ($4):"
  tail -n 20 "$4" >&2 || true
  return 1
}

start_postgres() {
  local dir="$UP/postgres" owner=()
  mkdir -p "$dir"
  if [ $root = 1 ]; then
    # PostgreSQL refuses to run as root: it runs as the postgres user,
    # whose group may traverse the data directory (0710) and nothing more.
    id postgres >/dev/null 2>&1 || { say "no postgres user: PostgreSQL skipped"; return 1; }
    chgrp postgres "$DATA_DIR" "$UP" && chmod 710 "$DATA_DIR" "$UP"
    chown postgres:postgres "$dir" && chmod 700 "$dir"
    owner=(setpriv --reuid=postgres --regid=postgres --init-groups --) # execs: its PID is the server's, signals reach it
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    umask 077
    secret >"$UP/postgres.password"
    cp "$UP/postgres.password" "$dir/pwfile"
    [ $root = 1 ] && chown postgres "$dir/pwfile"
    "${owner[@]}" "$PGBIN/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C.UTF-8 --auth-host=scram-sha-256 \
      --auth-local=peer --pwfile="$dir/pwfile" >"$dir/initdb.log" 2>&1 || { say "initdb failed: see $dir/initdb.log"; return 1; }
    rm -f "$dir/pwfile"
  fi
  "${owner[@]}" "$PGBIN/postgres" -D "$dir/data" -p "$PG_PORT" -k "$dir" -c listen_addresses=127.0.0.1 \
    >"$dir/server.log" 2>&1 &
  pids+=($!) sigs+=(INT) # PostgreSQL's fast shutdown
  waitport 127.0.0.1 "$PG_PORT" PostgreSQL "$dir/server.log" || return 1
  umask 077
  echo "postgres://postgres:$(cat "$UP/postgres.password")@127.0.0.1:$PG_PORT/postgres?sslmode=disable" >"$UP/pg-upstream.url"
  args+=(--pg-upstream-file "$UP/pg-upstream.url")
  say "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT (data in $dir)"
}

start_mariadb() {
  local dir="$UP/mariadb" user=(--user="$(id -un)")
  mkdir -p "$dir" && chmod 700 "$dir"
  local opts=(--no-defaults --datadir="$dir/data" --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid"
    --bind-address=127.0.0.1 --port="$MY_PORT" --skip-log-bin --innodb-buffer-pool-size=64M "${user[@]}")
  local fresh=0
  if [ ! -d "$dir/data/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal --skip-test-db \
      "${user[@]}" >"$dir/install.log" 2>&1 || { say "mariadb-install-db failed: see $dir/install.log"; return 1; }
    fresh=1
  fi
  "$MARIADBD" "${opts[@]}" >"$dir/server.log" 2>&1 &
  pids+=($!) sigs+=(TERM)
  waitport 127.0.0.1 "$MY_PORT" MariaDB "$dir/server.log" || return 1
  if [ $fresh = 1 ]; then
    umask 077
    secret >"$UP/mariadb.password"
    local pw
    pw=$(cat "$UP/mariadb.password")
    mariadb --no-defaults --socket="$dir/mysqld.sock" -u root <<SQL || { say "MariaDB root setup failed"; return 1; }
DELETE FROM mysql.global_priv WHERE NOT (User = 'root' AND Host = 'localhost') AND User <> 'mariadb.sys';
FLUSH PRIVILEGES;
CREATE OR REPLACE USER root@'127.0.0.1' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;
ALTER USER root@localhost IDENTIFIED BY '$pw';
SQL
  fi
  umask 077
  echo "mysql://root:$(cat "$UP/mariadb.password")@127.0.0.1:$MY_PORT/" >"$UP/mysql-upstream.url"
  if "$BIN/heliosd" --help 2>&1 | grep -q -- --mysql-upstream-file; then
    args+=(--mysql-upstream-file "$UP/mysql-upstream.url")
    say "MariaDB $("$MARIADBD" --version | awk '{print $3}') on 127.0.0.1:$MY_PORT (data in $dir)"
  else
    say "MariaDB started on 127.0.0.1:$MY_PORT, but this heliosd has no MySQL proxy mode yet: MySQL clients get the built-in responder"
  fi
}

# FerretDB (a MongoDB-wire server; SQLite files under data/upstreams/ferretdb),
# built once from its Go module by scripts/build-ferretdb.sh, with a SCRAM
# user whose random password only heliosd is given: FerretDB 1.x enforces no
# roles, so the gateway's classifier is the only wall in front of it, and the
# login keeps other local users from going around the gateway.
start_ferretdb() {
  local dir="$UP/ferretdb"
  [ -x "$FERRETDB" ] || ./scripts/build-ferretdb.sh >&2 || { say "could not build FerretDB"; return 1; }
  mkdir -p "$dir/data" && chmod 700 "$dir"
  umask 077
  [ -s "$UP/ferretdb.password" ] || secret >"$UP/ferretdb.password"
  local pw
  pw=$(cat "$UP/ferretdb.password")
  # The password goes in the environment, which only this user can read
  # (the command line is anyone's to see).
  FERRETDB_SETUP_PASSWORD="$pw" "$FERRETDB" --handler=sqlite --sqlite-url="file:$dir/data/" \
    --listen-addr="127.0.0.1:$MONGO_PORT" --state-dir="$dir" --debug-addr=- --telemetry=disable --log-level=warn \
    --test-enable-new-auth --setup-database=admin --setup-username=helios >"$dir/server.log" 2>&1 &
  pids+=($!) sigs+=(TERM)
  waitport 127.0.0.1 "$MONGO_PORT" FerretDB "$dir/server.log" || return 1
  echo "mongodb://helios:$pw@127.0.0.1:$MONGO_PORT/" >"$UP/mongo-upstream.url"
  if "$BIN/heliosd" --help 2>&1 | grep -q -- --mongo-upstream-file; then
    args+=(--mongo-upstream-file "$UP/mongo-upstream.url")
    say "FerretDB $("$FERRETDB" --version | awk '/^version:/ {print $2}') on 127.0.0.1:$MONGO_PORT (data in $dir)"
  else
    say "FerretDB started on 127.0.0.1:$MONGO_PORT, but this heliosd has no MongoDB proxy mode: MongoDB clients get the built-in responder"
  fi
}

if [ "${UPSTREAMS:-1}" = 1 ]; then
  mkdir -p "$UP"
  chmod 700 "$UP"
  [ -x "$PGBIN/postgres" ] && { start_postgres || say "PostgreSQL not started: PostgreSQL clients get the built-in responder"; }
  [ -x "$MARIADBD" ] && { start_mariadb || say "MariaDB not started: MySQL clients get the built-in responder"; }
  if [ -x "$FERRETDB" ] || command -v go >/dev/null 2>&1; then
    start_ferretdb || say "FerretDB not started: MongoDB clients get the built-in responder"
  fi
fi

# shellcheck disable=SC2086 # HELIOSD_ARGS is a list of flags
"$BIN/heliosd" "${args[@]}" ${HELIOSD_ARGS:-} &
pids=("$!" "${pids[@]}") sigs=(TERM "${sigs[@]}")
wait "${pids[0]}"
