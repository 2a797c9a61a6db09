#!/usr/bin/env bash
# A/B of two opale binaries on the production listener (full chain +
# durable trace + upstream), in the same run: on a shared machine only
# figures taken side by side mean anything. Both servers run at once, on
# the same upstream as scripts/bench.sh (a separate nginx serving static
# JSON); oha loads one at a time, keep-alive, C connections, DURATION
# seconds, ROUNDS interleaved rounds (the order alternates). Prints, per
# binary, the median req/s, p99 and server CPU per request (utime+stime of
# the server from /proc), and each round's figures; with perf installed,
# also the server's context switches and CPU migrations per request
# (`perf stat -p`; this VM exposes no hardware counters, so no
# instruction counts).
#
#   scripts/bench-ab.sh OLD_BINARY NEW_BINARY        C=64 DURATION=5 ROUNDS=5
#   C=16 scripts/bench-ab.sh /tmp/before target/release/opale-apim
#   NEWCONN=1 C=16 scripts/bench-ab.sh …   one new mTLS connection per request
#                                          (scripts/bench-newconn.py, never resumed)
#
# Needs oha, nginx, python3, openssl, curl (see scripts/bench.sh).
set -euo pipefail
[ $# = 2 ] || { echo "usage: $0 BINARY_A BINARY_B" >&2; exit 2; }
BINS=("$(realpath "$1")" "$(realpath "$2")")
cd "$(dirname "$0")/.."
C=${C:-64}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-5}
NEWCONN=${NEWCONN:-0}
AUDIT_DURABILITY=${AUDIT_DURABILITY:-before_response}
HERE=$PWD/scripts
export PATH=$HOME/.cargo/bin:$PATH
ulimit -n 65536 2>/dev/null || true
ROOT=$(mktemp -d)
chmod 755 "$ROOT"
PIDS=()
cleanup() {
  set +e
  local p; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  [ -s "$ROOT/up.pid" ] && kill "$(cat "$ROOT/up.pid")" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$ROOT"
}
trap cleanup EXIT
source "$HERE/bench-servers.sh"
UP=$(port)
W=$ROOT start_upstream

declare -a W_OF PORT_OF PID_OF TOK_OF CID_OF
for i in 0 1; do   # one opale per binary, each with its own data and PKI
  W=$ROOT/$i; mkdir -p "$W"; chmod 755 "$W"
  BIN=${BINS[$i]}; SB=$(port); PR=$(port); AD=$(port)
  start_opale
  provision_clients
  W_OF[$i]=$W; PORT_OF[$i]=$PR; PID_OF[$i]=$SERVE_PID; TOK_OF[$i]=$PR_TOK; CID_OF[$i]=$CID
  PIDS+=("$SERVE_PID")
done

cpu() { local t=0 p; for p in "$1" $(pgrep -P "$1" || true); do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo $t; }
TCK=$(getconf CLK_TCK)
load() { # index seconds -> oha-shaped JSON
  local W=${W_OF[$1]}
  local hdr=(-H "Authorization: Bearer ${TOK_OF[$1]}" -H "X-Correlation-ID: ${CID_OF[$1]}")
  if [ "$NEWCONN" = 1 ]; then   # one full (never resumed) handshake per request
    python3 "$HERE/bench-newconn.py" --port "${PORT_OF[$1]}" --path "$URLP" \
      --cert "$W/production.pem" --key "$W/production.key" --ca "$W/certs/ca.pem" \
      -c "$C" -z "$2" "${hdr[@]}"
  else
    oha -z "${2}s" -c "$C" --no-tui --output-format json \
      --cacert "$W/certs/ca.pem" --cert "$W/production.pem" --key "$W/production.key" \
      "${hdr[@]}" "https://localhost:${PORT_OF[$1]}$URLP"
  fi
}
for i in 0 1; do load "$i" 1 >/dev/null; done   # warm-up
: > "$ROOT/results"
for r in $(seq "$ROUNDS"); do
  for k in 0 1; do
    i=$(((k + r) % 2))
    perf stat -x, -e context-switches,cpu-migrations -p "${PID_OF[$i]}" \
      -o "$ROOT/stat" -- sleep "$DURATION" 2>/dev/null &
    STAT=$!
    before=$(cpu "${PID_OF[$i]}")
    out=$(load "$i" "$DURATION")
    after=$(cpu "${PID_OF[$i]}")
    wait "$STAT" || true
    echo "$out" | python3 -c '
import json, sys
i, r, ticks, tck = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
d = json.load(sys.stdin); s = d["summary"]
n = sum(d.get("statusCodeDistribution", {}).values())
ok = d.get("statusCodeDistribution", {}).get("200", 0)
stat = {}
for line in open(sys.argv[5]):
    f = line.strip().split(",")
    if len(f) > 2 and f[0].replace(".", "").isdigit():
        stat[f[2]] = float(f[0])
print(i, r, "%.0f" % s["requestsPerSec"], "%.2f" % (d["latencyPercentiles"]["p99"] * 1000),
      "%.1f" % (ticks / tck * 1e6 / max(n, 1)), n, ok,
      "%.2f" % (stat.get("context-switches", 0) / max(n, 1)),
      "%.3f" % (stat.get("cpu-migrations", 0) / max(n, 1)))
' "$i" "$r" $((after - before)) "$TCK" "$ROOT/stat" \
      | tee -a "$ROOT/results" >&2
  done
done
echo "A/B run of $(date -u +%FT%TZ), C=$C NEWCONN=$NEWCONN DURATION=$DURATION ROUNDS=$ROUNDS AUDIT_DURABILITY=$AUDIT_DURABILITY; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$ROOT/results" "${BINS[@]}" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
print("| binary | req/s median (range) | p99 ms median | CPU µs/req median (range) | context switches/req | migrations/req | non-200 |")
print("|---|---|---|---|---|---|---|")
for i, name in enumerate(sys.argv[2:]):
    mine = [r for r in rows if r[0] == str(i)]
    rps = [float(r[2]) for r in mine]; p99 = [float(r[3]) for r in mine]; cpu = [float(r[4]) for r in mine]
    bad = sum(int(r[5]) - int(r[6]) for r in mine)
    med = lambda k: statistics.median(float(r[k]) for r in mine)
    print(f"| {'AB'[i]}: {name} | {statistics.median(rps):.0f} ({min(rps):.0f}–{max(rps):.0f}) | "
          f"{statistics.median(p99):.2f} | {statistics.median(cpu):.1f} ({min(cpu):.1f}–{max(cpu):.1f}) | "
          f"{med(7):.2f} | {med(8):.3f} | {bad} |")
PY
