#!/usr/bin/env bash
# The cluster row of the benchmark (issue 12): two opale-apim nodes on one
# PostgreSQL (registry + trail) and one Redis (quota), behind the same load
# generator, measured in the same run as one embedded node (sled, local
# quota) and nginx, on the same upstream and client certificates as
# scripts/bench.sh (whose functions it reuses from scripts/bench-servers.sh).
#
# Each round runs, in rotating order, DURATION seconds of keep-alive load
# on the production listener (full chain + durable trace + proxy):
#   cluster  two oha processes at once, CONNS connections each, one per node
#   single   one oha, 2 x CONNS connections, on the embedded node
#   nginx    one oha, 2 x CONNS connections, nginx mTLS + proxy
# and records req/s (summed over the two oha of the cluster), p99 (the
# larger of the two), CPU per call (utime+stime from /proc of: both opale
# nodes; every PostgreSQL process; redis-server; the embedded node;
# nginx's master and workers) and PostgreSQL transactions per call
# (pg_stat_database) and Redis scripts per call (INFO commandstats), then
# prints a Markdown table of medians.
#
#   scripts/bench-cluster.sh                     DURATION=10 ROUNDS=3 CONNS=32
#   DURATION=2 ROUNDS=1 scripts/bench-cluster.sh  smoke run
#   PG_FSYNC=off                                 PostgreSQL without fsync
#   QUOTA=local                                  cluster nodes count quota in-process
#                                                (separates Redis's cost from the trail's)
#   OPALE_BIN=path                               run that binary (no build)
#   TRAIL_WAIT=postgres                          responses also wait for their record's
#                                                commit in PostgreSQL (default disk)
#   PROFILE=1                                    instead of the rounds: perf record of
#                                                node-a, PostgreSQL and Redis during DURATION
#                                                seconds of cluster load; prints the top
#                                                symbols of each (self time) and PostgreSQL's
#                                                statements by time (pg_stat_statements), and exits;
#                                                CALLGRAPH="--call-graph dwarf" for node-a's stacks
#   PROFILE=single                               the same (perf record only) of the embedded node
#                                                under its load
#
# Needs what scripts/bench.sh needs plus PostgreSQL (Debian's postgresql:
# initdb/postgres, run as the postgres user when root) and redis-server.
# Everything binds 127.0.0.1; stops everything it started on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
PG_FSYNC=${PG_FSYNC:-on}
QUOTA=${QUOTA:-redis}
TRAIL_WAIT=${TRAIL_WAIT:-disk}
AUDIT_DURABILITY=before_response
HERE=$PWD/scripts
export PATH=$HOME/.cargo/bin:$PATH
for tool in oha nginx redis-server redis-cli openssl curl python3 pgrep; do
  command -v "$tool" >/dev/null || { echo "missing: $tool (see scripts/bench.sh, scripts/test.sh)" >&2; exit 1; }
