#!/usr/bin/env bash
# The p99 goal of a stalled PostgreSQL (docs/benchmarks.md, issue 18): data
# calls keep their p99 within STALL_P99_BOUND_MS (default 2) of the same
# calls with PostgreSQL answering. Runs tests/cluster_stall.rs (real
# PostgreSQL, one node, sandbox and production reads in alternating rounds,
# a session holding an exclusive lock on the store's tables during the
# stalled rounds) RUNS times (default 3) with the p99 assertion on, and
# prints each run's figures. Run it on a quiet machine: the figures are
# scheduling noise otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
export STALL_P99_BOUND_MS=${STALL_P99_BOUND_MS:-2}
cargo test --release --test cluster_stall --no-run
failed=0
for i in $(seq 1 "$runs"); do
  echo "run $i/$runs (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  if ! cargo test --release --test cluster_stall -- --nocapture 2>&1 | grep -E 'p50|test result|panicked'; then
    failed=1
  fi
done
exit $failed
