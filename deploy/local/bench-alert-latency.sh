#!/usr/bin/env bash
# Event-to-alert latency of the whole pipeline, on the local stack: a second
# collector (deploy/local/collector.yaml + deploy/local/latency/collector.yaml:
# its own ports and database, one queue_depth rule evaluated every 15 s)
# receives probe events from dtloadgen, which times each one until its alert
# is listed by the local Alertmanager.
#
#   deploy/local/demo.sh                 # once: ClickHouse and Alertmanager
#   deploy/local/bench-alert-latency.sh  # PROBES=8 by default
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"
home="${DECISIONTRACE_HOME:-$HOME/.decisiontrace}"
am="${DECISIONTRACE_ALERTMANAGER_URL:-http://127.0.0.1:19093}"
mkdir -p bin "$home/logs"
go build -o bin/ ./cmd/decisiontrace ./cmd/dtloadgen ./cmd/dtlocal
bin/dtlocal up >/dev/null

log="$home/logs/collector-latency.log"
GOMEMLIMIT="${GOMEMLIMIT:-300MiB}" DECISIONTRACE_QUEUE_DIR="$home/queue-latency" \
  bin/decisiontrace --config deploy/local/collector.yaml --config deploy/local/latency/collector.yaml >"$log" 2>&1 &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do
  curl -fsS http://127.0.0.1:13134/ >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "latency collector exited; see $log" >&2; tail -20 "$log" >&2; exit 1; }
  sleep 0.2
done
# The first evaluation creates the alert tables; give it one round.
sleep 2
bin/dtloadgen --protocol grpc --endpoint 127.0.0.1:14317 --probe-alertmanager "$am" --probes "${PROBES:-8}"