done
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/postgres" ] || { echo "missing: PostgreSQL (Debian's postgresql)" >&2; exit 1; }
if [ -n "${OPALE_BIN:-}" ]; then BIN=$OPALE_BIN; else cargo build --release -q; BIN=$PWD/target/release/opale-apim; fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

W=$(mktemp -d)
chmod 755 "$W"
cleanup() {
  set +e
  # What the nodes warned about during the run (late shipping, Redis down…).
  grep -h -E '"level":"(WARN|ERROR)"|WARN|ERROR' "$W"/node-*.log 2>/dev/null | sort | uniq -c | sort -rn | head -5 >&2
  local p; for p in ${NODE_PIDS:-} ${SERVE_PID:-} ${REDIS_PID:-}; do kill "$p" 2>/dev/null; done
  [ -s "$W/pg/data/postmaster.pid" ] && kill -INT "$(head -1 "$W/pg/data/postmaster.pid")" 2>/dev/null
  local f; for f in "$W"/px.pid "$W"/up.pid; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
source "$HERE/bench-servers.sh"
SB=$(port); PR=$(port); AD=$(port); UP=$(port); NX=$(port); NXP=$(port); PGP=$(port); RDP=$(port)

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start_postgres() { # private cluster in $W/pg, database opale
  mkdir -p "$W/pg"; [ "$(id -u)" = 0 ] && chown postgres: "$W/pg"
  as_postgres "$PGBIN/initdb" -D "$W/pg/data" -U postgres --auth=trust -E UTF8 >/dev/null
  as_postgres "$PGBIN/postgres" -D "$W/pg/data" -p "$PGP" -k "$W/pg" \
    -c listen_addresses=127.0.0.1 -c fsync="$PG_FSYNC" \
    ${PROFILE:+-c shared_preload_libraries=pg_stat_statements} > "$W/pg/log" 2>&1 &
  PG_PID=$!
  local _; for _ in $(seq 100); do
    if as_postgres psql -h 127.0.0.1 -p "$PGP" -U postgres -qc 'CREATE DATABASE opale' 2>/dev/null; then
      [ -n "${PROFILE:-}" ] && as_postgres psql -h 127.0.0.1 -p "$PGP" -U postgres -d opale -qc \
        'CREATE EXTENSION pg_stat_statements' >/dev/null
      return 0
    fi
    sleep 0.2
  done
  echo "postgres did not start:" >&2; cat "$W/pg/log" >&2; exit 1
}

start_redis() {
  redis-server --port "$RDP" --bind 127.0.0.1 --save "" --appendonly no > "$W/redis.log" 2>&1 &
  REDIS_PID=$!
}

# One OAuth issuer (public_url) for both nodes, as behind a load balancer:
# a token from either node is valid on the other (each node signs with its
# own key, registered in PostgreSQL; nothing is copied but certs_dir).
start_node() { # name: writes $W/<name>.toml, starts serve, sets PR_<name>, AD_<name>
  local n=$1 sb pr ad
  sb=$(port); pr=$(port); ad=$(port)
  { cat <<CFG
data_dir = "$W/$n"
certs_dir = "$W/certs"
[sandbox]
listen = "127.0.0.1:$sb"
public_url = "https://sandbox.opale-cluster.invalid"
[production]
listen = "127.0.0.1:$pr"
public_url = "https://api.opale-cluster.invalid"
upstream = "http://127.0.0.1:$UP"
CFG
    opale_common "$ad"
    cat <<CFG
[store]
backend = "postgres"
url = "postgres://postgres@127.0.0.1:$PGP/opale"
[quota]
backend = "$QUOTA"
url = "redis://127.0.0.1:$RDP/0"
[cluster]
node_id = "$n"
trail_wait = "$TRAIL_WAIT"
CFG
  } > "$W/$n.toml"
  "$BIN" serve --config "$W/$n.toml" > "$W/$n.log" 2>&1 &
  NODE_PIDS="${NODE_PIDS:-} $!"
  wait_opale "$sb" "$W/$n.log"
  printf -v "PR_${n//-/_}" %s "$pr"
  printf -v "AD_${n//-/_}" %s "$ad"
}

provision_cluster() { # the production application in the cluster, through node-a
  local cw=$W/cluster
  mkdir -p "$cw"; ln -s "$W/certs" "$cw/certs"
  (
    A=("$BIN" admin --config "$W/node-a.toml" --json)
    W=$cw   # provision and token write and read the client files here
    PARTNER=$("${A[@]}" partner add --siren 732829320 --name BenchCluster \
      | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
    cid=$(provision production)
    local _ tok=
    for _ in $(seq 50); do   # node-b applies the new application within 1 s
      tok=$(token production "$PR_node_b" "$cid" 2>/dev/null) && break
      sleep 0.1
    done
    [ -n "$tok" ] || { echo "node-b does not know the application" >&2; exit 1; }
    echo "$tok" > "$W/token"
  )
  CL_TOK=$(cat "$cw/token")
}

start_opale           # the embedded node (sled, local quota), dev PKI in $W/certs
start_upstream
start_nginx
provision_clients     # its applications and the tokens of scripts/bench.sh
start_postgres
start_redis
start_node node-a
start_node node-b
provision_cluster

# --- measurement ------------------------------------------------------------
TCK=$(getconf CLK_TCK)
ticks() { # pids... -> summed utime+stime of those processes (all threads)
  local t=0 p; for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo $t
}
pg_pids() { local m; m=$(head -1 "$W/pg/data/postmaster.pid"); echo "$m $(pgrep -P "$m")"; }
nginx_pids() { echo "$NGINX_PID $(pgrep -P "$NGINX_PID")"; }
oha_json() { # port cert-dir token conns -> oha JSON
  timeout $((DURATION + 60)) oha -z "${DURATION}s" -c "$4" --no-tui --output-format json \
    --cacert "$W/certs/ca.pem" --cert "$2/production.pem" --key "$2/production.key" \
    -H "Authorization: Bearer $3" -H "X-Correlation-ID: $CID" "https://localhost:$1$URLP"
}
xacts() { # transactions committed in database opale so far
  as_postgres psql -h 127.0.0.1 -p "$PGP" -U postgres -d opale -Atc \
    "SELECT xact_commit FROM pg_stat_database WHERE datname = 'opale'"
}
scripts() { # EVALSHA calls Redis ran so far (the quota's and the abuse detector's)
  redis-cli -p "$RDP" info commandstats | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\).*/\1/p' | grep . || echo 0
}
run() { # round target -> one JSON line in $W/cluster.jsonl
  local r=$1 t=$2 nodes pg rd single nx tx sc
  tx=$(xacts); sc=$(scripts)
  nodes=$(ticks $NODE_PIDS); pg=$(ticks $(pg_pids)); rd=$(ticks "$REDIS_PID")
  single=$(ticks "$SERVE_PID"); nx=$(ticks $(nginx_pids))
  case $t in
    cluster)
      oha_json "$PR_node_a" "$W/cluster" "$CL_TOK" "$CONNS" > "$W/o1.json" &
      oha_json "$PR_node_b" "$W/cluster" "$CL_TOK" "$CONNS" > "$W/o2.json"
      wait $! ;;
    single) oha_json "$PR" "$W" "$PR_TOK" $((2 * CONNS)) > "$W/o1.json"; echo '{}' > "$W/o2.json" ;;
    nginx) oha_json "$NX" "$W" "$PR_TOK" $((2 * CONNS)) > "$W/o1.json"; echo '{}' > "$W/o2.json" ;;
  esac
  local ticks_after=("$(ticks $NODE_PIDS)" "$(ticks $(pg_pids))" "$(ticks "$REDIS_PID")" \
    "$(ticks "$SERVE_PID")" "$(ticks $(nginx_pids))")
  sc="$sc $(scripts)"
  sleep 1.2; tx="$tx $(xacts)"   # backends flush their statistics at most once a second
  python3 "$HERE/bench-cluster-report.py" record "$r" "$t" "$TCK" "$tx" "$sc" \
    "$nodes ${ticks_after[0]}" "$pg ${ticks_after[1]}" "$rd ${ticks_after[2]}" \
    "$single ${ticks_after[3]}" "$nx ${ticks_after[4]}" "$W/o1.json" "$W/o2.json" \
    >> "$W/cluster.jsonl"
  echo "  round $r $t: $(tail -1 "$W/cluster.jsonl")" >&2
}

