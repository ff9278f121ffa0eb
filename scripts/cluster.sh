#!/usr/bin/env bash
# A Temporal cluster on this machine for issue 13 (work in progress, not yet wired into npm scripts or tests): one
# PostgreSQL (Debian's, run as the postgres user, data under .nestor/cluster/pg), the schemas migrated with the
# embedded ones, and two temporal-server processes with all services each on their own ports, sharing it.
#   bash scripts/cluster.sh start   # then TEMPORAL_ADDRESS=127.0.0.1:7233 (or :7333) for workers and clients
#   bash scripts/cluster.sh stop
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DIR="$STATE/cluster"
PG_PORT="${NESTOR_CLUSTER_PG_PORT:-55432}"
SERVER="$TEMPORAL_SERVER_DIR/temporal-server"
SQL_TOOL="$TEMPORAL_SERVER_DIR/temporal-sql-tool"
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start_postgres() {
  command -v initdb >/dev/null || PATH="$PATH:$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1)"
  command -v initdb >/dev/null || die "PostgreSQL is missing: apt-get install postgresql"
  mkdir -p "$DIR/pg"
  [ "$(id -u)" = 0 ] && chown postgres "$DIR/pg"
  if [ ! -f "$DIR/pg/data/PG_VERSION" ]; then
    as_postgres initdb -D "$DIR/pg/data" -U postgres --auth=trust >"$DIR/pg/initdb.log"
  fi
  if ! as_postgres pg_ctl -D "$DIR/pg/data" status >/dev/null 2>&1; then
    as_postgres pg_ctl -D "$DIR/pg/data" -w -l "$DIR/pg/postgres.log" \
      -o "-p $PG_PORT -k $DIR/pg -c listen_addresses=127.0.0.1" start >/dev/null
  fi
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "select 1 from pg_roles where rolname='temporal'" | grep -q 1 ||
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "create role temporal login password 'temporal' superuser"
}

