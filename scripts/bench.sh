#!/usr/bin/env bash
# Benchmarks opale-apim against nginx and HAProxy on this machine (issue 9).
# Loopback only, bounded in time (~ROUNDS x 12 x (DURATION + 2) s + ~1 min).
#
# One run measures, on the same upstream (a separate nginx serving a static
# JSON document) and with the same client certificates:
#   production  opale production listener: full chain + trace + proxy
#   sandbox     opale sandbox listener: full chain + trace + generator
#   nginx       nginx terminating the same mTLS (ssl_verify_client on,
#               production CA) and proxying to the upstream
#   haproxy     HAProxy terminating the same mTLS (verify required ca-file)
#               and proxying to the upstream
# in three modes: keep-alive at 16 and 64 connections (oha), and one new
# connection per request at 16 (scripts/bench-newconn.py: full handshakes,
# never resumed; oha would resume, see docs/benchmarks.md), in ROUNDS
# interleaved rounds. It records req/s, p50, p99, server CPU per request
# (utime+stime of the server and its workers), the peak RSS under load and
# the RSS with IDLE_CONNS idle mTLS connections (scripts/idle_conns.py),
# then prints Markdown tables, opale's trail group commits (records per
# fdatasync, its mean duration, from /metrics) and the issue's goal checks
# (scripts/bench-report.py).
#
#   scripts/bench.sh                          DURATION=10 ROUNDS=3
#   DURATION=2 ROUNDS=1 scripts/bench.sh      quick smoke run
#   AUDIT_DURABILITY=async scripts/bench.sh   trace not awaited per response
#   IDLE_CONNS=1000 IDLE_HOLD=5               idle-connection test
#   NEWCONN_CLIENT=oha                        new-conn mode with oha
#                                             --disable-keepalive (resumes)
#
# Needs oha (cargo install oha --locked), nginx, haproxy, python3, openssl,
# curl; installs the missing ones when run as root (apt-get, cargo).
# Stops everything it started on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
AUDIT_DURABILITY=${AUDIT_DURABILITY:-before_response}
IDLE_CONNS=${IDLE_CONNS:-1000}
IDLE_HOLD=${IDLE_HOLD:-5}
NEWCONN_CLIENT=${NEWCONN_CLIENT:-python}
HERE=$PWD/scripts
export PATH=$HOME/.cargo/bin:$PATH

install_missing() {
  local pkgs=() pair
  command -v nginx >/dev/null || pkgs+=(nginx-light)
  for pair in haproxy:haproxy python3:python3 openssl:openssl curl:curl pgrep:procps; do
    command -v "${pair%%:*}" >/dev/null || pkgs+=("${pair#*:}")
  done
  if [ ${#pkgs[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "missing: ${pkgs[*]} (run as root to install)" >&2; exit 1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null \
      || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]/nginx-light/nginx}" >/dev/null
  fi
  command -v oha >/dev/null || cargo install oha --locked
}
install_missing
cargo build --release -q
BIN=$PWD/target/release/opale-apim
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

