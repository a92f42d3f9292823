#!/usr/bin/env bash
# How cost grows with what is stored: fills the decision store to 1M, 10M
# and 100M events spread over the last 7 days and, at each size, measures
# the fill's insert rate (through every materialized view), one evaluation
# round of all shipped rules (dtrules bench, evaluated at the newest
# event), `dtctl decision` on a recent decision, and every dashboard panel
# over the last 24 hours (the heaviest is reported).
#
#   deploy/local/bench-growth.sh
#
# The rules, dtctl and the panels are measured once the fill's merges
# have run out.
#
# The rows are the demo's: dtloadgen sends 1M events through the shipped
# collector once (the seed), and each further million is a copy of that
# seed with new decision and event IDs, every decision moved as a whole to
# its own random instant of the 7 days (a decision keeps its signals'
# spacing and its context its age), INSERT ... SELECT inside ClickHouse.
#
# Environment: SIZES (default "1 10 100", in millions of events), ROUNDS
# (rule rounds per size, 3), DECISIONTRACE_HOME (the local stack's). It
# replaces the decisiontrace database of that stack; stop the demo first
# (deploy/local/demo.sh down). The stack stays up afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"
home="${DECISIONTRACE_HOME:-$HOME/.decisiontrace}"
export DECISIONTRACE_HOME="$home"
mkdir -p "$home/logs" bin

if pgrep -f 'decisiontrace --config' >/dev/null; then
  echo "a collector is running (the demo's?); stop it first: deploy/local/demo.sh down" >&2
  exit 1
fi

. deploy/local/install-deps.sh
go build -o bin/ ./cmd/decisiontrace ./cmd/dtloadgen ./cmd/dtlocal ./cmd/dtrules ./cmd/dtctl
bin/dtlocal up

. deploy/local/bench-lib.sh
db=decisiontrace
log="$home/logs/bench-growth.log"

# The shipped collector, on a new database: it creates the schema and
# writes the contracts. The seed: 1M demo events through it, kept in
# growth_seed.events (once: a later run reuses them); the decisiontrace
# database is then emptied (schema and contracts kept) for the fills.
ch "DROP DATABASE IF EXISTS $db SYNC" >/dev/null
queue="$home/growth-queue"
rm -rf "$queue"
collector_up "$db" "$queue" "$log"
if [ "$(ch "SELECT count() FROM system.tables WHERE database = 'growth_seed' AND name = 'events'")" = 0 ] ||
  [ "$(ch "SELECT count() FROM growth_seed.events")" = 0 ]; then
  bin/dtloadgen --protocol grpc --endpoint 127.0.0.1:4317 --rate 0 --events 1000000 --workers 4 --batch 500 --max-retries 8 \
    --verify-clickhouse 127.0.0.1:19000 --verify-timeout 10m --verify-schema decisiontrace --database "$db" >/dev/null 2>>"$log"
  ch "CREATE DATABASE IF NOT EXISTS growth_seed"
  ch "DROP TABLE IF EXISTS growth_seed.events SYNC"
  ch "CREATE TABLE growth_seed.events AS $db.events ENGINE = MergeTree ORDER BY tuple()"
  ch "INSERT INTO growth_seed.events SELECT * FROM $db.events"
fi
kill -TERM "$collector_pid"
wait "$collector_pid" || true
for t in events decisions watermarks source_polls model_outputs decision_changes verdicts verdict_refreshes alert_state alert_history; do
  ch "TRUNCATE TABLE IF EXISTS $db.$t SYNC"
done

seed_rows="$(ch "SELECT count() FROM growth_seed.events")"
seed_min_ms="$(ch "SELECT toUnixTimestamp64Milli(min(time)) FROM growth_seed.events")"
span_ms=$((7 * 86400 * 1000 - 120000))
start_ms=$(($(date +%s) * 1000 - 7 * 86400 * 1000))

