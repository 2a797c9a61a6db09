#!/usr/bin/env bash
# Contract test: schemathesis generates requests from docs/openapi.yaml (the
# partner API) and docs/openapi-admin.yaml (the admin API) and sends them to
# a real `opale-apim serve` on free 127.0.0.1 ports, three runs:
#
#   * the partner API on the sandbox listener (sandbox certificate + token);
#   * the partner API on the production listener (production certificate +
#     token; the upstream is http://127.0.0.1:9, where nothing listens, so
#     data calls that pass the chain answer 502 910602, or 504 910601);
#   * the admin API on the admin listener (admin certificate).
#
# Each answer must carry a status its operation documents
# (status_code_conformance), match the documented schema
# (response_schema_conformance), and be no 5xx but those the run can
# answer by design (not_a_server_error: the sandbox's simulated 504 of
# SIREN 222222226; production's 502/504 of the absent upstream; none on the
# admin API). Phases examples, coverage (every documented status, boundary
# and missing values) and fuzzing; bounded: MAX_EXAMPLES per operation and
# MAX_TIME seconds per run.
#
#   scripts/contract.sh                  (called by scripts/test.sh)
#   MAX_EXAMPLES=50 MAX_TIME=300 scripts/contract.sh     a longer run
#
# Needs python3 (schemathesis is installed with pip when missing), openssl
# and curl. Cleans up its server and temp directory on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# 4.32.5 is the newest 4.x on PyPI (checked 2026-12-07). Its coverage phase
# runs on these documents with one worker: with two, two threads build
# hypothesis's lambda descriptions with ast.parse at once and CPython 3.11
# before 3.11.8 raises "SystemError: AST constructor recursion depth
# mismatch" (python/cpython#106905; the KeyError printed above it is only
# hypothesis's cache miss), which schemathesis reports as a runtime error.
ST_VERSION=4.32.5
MAX_EXAMPLES=${MAX_EXAMPLES:-20}
MAX_TIME=${MAX_TIME:-60}
if [ "$(schemathesis --version 2>/dev/null | awk '{print $NF}')" != "$ST_VERSION" ]; then
  python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi
