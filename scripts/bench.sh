#!/usr/bin/env bash
# Benchmarks opale-apim on this machine (loopback only, bounded in time).
#
#   scripts/bench.sh            sandbox chain at 16 and 64 keep-alive connections,
#                               then production chain vs nginx terminating the
#                               same mTLS in front of the same upstream
#   DURATION=20 scripts/bench.sh
#   AUDIT_DURABILITY=async scripts/bench.sh   (trace not awaited per response)
#
# Needs: oha (cargo install oha --locked), openssl, curl, nginx (installed
# with apt-get when missing and running as root). Prints a Markdown table
# to paste into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
command -v oha >/dev/null || { echo "oha missing: cargo install oha --locked" >&2; exit 1; }
if ! command -v nginx >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null || apt-get install -y -qq nginx >/dev/null; fi
fi
cargo build --release -q
BIN=$PWD/target/release/opale-apim
W=$(mktemp -d)
chmod 755 "$W"   # nginx workers run unprivileged and must read the upstream files
trap 'kill $(jobs -p) 2>/dev/null; [ -n "${NGINX_PID:-}" ] && kill $NGINX_PID 2>/dev/null; rm -rf "$W"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SB=$(port); PR=$(port); AD=$(port); UP=$(port); NX=$(port)

# --- upstream: nginx serving a static JSON document -------------------------
mkdir -p "$W/up/opale/v1/entreprises/732829320"
printf '{"siren":"732829320","annee":2024,"declarations":[{"formulaire":"2065","montant":"12345.67"}]}' \
  > "$W/up/opale/v1/entreprises/732829320/declarations"
chmod -R a+rX "$W/up"
cat > "$W/nginx.conf" <<NGX
worker_processes auto;
pid $W/nginx.pid;
error_log $W/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  default_type application/json;
  upstream opale_up { server 127.0.0.1:$UP; keepalive 128; }
  server { listen 127.0.0.1:$UP; root $W/up; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$NX ssl;
    ssl_certificate $W/certs/server.pem;
    ssl_certificate_key $W/certs/server.key;
    ssl_client_certificate $W/certs/production-ca.pem;
    ssl_verify_client on;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://opale_up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "";
    }
  }
}
NGX

cat > "$W/opale.toml" <<CFG
data_dir = "$W/data"
certs_dir = "$W/certs"
[sandbox]
listen = "127.0.0.1:$SB"
[production]
listen = "127.0.0.1:$PR"
upstream = "http://127.0.0.1:$UP"
[admin]
listen = "127.0.0.1:$AD"
[audit]
durability = "${AUDIT_DURABILITY:-before_response}"
[log]
filter = "warn"
CFG
"$BIN" serve --config "$W/opale.toml" > "$W/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 100); do curl -s -o /dev/null --cacert "$W/certs/ca.pem" "https://localhost:$SB/opale/v1/etatSante" 2>/dev/null && break; sleep 0.1; done
nginx -c "$W/nginx.conf" -p "$W"
NGINX_PID=$(cat "$W/nginx.pid")

A=("$BIN" admin --config "$W/opale.toml" --json)
PID=$("${A[@]}" partner add --siren 732829320 --name Bench | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
provision() { # env -> client_id, writes $W/<env>.pem/.key
  local env=$1 cid
  cid=$("${A[@]}" app add --partner "$PID" --name "bench-$env" --env "$env" --grant declarations:2020-2025 \
        --valid-from 2025-01-01 --valid-until 2030-12-31 --ip 127.0.0.1/32 --quota 1000000 \
        | python3 -c 'import json,sys;print(json.load(sys.stdin)["client_id"])')
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=bench-$env" \
    -keyout "$W/$env.key" -out "$W/$env.csr" 2>/dev/null
  "${A[@]}" cert issue "$cid" --csr "$W/$env.csr" --out "$W/$env.pem" >/dev/null 2>&1
  echo "$cid"
}
token() { # env port cid
  curl -s --cacert "$W/certs/ca.pem" --cert "$W/$1.pem" --key "$W/$1.key" \
    -d grant_type=client_credentials -d client_id="$3" "https://localhost:$2/token" \
    | python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])'
}
SB_CID=$(provision sandbox); PR_CID=$(provision production)
SB_TOK=$(token sandbox "$SB" "$SB_CID"); PR_TOK=$(token production "$PR" "$PR_CID")
CID=$(python3 -c 'import uuid;print(uuid.uuid4())')
URLP=/opale/v1/entreprises/732829320/declarations?annee=2024

# utime+stime in clock ticks of a process and its children (nginx workers).
cpu() { local t=0 p; for p in "$1" $(pgrep -P "$1"); do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo $t; }
TCK=$(getconf CLK_TCK)
run() { # label env pid url token conns
  local label=$1 env=$2 pid=$3 url=$4 tok=$5 c=$6 before after out
  before=$(cpu "$pid")
  out=$(oha -z "${DURATION}s" -c "$c" --no-tui --output-format json \
        --cacert "$W/certs/ca.pem" --cert "$W/$env.pem" --key "$W/$env.key" \
        -H "Authorization: Bearer $tok" -H "X-Correlation-ID: $CID" "$url")
  after=$(cpu "$pid")
  python3 - "$label" "$c" "$before" "$after" "$TCK" <<PY "$out"
import json, sys
label, c, before, after, tck = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
d = json.loads(sys.argv[6])
s = d["summary"]; p = d["latencyPercentiles"]
codes = d.get("statusCodeDistribution", {})
n = sum(int(v) for v in codes.values())
ok = int(codes.get("200", 0))
cpu_us = (after - before) / tck * 1e6 / max(n, 1)
print(f"| {label} | {c} | {s['requestsPerSec']:.0f} | {p['p50']*1000:.2f} | {p['p99']*1000:.2f} | {cpu_us:.0f} | {ok}/{n} |")
PY
}
echo "| target | conns | req/s | p50 ms | p99 ms | server CPU µs/req | 200/total |"
echo "|---|---|---|---|---|---|---|"
for c in 16 64; do run "opale sandbox (full chain)" sandbox "$SERVE_PID" "https://localhost:$SB$URLP" "$SB_TOK" "$c"; done
for c in 16 64; do
  run "opale production (full chain + proxy)" production "$SERVE_PID" "https://localhost:$PR$URLP" "$PR_TOK" "$c"
  run "nginx mTLS + proxy (no chain)" production "$NGINX_PID" "https://localhost:$NX$URLP" "$PR_TOK" "$c"
done