# copies K N: the seed's events N more times, as copies K to K+N-1, each
# decision (each periodic signal on its own) moved to its own instant of
# the 7 days. Several copies per insert, in blocks of 4M rows: parts of a
# million rows spread over 8 daily partitions made the merges, not the
# inserts, the fill's cost (8,000 events/s past 10M).
copies() {
  ch "INSERT INTO $db.events
WITH toIntervalMillisecond(toInt64({start_ms:Int64} + cityHash64(if(decision_id = '', toString(event_id), decision_id), k) % {span_ms:UInt64}) - {seed_min_ms:Int64}) AS shift
SELECT * REPLACE (
    time + shift AS time,
    observed_time + shift AS observed_time,
    if(decision_id = '', '', concat(decision_id, '-', toString(k))) AS decision_id,
    cityHash64(event_id, k) AS event_id,
    as_of + shift AS as_of)
FROM growth_seed.events
ARRAY JOIN range({k0:UInt32}, {k0:UInt32} + {n:UInt32}) AS k
SETTINGS max_insert_block_size = 4194304, min_insert_block_size_rows = 4194304, min_insert_block_size_bytes = 0" \
    "k0=$1" "n=$2" "start_ms=$start_ms" "span_ms=$span_ms" "seed_min_ms=$seed_min_ms"
}

summary="$(mktemp)"
trap 'rm -f "$summary"' EXIT
copies=0
for size in ${SIZES:-1 10 100}; do
  began=$(date +%s.%N)
  added=0
  while [ $((copies * seed_rows)) -lt $((size * 1000000)) ]; do
    n=$(((size * 1000000 - copies * seed_rows + seed_rows - 1) / seed_rows))
    [ "$n" -gt 4 ] && n=4
    copies "$copies" "$n"
    copies=$((copies + n))
    added=$((added + n * seed_rows))
  done
  took=$(echo "$(date +%s.%N) - $began" | bc)
  stored="$(ch "SELECT count() FROM $db.events")"
  rate=$(echo "$added / $took" | bc)
  # Rules: a catch-up refresh judges every new decision first (reported
  # apart), then ROUNDS rounds of refresh + every rule. First the fill's
  # merges run out (up to 10 minutes; a store in use is not being
  # bulk-filled while its rules run). A refresh looks 10 s before the last
  # one again (inserts still becoming visible): wait that out too, or the
  # rounds' refreshes would judge the whole fill again, which traffic
  # never stores in 10 s.
  echo "$size M: waited $(quiet 600) s for the fill's merges" >>"$log"
  sleep 11
  bin/dtrules bench --clickhouse 127.0.0.1:19000 --contracts 'deploy/contracts/*.yaml' --rounds "${ROUNDS:-3}" --at latest \
    deploy/rules/demo.yaml >"$home/logs/bench-growth-rules-$size.json" 2>>"$log"
  round="$(field round_median_ms "$home/logs/bench-growth-rules-$size.json")"
  read_rows="$(field round_read_rows "$home/logs/bench-growth-rules-$size.json")"
  catchup="$(field catch_up_refresh_ms "$home/logs/bench-growth-rules-$size.json")"
  # dtctl decision: the whole command, on a decision of the last hour.
  id="$(ch "SELECT decision_id FROM $db.events WHERE layer = 'model' AND event = 'model.output' AND time > now() - INTERVAL 1 HOUR ORDER BY event_id LIMIT 1")"
  times=()
  for _ in $(seq 1 9); do
    t0=$(date +%s%N)
    bin/dtctl decision "$id" >/dev/null
    times+=($((($(date +%s%N) - t0) / 1000000)))
  done
  dtctl_ms="$(printf '%s\n' "${times[@]}" | sort -n | sed -n 5p)"
  # Dashboards: every panel over the last 24 h, the heaviest.
  DECISIONTRACE_BENCH_CLICKHOUSE=127.0.0.1:19000 go test -run '^$' -bench Panels -benchtime 3x ./dashboards/ >"$home/logs/bench-growth-panels-$size.txt" 2>&1
  heaviest="$(awk '/^BenchmarkPanels/ { print $3 / 1e6, $1 }' "$home/logs/bench-growth-panels-$size.txt" | sort -gr | head -1)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$stored" "$rate" "$round" "$read_rows" "$catchup" "$dtctl_ms" "$heaviest" | tee -a "$summary"
done

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); ClickHouse $(ch 'SELECT version()')"
echo "stored events | fill rate, events/s (INSERT ... SELECT, all views) | rule round, median ms | rows the round's rules read | catch-up refresh ms | dtctl decision, median ms | heaviest panel over 24 h, ms"
awk -F'\t' '{ printf "%s | %s | %s | %s | %s | %s | %s\n", $2, $3, $4, $5, $6, $7, $8 }' "$summary"