migrate() {
  local sql=("$SQL_TOOL" --ep 127.0.0.1 -p "$PG_PORT" -u temporal --pw temporal --pl postgres12)
  for pair in temporal:temporal temporal_visibility:visibility; do
    local db=${pair%%:*} schema=${pair##*:}
    if ! psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "select 1 from pg_database where datname='$db'" | grep -q 1; then
      "${sql[@]}" --db "$db" create >/dev/null 2>&1
      "${sql[@]}" --db "$db" setup-schema -v 0.0 >/dev/null 2>&1
    fi
    "${sql[@]}" --db "$db" update-schema -s "postgresql/v12/$schema" >/dev/null 2>&1
  done
}

# One process's config (<dir>/<env>.yaml: server 1.29 reads --root, --config, --env), all four services, ports
# offset by $2 (0 or 100).
config() {
  local name=$1 o=$2
  cat >"$DIR/$name.yaml" <<YAML
log: { stdout: true, level: warn }
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
    default:
      sql: { pluginName: postgres12, databaseName: temporal, connectAddr: "127.0.0.1:$PG_PORT", connectProtocol: tcp,
             user: temporal, password: temporal, maxConns: 20, maxIdleConns: 20, maxConnLifetime: 1h }
    visibility:
      sql: { pluginName: postgres12, databaseName: temporal_visibility, connectAddr: "127.0.0.1:$PG_PORT",
             connectProtocol: tcp, user: temporal, password: temporal, maxConns: 4, maxIdleConns: 4, maxConnLifetime: 1h }
global:
  membership: { maxJoinDuration: 30s, broadcastAddress: "127.0.0.1" }
  pprof: { port: $((7936 + o)) }
  metrics: { prometheus: { framework: tally, timerType: histogram, listenAddress: "127.0.0.1:$((8000 + o))" } }
services:
  frontend: { rpc: { grpcPort: $((7233 + o)), membershipPort: $((6933 + o)), bindOnLocalHost: true, httpPort: $((7243 + o)) } }
  history: { rpc: { grpcPort: $((7234 + o)), membershipPort: $((6934 + o)), bindOnLocalHost: true } }
  matching: { rpc: { grpcPort: $((7235 + o)), membershipPort: $((6935 + o)), bindOnLocalHost: true } }
  worker: { rpc: { grpcPort: $((7239 + o)), membershipPort: $((6939 + o)), bindOnLocalHost: true } }
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active: { enabled: true, initialFailoverVersion: 1, rpcName: frontend, rpcAddress: "127.0.0.1:7233" }
dcRedirectionPolicy: { policy: noop }
dynamicConfigClient: { filepath: "$DIR/dynamic-config.yaml", pollInterval: 10s }
YAML
}

# nestor's dynamic config (src/dev/server.ts NESTOR_DYNAMIC_CONFIG, the same for the dev server).
dynamic_config() {
  cat >"$DIR/dynamic-config.yaml" <<'YAML'
history.maxInFlightUpdates:
  - value: 500
system.enableActivityEagerExecution:
  - value: true
frontend.enableUpdateWorkflowExecution:
  - value: true
YAML
}

wait_serving() {
  for _ in $(seq 1 120); do
    "$TEMPORAL_BIN" operator cluster health --address "127.0.0.1:$1" 2>/dev/null | grep -q SERVING && return 0
    kill -0 "$(cat "$DIR/$2.pid")" 2>/dev/null || die "temporal-server $2 exited: $(tail -c 600 "$DIR/$2.log")"
    sleep 0.5
  done
  die "frontend 127.0.0.1:$1 ($2) not serving after 60 s; see $DIR/$2.log"
}

start() {
  bash "$ROOT/scripts/ensure-temporal-server.sh"
  bash "$ROOT/scripts/ensure-temporal-cli.sh"
  mkdir -p "$DIR"
  start_postgres
  migrate
  dynamic_config
  # One after the other: the first initialises the cluster's metadata in PostgreSQL; two at once race on it
  # (seen: "duplicate key value violates unique constraint cluster_metadata_info_pkey", the second exits).
  for p in a:0 b:100; do
    local name=${p%%:*} o=${p##*:}
    config "$name" "$o"
    if ! { [ -f "$DIR/$name.pid" ] && kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null; }; then
      nohup "$SERVER" --root "$DIR" --config . --env "$name" --allow-no-auth start >"$DIR/$name.log" 2>&1 &
      echo $! >"$DIR/$name.pid"
    fi
    wait_serving $((7233 + o)) "$name"
  done
  "$TEMPORAL_BIN" operator namespace describe --address 127.0.0.1:7233 -n default >/dev/null 2>&1 ||
    "$TEMPORAL_BIN" operator namespace create --address 127.0.0.1:7233 -n default --retention 72h >/dev/null
  # nestor's search attributes (src/shared/constants.ts SEARCH_ATTRIBUTE_KEYS). A namespace just created is not in
  # the frontends' cache yet (about 10 s): creating them fails until it is, so try until they are listed.
  local T=("$TEMPORAL_BIN" operator search-attribute)
  for sa in ConversationId UserId ConversationStatus; do
    for _ in $(seq 1 60); do
      "${T[@]}" list --address 127.0.0.1:7233 -n default 2>/dev/null | grep -qw "$sa" && break
      "${T[@]}" create --address 127.0.0.1:7233 -n default --name "$sa" --type Keyword >/dev/null 2>&1 || sleep 1
    done
    "${T[@]}" list --address 127.0.0.1:7233 -n default | grep -qw "$sa" || die "search attribute $sa not registered"
  done
  log "cluster up: frontends 127.0.0.1:7233 and 127.0.0.1:7333, PostgreSQL 127.0.0.1:$PG_PORT (logs in $DIR)"
}

stop() {
  for name in a b; do
    [ -f "$DIR/$name.pid" ] && kill "$(cat "$DIR/$name.pid")" 2>/dev/null || true
    rm -f "$DIR/$name.pid"
  done
  [ -f "$DIR/pg/data/PG_VERSION" ] && as_postgres pg_ctl -D "$DIR/pg/data" -w stop >/dev/null 2>&1 || true
  log "cluster stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) die "usage: scripts/cluster.sh start|stop" ;;
esac