W=$(mktemp -d)
chmod 755 "$W"   # nginx workers run unprivileged and must read the upstream files
cleanup() {
  set +e
  [ -n "${SAMPLER:-}" ] && kill "$SAMPLER" 2>/dev/null
  [ -n "${SERVE_PID:-}" ] && kill "$SERVE_PID" 2>/dev/null
  [ -n "${HAPROXY_PID:-}" ] && kill "$HAPROXY_PID" 2>/dev/null
  local f; for f in "$W"/px.pid "$W"/up.pid; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
source "$HERE/bench-servers.sh"
SB=$(port); PR=$(port); AD=$(port); UP=$(port); NX=$(port); NXP=$(port); HA=$(port); HAP=$(port)

start_opale
start_upstream
start_nginx
start_haproxy
provision_clients

# --- measurement ------------------------------------------------------------
# utime+stime (clock ticks) and VmRSS (KiB) of a server and its children.
tree() { echo "$1" $(pgrep -P "$1" || true); }
cpu() { local t=0 p; for p in $(tree "$1"); do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo $t; }
rss() { local t=0 p; for p in $(tree "$1"); do t=$((t + $(awk '/^VmRSS/{print $2}' "/proc/$p/status"))); done; echo $t; }
sample_rss() { # pid file: writes the peak summed VmRSS until killed
  local max=0 v; while :; do v=$(rss "$1"); ((v > max)) && { max=$v; echo $max > "$2"; }; sleep 0.25; done
}
TCK=$(getconf CLK_TCK)
declare -A PID_OF PORT_OF ENV_OF TOK_OF
PID_OF=([production]=$SERVE_PID [sandbox]=$SERVE_PID [nginx]=$NGINX_PID [haproxy]=$HAPROXY_PID)
PORT_OF=([production]=$PR [sandbox]=$SB [nginx]=$NX [haproxy]=$HA)
ENV_OF=([production]=production [sandbox]=sandbox [nginx]=production [haproxy]=production)
TOK_OF=([production]=$PR_TOK [sandbox]=$SB_TOK [nginx]=$PR_TOK [haproxy]=$PR_TOK)
TARGETS=(production sandbox nginx haproxy)

load() { # target mode seconds -> oha-shaped JSON on stdout
  local t=$1 mode=$2 secs=$3 env=${ENV_OF[$1]} c=16 extra=()
  local hdr=(-H "Authorization: Bearer ${TOK_OF[$1]}" -H "X-Correlation-ID: $CID")
  case $mode in ka64) c=64 ;; nc16) extra=(--disable-keepalive) ;; esac
  if [ "$mode" = nc16 ] && [ "$NEWCONN_CLIENT" = python ]; then
    timeout $((secs + 60)) python3 "$HERE/bench-newconn.py" --port "${PORT_OF[$t]}" --path "$URLP" \
      --cert "$W/$env.pem" --key "$W/$env.key" --ca "$W/certs/ca.pem" -c "$c" -z "$secs" "${hdr[@]}"
  else
    timeout $((secs + 60)) oha -z "${secs}s" -c "$c" "${extra[@]}" --no-tui --output-format json \
      --cacert "$W/certs/ca.pem" --cert "$W/$env.pem" --key "$W/$env.key" "${hdr[@]}" \
      "https://localhost:${PORT_OF[$t]}$URLP"
  fi
}
trail() { # opale's trail counters: records made durable, flushes, seconds spent in fdatasync
  curl -s --cacert "$W/certs/ca.pem" --cert "$W/certs/admin.pem" --key "$W/certs/admin.key" \
    "https://localhost:$AD/metrics" | awk '
      /^opale_trace_records_written /{r=$2} /^opale_trace_flushes /{f=$2}
      /^opale_trace_flush_seconds /{s=$2} END{print r+0, f+0, s+0}'
}
run() { # round target mode: one measured run, one JSON line in results.jsonl
  local r=$1 t=$2 mode=$3 pid=${PID_OF[$2]} before after out tr=
  rm -f "$W/peak"; sample_rss "$pid" "$W/peak" & SAMPLER=$!
  [ "$pid" = "$SERVE_PID" ] && tr=$(trail)
  before=$(cpu "$pid")
  out=$(load "$t" "$mode" "$DURATION")
  after=$(cpu "$pid")
  [ "$pid" = "$SERVE_PID" ] && tr="$tr $(trail)"
  kill "$SAMPLER"; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=
  python3 "$HERE/bench-report.py" record "$r" "$t" "$mode" "$before" "$after" "$TCK" \
    "$(cat "$W/peak" 2>/dev/null || echo 0)" "$out" "$tr" >> "$W/results.jsonl"
  echo "  round $r $mode $t: $(tail -1 "$W/results.jsonl")" >&2
}

check_resumption
echo "warm-up (1 s per target)" >&2
for t in "${TARGETS[@]}"; do load "$t" ka16 1 >/dev/null; done
for r in $(seq "$ROUNDS"); do
  for mode in ka16 ka64 nc16; do
    for i in 0 1 2 3; do   # rotate the order from round to round
      run "$r" "${TARGETS[$(((i + r - 1) % 4))]}" "$mode"
    done
  done
done
for t in production nginx haproxy; do
  env=${ENV_OF[$t]}
  printf '{"target":"%s","idle":%s}\n' "$t" "$(python3 "$HERE/idle_conns.py" --port "${PORT_OF[$t]}" \
    --cert "$W/$env.pem" --key "$W/$env.key" --ca "$W/certs/ca.pem" --pids "${PID_OF[$t]}" \
    -n "$IDLE_CONNS" --hold "$IDLE_HOLD")" >> "$W/idle.jsonl"
  echo "  idle $t: $(tail -1 "$W/idle.jsonl")" >&2
done
echo
echo "Run of $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), DURATION=$DURATION ROUNDS=$ROUNDS" \
  "AUDIT_DURABILITY=$AUDIT_DURABILITY, new-conn client: $NEWCONN_CLIENT;" \
  "$(oha --version), nginx $(nginx -v 2>&1 | sed 's|.*/||'), HAProxy $(haproxy -v | awk 'NR==1{print $3}')," \
  "$(openssl version | cut -d' ' -f1-2); $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)."
cat "$W/resumption.md"
python3 "$HERE/bench-report.py" report "$W/results.jsonl" "$W/idle.jsonl" "$IDLE_CONNS"
