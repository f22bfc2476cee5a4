#!/usr/bin/env bash
# make bench-load: `make run`'s stack (heliosd in front of real PostgreSQL,
# MariaDB and FerretDB, started by scripts/run.sh) plus Redis behind the
# gateway and PgBouncer beside it, then `helios bench`'s standard suite —
# every protocol under the connect and point workloads, each compared with
# the server itself (and PostgreSQL with PgBouncer too), interleaved in
# turns, then a revoke-storm on every protocol — into one report.
#
# Everything runs on its own loopback ports and data directory, so a
# `make run` already running is left alone. Settings (environment):
#   OUT        report directory (bench-load-report)
#   CELL       measured time per endpoint and cell (15s); WARMUP (2s)
#   CLIENTS    concurrent clients per endpoint (8)
#   BENCH_DATA_DIR  the stack's data directory (./data-bench, kept between runs)
#   BENCH_PORT_BASE first of the gateway's ports (18080: REST; +1 PostgreSQL,
#              +2 MySQL, +3 MongoDB, +4 Redis, +5 PgBouncer, +6 Redis upstream;
#              the upstreams run.sh starts take +7, +8, +9)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
OUT=${OUT:-bench-load-report}
CELL=${CELL:-15s}
WARMUP=${WARMUP:-2s}
CLIENTS=${CLIENTS:-8}
DATA=${BENCH_DATA_DIR:-./data-bench}
mkdir -p "$DATA"
DATA=$(cd "$DATA" && pwd) # absolute: PostgreSQL resolves its socket directory from its data directory
B=${BENCH_PORT_BASE:-18080}
HTTP_PORT=$B PG_PORT=$((B + 1)) MY_PORT=$((B + 2)) MONGO_PORT=$((B + 3)) REDIS_PORT=$((B + 4))
BOUNCER_PORT=$((B + 5)) REDIS_UP_PORT=$((B + 6))
export PG_UPSTREAM_PORT=$((B + 7)) MYSQL_UPSTREAM_PORT=$((B + 8)) MONGO_UPSTREAM_PORT=$((B + 9))
UP="$DATA/upstreams"

say() { echo "make bench-load: $*" >&2; }
pids=()   # what this script started, by PID
stack=""  # scripts/run.sh, leader of its own process group
bouncer="" # PgBouncer (under runuser when root), likewise
cleanup() {
  local p
  # The stack stops as on Ctrl-C in its terminal: SIGINT to its process
  # group reaches run.sh and the servers it started (PostgreSQL runs under
  # runuser, which does not pass a signal on).
  [ -n "$stack" ] && kill -INT -- "-$stack" 2>/dev/null || true
  [ -n "$bouncer" ] && kill -TERM -- "-$bouncer" 2>/dev/null || true
  [ -n "$bouncer" ] && wait "$bouncer" 2>/dev/null || true
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  [ -n "$stack" ] && wait "$stack" 2>/dev/null || true
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in redis-server pgbouncer; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
    say "$tool is missing: apt-get install redis-server pgbouncer (scripts/install-deps.sh installs both)"
    exit 1
  }
done
secret() { head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
waitport() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  say "$2 did not start on 127.0.0.1:$1${3:+; the end of its log ($3):}"
  [ -n "${3:-}" ] && tail -n 20 "$3" >&2
  return 1
}

mkdir -p "$UP/redis" "$OUT"
chmod 700 "$DATA" "$UP" "$UP/redis"

# Redis behind the gateway (make run has none): the default user's
# password only heliosd is given.
[ -s "$UP/redis.password" ] || (umask 077 && secret >"$UP/redis.password")
REDIS_PW=$(cat "$UP/redis.password")
printf 'port %s\nbind 127.0.0.1\nrequirepass %s\ndir %s\nsave ""\nappendonly no\n' \
  "$REDIS_UP_PORT" "$REDIS_PW" "$(cd "$UP/redis" && pwd)" >"$UP/redis/redis.conf"
chmod 600 "$UP/redis/redis.conf"
redis-server "$UP/redis/redis.conf" >"$UP/redis/server.log" 2>&1 &
pids+=($!)
waitport "$REDIS_UP_PORT" Redis "$UP/redis/server.log"
(umask 077 && echo "redis://default:$REDIS_PW@127.0.0.1:$REDIS_UP_PORT/" >"$UP/redis-upstream.url")

