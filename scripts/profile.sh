#!/usr/bin/env bash
# Where opale's CPU goes on the production path: starts the upstream and
# opale as scripts/bench.sh does, loads the production listener with oha
# (keep-alive, C connections, SECS seconds) and records the server with
# `perf record -g`, then prints the top symbols (self time).
#
#   scripts/profile.sh                 C=64 SECS=10
#   C=16 SECS=20 scripts/profile.sh
#   KEEP=/tmp/perf.data scripts/profile.sh   (keeps the recording for perf report -g)
#   CALLGRAPH=dwarf scripts/profile.sh        (call stacks through the release
#                                              binary, which has no frame pointers)
#
# Needs perf (linux-perf), oha, nginx (the upstream), openssl, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
C=${C:-64}
SECS=${SECS:-10}
AUDIT_DURABILITY=${AUDIT_DURABILITY:-before_response}
HERE=$PWD/scripts
export PATH=$HOME/.cargo/bin:$PATH
cargo build --release -q
BIN=$PWD/target/release/opale-apim
ulimit -n 65536 2>/dev/null || true
W=$(mktemp -d)
chmod 755 "$W"
cleanup() {
  set +e
  [ -n "${SERVE_PID:-}" ] && kill "$SERVE_PID" 2>/dev/null
  [ -s "$W/up.pid" ] && kill "$(cat "$W/up.pid")" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
source "$HERE/bench-servers.sh"
SB=$(port); PR=$(port); AD=$(port); UP=$(port)
start_opale
start_upstream
provision_clients
perf record -F "${FREQ:-499}" --call-graph "${CALLGRAPH:-fp}" -o "$W/perf.data" -p "$SERVE_PID" -- sleep "$SECS" >/dev/null 2>&1 &
PERF=$!
oha -z "${SECS}s" -c "$C" --no-tui --output-format json \
  --cacert "$W/certs/ca.pem" --cert "$W/production.pem" --key "$W/production.key" \
  -H "Authorization: Bearer $PR_TOK" -H "X-Correlation-ID: $CID" \
  "https://localhost:$PR$URLP" \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); print("req/s %.0f codes %s" % (d["summary"]["requestsPerSec"], d.get("statusCodeDistribution")))'
wait "$PERF" || true
[ -n "${KEEP:-}" ] && cp "$W/perf.data" "$KEEP"
perf report -i "$W/perf.data" --no-children -g none --sort dso,symbol --stdio 2>/dev/null \
  | grep -v '^#' | grep '%' | sed 's/  */ /g' | cut -c1-140 | head -${TOP:-45}