cargo build --release -q
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/opale-apim
W=$(mktemp -d)
SERVE_PID=
cleanup() { [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$W"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SB=$(port); PR=$(port); AD=$(port)
cat > "$W/opale.toml" <<CFG
data_dir = "$W/data"
certs_dir = "$W/certs"
[sandbox]
listen = "127.0.0.1:$SB"
[production]
listen = "127.0.0.1:$PR"
upstream = "http://127.0.0.1:9"
[admin]
listen = "127.0.0.1:$AD"
[log]
filter = "warn"
CFG
"$BIN" serve --config "$W/opale.toml" > "$W/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 100); do
  curl -s -o /dev/null --cacert "$W/certs/ca.pem" "https://localhost:$SB/opale/v1/etatSante" 2>/dev/null && break
  sleep 0.1
done

A=("$BIN" admin --config "$W/opale.toml" --json)
json() { python3 -c "import json,sys;print(json.load(sys.stdin)[\"$1\"])"; }
PID=$("${A[@]}" partner add --siren 732829320 --name Contract | json id)
GRANTS=()
for scope in declarations comptes_bancaires creances paiements remboursements obligations_fiscales \
             habilitations creances_transmission; do GRANTS+=(--grant "$scope:2015-2025"); done
UNTIL=$(date -u -d '+3 years' +%F)
# An application of `env` granted every scope, its certificate ($W/<env>.pem
# and .key, CSR by openssl, issued by the environment's CA) and a token from
# the environment's listener on `port`; prints the token.
provision() {
  local env=$1 port=$2 cid
  cid=$("${A[@]}" app add --partner "$PID" --name "contract-$env" --env "$env" "${GRANTS[@]}" \
        --valid-from 2025-01-01 --valid-until "$UNTIL" --ip 127.0.0.1/32 --quota 1000000 | json client_id)
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=contract-$env" \
    -keyout "$W/$env.key" -out "$W/$env.csr" 2>/dev/null
  "${A[@]}" cert issue "$cid" --csr "$W/$env.csr" --out "$W/$env.pem" >/dev/null
  curl -sS --cacert "$W/certs/ca.pem" --cert "$W/$env.pem" --key "$W/$env.key" \
    -d grant_type=client_credentials -d client_id="$cid" "https://localhost:$port/token" | json access_token
}
SANDBOX_TOKEN=$(provision sandbox "$SB")
PRODUCTION_TOKEN=$(provision production "$PR")

# One schemathesis configuration per run: the data operations carry the
# run's bearer token and may answer the 5xx its listener answers by design
# (any other 5xx fails the run); 1XX-4XX are left to
# status_code_conformance, which checks each answer against its
# operation's documented statuses. /token gets no bearer token (it would
# be read as a malformed client authentication).
config() { # name, token, 5xx statuses of the data operations... -> file
  local file=$W/$1.toml token=$2 list='"1XX", "2XX", "3XX", "4XX"' s
  shift 2
  for s in "$@"; do list="$list, \"$s\""; done
  cat > "$file" <<TOML
[[operations]]
include-path-regex = "^/opale/v1/entreprises/"
headers = { Authorization = "Bearer $token" }
[operations.checks.not_a_server_error]
expected-statuses = [$list]
TOML
  echo "$file"
}
run() { # config, document, base URL, extra options...
  local config=$1 doc=$2 url=$3 failed=
  shift 3
  schemathesis --no-color --config-file "$config" run "$DOCS/$doc" --url "$url" \
    --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME" --seed 20261129 \
    --phases examples,coverage,fuzzing \
    --checks not_a_server_error,status_code_conformance,response_schema_conformance \
    --workers 1 --tls-verify "$W/certs/ca.pem" --report ndjson --report-ndjson-path "$config.ndjson" "$@" \
    || failed=1
  python3 "$ROOT/scripts/contract-summary.py" "$config.ndjson"
  return "${failed:-0}"
}
status=0
ROOT=$PWD
DOCS=$PWD/docs
CID_HEADER="X-Correlation-ID: 6f1c2a52-8a52-4a4e-9a53-2b1c7d1e9f00"
# The EST operation's application/pkcs10 body (scripts/contract_hooks.py).
export SCHEMATHESIS_HOOKS=contract_hooks PYTHONPATH="$ROOT/scripts${PYTHONPATH:+:$PYTHONPATH}"
cd "$W"   # schemathesis keeps its state (.schemathesis/) in the working directory
echo "contract: partner API (docs/openapi.yaml) on the sandbox listener https://localhost:$SB"
run "$(config sandbox "$SANDBOX_TOKEN" 504)" openapi.yaml "https://localhost:$SB" \
  --request-cert "$W/sandbox.pem" --request-cert-key "$W/sandbox.key" -H "$CID_HEADER" || status=1
echo "contract: partner API (docs/openapi.yaml) on the production listener https://localhost:$PR"
run "$(config production "$PRODUCTION_TOKEN" 502 504)" openapi.yaml "https://localhost:$PR" \
  --request-cert "$W/production.pem" --request-cert-key "$W/production.key" -H "$CID_HEADER" || status=1
echo "contract: admin API (docs/openapi-admin.yaml) on https://localhost:$AD"
# Rotating a secret reads no body but, like every admin POST, needs
# Content-Type: application/json (what the CLI sends); schemathesis sends
# none for an operation without a request body.
cat > "$W/admin.toml" <<TOML
[[operations]]
include-path-regex = "/secret\$"
headers = { Content-Type = "application/json" }
TOML
run "$W/admin.toml" openapi-admin.yaml "https://localhost:$AD" \
  --request-cert "$W/certs/admin.pem" --request-cert-key "$W/certs/admin.key" || status=1
exit $status
