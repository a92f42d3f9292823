#!/usr/bin/env bash
# End-to-end throughput of the local stack: dtloadgen pushes decision traffic
# flat out into a running collector (OTLP gRPC on 127.0.0.1:4317) and waits
# until ClickHouse (native 127.0.0.1:19000) can query every accepted event.
#
#   deploy/local/bench-e2e.sh [COLLECTOR_PID]
#
# Environment: EVENTS (default 2000000), CLICKHOUSE_ADDR (127.0.0.1:19000),
# PROTOCOL (grpc, http: OTLP; json: the decisionevents receiver), ENDPOINT
# (default per protocol: 127.0.0.1:4317, :4318, :4320), WORKERS, BATCH,
# VERIFY_TIMEOUT, MAX_RETRIES, CLICKHOUSE_USER / CLICKHOUSE_PASSWORD.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"

events="${EVENTS:-2000000}"
ch_addr="${CLICKHOUSE_ADDR:-127.0.0.1:19000}"
protocol="${PROTOCOL:-grpc}"
endpoint="${ENDPOINT:-${OTLP_ENDPOINT:-}}"

pid="${1:-}"
if [ -z "$pid" ]; then
  # The oldest match: a shell that started the collector matches too.
  pid="$(pgrep -o -f 'decisiontrace --config' || true)"
fi
if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
  echo "no running collector found; pass its PID or start it with deploy/local/demo.sh" >&2
  exit 1
fi

mkdir -p bin
go build -o bin/dtloadgen ./cmd/dtloadgen

report="$(mktemp)"
trap 'rm -f "$report"' EXIT
# Flat out trips the collector's memory limiter; retrying its refusals makes
# this measure throughput rather than how much a saturated collector drops.
args=(--protocol "$protocol" --rate 0 --events "$events"
  --workers "${WORKERS:-4}" --batch "${BATCH:-500}" --max-retries "${MAX_RETRIES:-8}"
  --verify-clickhouse "$ch_addr" --verify-timeout "${VERIFY_TIMEOUT:-2m}"
  --collector-pid "$pid")
[ -n "$endpoint" ] && args+=(--endpoint "$endpoint")
rc=0
bin/dtloadgen "${args[@]}" >"$report" || rc=$?

cat "$report"
. deploy/local/bench-lib.sh
e2e="$(field end_to_end_events_per_s "$report")"
rss="$(field collector_peak_rss_mb "$report")"
echo "events/s end-to-end: ${e2e:-n/a}, collector peak RSS: ${rss:-n/a} MB"
exit "$rc"
