#!/usr/bin/env bash
# Contract test: schemathesis generates requests from docs/openapi.yaml (the
# partner data API, sandbox listener) and docs/openapi-admin.yaml (the admin
# API) and sends them to a real `opale-apim serve` on free 127.0.0.1 ports,
# with a partner certificate + bearer token + X-Correlation-ID for the data
# API and the admin certificate for the admin API. Fails when a response is
# a 5xx the document does not promise or does not match its documented
# schema. Bounded: a few examples per operation and a time budget per API.
#
#   scripts/contract.sh                  (called by scripts/test.sh)
#   MAX_EXAMPLES=50 MAX_TIME=300 scripts/contract.sh     a longer run
#
# Needs python3 (schemathesis is installed with pip when missing), openssl
# and curl. Cleans up its server and temp directory on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ST_VERSION=4.32.5
MAX_EXAMPLES=${MAX_EXAMPLES:-5}
MAX_TIME=${MAX_TIME:-40}
if [ "$(schemathesis --version 2>/dev/null | awk '{print $NF}')" != "$ST_VERSION" ]; then
  python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi
cargo build --release -q
BIN=$PWD/target/release/opale-apim
W=$(mktemp -d)
SERVE_PID=
cleanup() { [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null; rm -rf "$W"; }
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
PID=$("${A[@]}" partner add --siren 732829320 --name Contract | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
GRANTS=()
for scope in declarations comptes_bancaires creances paiements remboursements obligations_fiscales \
             habilitations creances_transmission; do GRANTS+=(--grant "$scope:2015-2025"); done
CID=$("${A[@]}" app add --partner "$PID" --name contract --env sandbox "${GRANTS[@]}" \
      --valid-from 2025-01-01 --valid-until "$(date -u -d '+3 years' +%F)" --ip 127.0.0.1/32 --quota 1000000 \
      | python3 -c 'import json,sys;print(json.load(sys.stdin)["client_id"])')
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=contract" \
  -keyout "$W/partner.key" -out "$W/partner.csr" 2>/dev/null
"${A[@]}" cert issue "$CID" --csr "$W/partner.csr" --out "$W/partner.pem" >/dev/null
TOKEN=$(curl -s --cacert "$W/certs/ca.pem" --cert "$W/partner.pem" --key "$W/partner.key" \
  -d grant_type=client_credentials -d client_id="$CID" "https://localhost:$SB/token" \
  | python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])')

# Common options: bounded, reproducible, the two checks of the contract.
# The coverage phase is left out: slow on these documents, and this
# schemathesis version fails inside it (KeyError in its coverage walker).
# The sandbox's reserved SIREN 222222226 answers the documented simulated
# 504 (docs/sandbox.md): a 5xx the document promises, not a server error.
cat > "$W/schemathesis.toml" <<TOML
[checks.not_a_server_error]
expected-statuses = ["1XX", "2XX", "3XX", "4XX", "504"]
TOML
ST=(schemathesis --no-color --config-file "$W/schemathesis.toml" run --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME"
    --seed 20261129 --phases examples,fuzzing --checks not_a_server_error,response_schema_conformance --workers 2
    --tls-verify "$W/certs/ca.pem")
status=0
echo "contract: data API (docs/openapi.yaml) on https://localhost:$SB"
DOCS=$PWD/docs
cd "$W"   # schemathesis keeps its state (.schemathesis/) in the working directory
"${ST[@]}" "$DOCS/openapi.yaml" --url "https://localhost:$SB" \
  --request-cert "$W/partner.pem" --request-cert-key "$W/partner.key" \
  -H "Authorization: Bearer $TOKEN" -H "X-Correlation-ID: 6f1c2a52-8a52-4a4e-9a53-2b1c7d1e9f00" || status=1
echo "contract: admin API (docs/openapi-admin.yaml) on https://localhost:$AD"
"${ST[@]}" "$DOCS/openapi-admin.yaml" --url "https://localhost:$AD" \
  --request-cert "$W/certs/admin.pem" --request-cert-key "$W/certs/admin.key" || status=1
exit $status