echo "warm-up (1 s per target)" >&2
( DURATION=1; oha_json "$PR_node_a" "$W/cluster" "$CL_TOK" 4; oha_json "$PR_node_b" "$W/cluster" "$CL_TOK" 4
  oha_json "$PR" "$W" "$PR_TOK" 4; oha_json "$NX" "$W" "$PR_TOK" 4 ) >/dev/null
if [ "${PROFILE:-}" = single ]; then
  command -v perf >/dev/null || { echo "missing: perf (Debian's linux-perf)" >&2; exit 1; }
  perf record -F "${FREQ:-499}" ${CALLGRAPH:--g} -o "$W/single.data" -p "$SERVE_PID" -- sleep "$DURATION" >/dev/null 2>&1 &
  P1=$!
  oha_json "$PR" "$W" "$PR_TOK" $((2 * CONNS)) > "$W/o1.json"
  wait $P1 2>/dev/null || true
  echo "== single: $(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["summary"]["requestsPerSec"])' "$W/o1.json") req/s"
  [ -n "${KEEP:-}" ] && mkdir -p "$KEEP" && cp "$W"/single.data "$KEEP"/
  exit 0
fi
if [ -n "${PROFILE:-}" ]; then
  command -v perf >/dev/null || { echo "missing: perf (Debian's linux-perf)" >&2; exit 1; }
  node_a=${NODE_PIDS# }; node_a=${node_a%% *}
  perf record -F "${FREQ:-499}" ${CALLGRAPH:--g} -o "$W/node.data" -p "$node_a" -- sleep "$DURATION" >/dev/null 2>&1 &
  P1=$!
  perf record -F "${FREQ:-499}" -g -o "$W/pg.data" -p "$(pg_pids | tr -s ' \n' ',' | sed 's/,$//')" -- sleep "$DURATION" >/dev/null 2>&1 &
  P2=$!
  perf record -F "${FREQ:-499}" -g -o "$W/redis.data" -p "$REDIS_PID" -- sleep "$DURATION" >/dev/null 2>&1 &
  P3=$!
  oha_json "$PR_node_a" "$W/cluster" "$CL_TOK" "$CONNS" > "$W/o1.json" &
  oha_json "$PR_node_b" "$W/cluster" "$CL_TOK" "$CONNS" > "$W/o2.json"
  wait $P1 $P2 $P3 2>/dev/null || true
  set +o pipefail
  for d in node pg redis; do
    echo "== $d: samples $(perf report -i "$W/$d.data" --stdio 2>/dev/null | sed -n 's/^# Samples: \([^ ]*\).*/\1/p' | head -1); by thread"
    perf report -i "$W/$d.data" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -12
    echo "== $d: top symbols (self time, % of its samples)"
    perf report -i "$W/$d.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
      | grep -E '^ +[0-9]' | head -"${TOP:-40}"
  done
  echo "== pg: statements by total execution time"
  as_postgres psql -h 127.0.0.1 -p "$PGP" -U postgres -d opale -c \
    "SELECT calls, round(total_exec_time::numeric, 1) AS ms, rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS query
     FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12"
  [ -n "${KEEP:-}" ] && mkdir -p "$KEEP" && cp "$W"/*.data "$KEEP"/
  exit 0
fi
TARGETS=(cluster single nginx)
for r in $(seq "$ROUNDS"); do
  for i in 0 1 2; do run "$r" "${TARGETS[$(((i + r - 1) % 3))]}"; done
done
echo
echo "Run of $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), DURATION=$DURATION ROUNDS=$ROUNDS" \
  "CONNS=$CONNS (x2) PG_FSYNC=$PG_FSYNC QUOTA=$QUOTA TRAIL_WAIT=$TRAIL_WAIT; $(oha --version), nginx $(nginx -v 2>&1 | sed 's|.*/||')," \
  "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), Redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/');" \
  "$(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)."
python3 "$HERE/bench-cluster-report.py" report "$W/cluster.jsonl" "$CONNS" "$QUOTA"