# make run's stack on this script's ports.
HELIOSD_ARGS="--http-listen 127.0.0.1:$HTTP_PORT --pg-listen 127.0.0.1:$PG_PORT --mysql-listen 127.0.0.1:$MY_PORT \
--mongo-listen 127.0.0.1:$MONGO_PORT --redis-listen 127.0.0.1:$REDIS_PORT --redis-upstream-file $UP/redis-upstream.url" \
  BIN="$BIN" DATA_DIR="$DATA" setsid ./scripts/run.sh >"$DATA/run.log" 2>&1 &
stack=$!
waitport "$HTTP_PORT" "heliosd (scripts/run.sh)" "$DATA/run.log"
for port in "$PG_PORT" "$MY_PORT" "$MONGO_PORT" "$REDIS_PORT"; do waitport "$port" heliosd "$DATA/run.log"; done
for f in pg-upstream.url mysql-upstream.url mongo-upstream.url; do
  [ -s "$UP/$f" ] || { say "run.sh started no upstream for $f: see $DATA/run.log"; exit 1; }
done
PG_PW=$(cat "$UP/postgres.password")
MY_PW=$(cat "$UP/mariadb.password")
MONGO_PW=$(cat "$UP/ferretdb.password")

# PgBouncer beside the gateway, in front of the same PostgreSQL: session
# pooling with the gateway's pool size (20), as the postgres user when root
# (PgBouncer refuses to run as root).
BDIR="$UP/pgbouncer"
mkdir -p "$BDIR"
cat >"$BDIR/pgbouncer.ini" <<INI
[databases]
main = host=127.0.0.1 port=$PG_UPSTREAM_PORT dbname=main
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $(cd "$BDIR" && pwd)/userlist.txt
pool_mode = session
default_pool_size = 20
max_client_conn = 2000
logfile = $(cd "$BDIR" && pwd)/pgbouncer.log
pidfile = $(cd "$BDIR" && pwd)/pgbouncer.pid
INI
(umask 077 && printf '"postgres" "%s"\n' "$PG_PW" >"$BDIR/userlist.txt")
chmod 600 "$BDIR/pgbouncer.ini"
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
if [ "$(id -u)" -eq 0 ]; then
  chown -R postgres "$BDIR"
  setsid runuser -u postgres -- "$PGBOUNCER" "$BDIR/pgbouncer.ini" >"$BDIR/stdout.log" 2>&1 &
else
  setsid "$PGBOUNCER" "$BDIR/pgbouncer.ini" >"$BDIR/stdout.log" 2>&1 &
fi
bouncer=$!
waitport "$BOUNCER_PORT" PgBouncer "$BDIR/pgbouncer.log"

# An account for the run; its login creates (and revokes) the clients' tokens.
export XDG_CONFIG_HOME="$DATA/cli" HELIOS_API_URL="http://127.0.0.1:$HTTP_PORT"
unset HELIOS_TOKEN
mkdir -p "$XDG_CONFIG_HOME" && chmod 700 "$XDG_CONFIG_HOME"
[ -s "$DATA/bench.password" ] || (umask 077 && secret >"$DATA/bench.password")
EMAIL=bench@example.com
"$BIN/helios" auth signup --email "$EMAIL" <"$DATA/bench.password" >/dev/null 2>&1 || true # taken: signed up before
"$BIN/helios" auth login --email "$EMAIL" <"$DATA/bench.password" >/dev/null

say "gateway on 127.0.0.1:$HTTP_PORT-$REDIS_PORT, PgBouncer on $BOUNCER_PORT; $CELL per endpoint and cell"
COMPARE="direct=postgres://postgres:$PG_PW@127.0.0.1:$PG_UPSTREAM_PORT/main?sslmode=disable"
COMPARE+=",pgbouncer=postgres://postgres:$PG_PW@127.0.0.1:$BOUNCER_PORT/main?sslmode=disable"
COMPARE+=",direct=mysql://root:$MY_PW@127.0.0.1:$MYSQL_UPSTREAM_PORT/main"
COMPARE+=",direct=mongodb://helios:$MONGO_PW@127.0.0.1:$MONGO_UPSTREAM_PORT/main?authSource=admin&directConnection=true"
COMPARE+=",direct=redis://default:$REDIS_PW@127.0.0.1:$REDIS_UP_PORT/0"
status=0
"$BIN/helios" bench --protocol all --workload connect,point,revoke-storm --clients "$CLIENTS" --duration "$CELL" \
  --warmup "$WARMUP" --target "127.0.0.1,pg=127.0.0.1:$PG_PORT,mysql=127.0.0.1:$MY_PORT,mongo=127.0.0.1:$MONGO_PORT,redis=127.0.0.1:$REDIS_PORT,rest=http://127.0.0.1:$HTTP_PORT" \
  --compare "$COMPARE" --report "$OUT" || status=$?
exit $status
