#!/usr/bin/env bash
# Where ClickHouse's share of ingest goes: the growth seed's 1M demo events
# (bench-growth.sh) inserted into a copy of the decisiontrace schema in
# 20,000-row blocks on one thread, in time order, as the exporter's batches
# arrive, once per variant of the schema: every view (what ships), without
# the events table's index of event names, each view left out, the events
# table alone, and without its decision_id bloom filter; then every view
# with the logs and the spans inserted apart, at once, as the exporter's two
# queues do, the spans in the blocks a 1-s and a 5-s flush_timeout make of
# them under the side-by-side load (measure_signals). Per variant and
# round it prints ClickHouse's CPU-seconds during the insert (with the
# merges that run meanwhile), during the merges after it until they run
# out, and the rows merged. "read" is the insert's SELECT alone (the seed
# read and sorted), which every variant includes: subtract it (twice from
# the "apart" variants, whose two statements each read the seed).
# ClickHouse's whole process is measured: keep the machine otherwise idle
# (no collector, no demo). From schema version 11 on, "events alone" keeps
# the events table's index of event names.
#
#   deploy/local/bench-insert.sh
#
# Needs the local stack up with growth_seed.events: run
# deploy/local/bench-growth.sh (SIZES=1 is enough) first. The schema is
# copied from the stack's decisiontrace database (the shipped collector is
# started once to create it when there is none). Environment: ROUNDS (default 2, variants
# alternating), VARIANTS (all, or signals: read and the two "apart"
# variants only), DECISIONTRACE_HOME (the local stack's), SRC (the database
# whose schema is copied, default decisiontrace: another one, created by an
# older collector, measures a schema change alternating with it). Works in
# its own database, bench_insert, dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
home="${DECISIONTRACE_HOME:-$HOME/.decisiontrace}"
rounds="${ROUNDS:-2}"
variants="${VARIANTS:-all}"
src="${SRC:-decisiontrace}"
db=bench_insert
. deploy/local/bench-lib.sh
chpid="$(cat "$home/run/clickhouse.pid")"

if [ "$(ch "SELECT count() FROM system.tables WHERE database = 'growth_seed' AND name = 'events'")" = 0 ]; then
  echo "needs growth_seed.events on the local stack: run deploy/local/bench-growth.sh (SIZES=1 is enough) first" >&2
  exit 1
fi
if [ "$(ch "SELECT count() FROM system.tables WHERE database = '$src' AND name = 'events'")" = 0 ]; then
  if [ "$src" != decisiontrace ]; then
    echo "SRC=$src has no decisiontrace schema on the local stack" >&2
    exit 1
  fi
  # The schema comes from the collector's migrations: start it once.
  if pgrep -f 'decisiontrace --config' >/dev/null; then
    echo "a collector is running (the demo's?); stop it first: deploy/local/demo.sh down" >&2
    exit 1
  fi
  export PATH="/usr/local/go/bin:$PATH"
  go build -o bin/ ./cmd/decisiontrace
  queue="$(mktemp -d)"
  collector_up "$src" "$queue" "$home/logs/bench-insert-collector.log"
  kill -TERM "$collector_pid"
  wait "$collector_pid" || true
  rm -rf "$queue"
fi
views="$(ch "SELECT name FROM system.tables WHERE database = '$src' AND engine = 'MaterializedView' ORDER BY name")"
settings="max_threads = 1, max_block_size = 20000, min_insert_block_size_rows = 20000, min_insert_block_size_bytes = 0, max_insert_threads = 1"

# schema SKIP...: the decisiontrace schema in $db, without the views named
# (all: none of them; nobloom: nor the events table's bloom filter;
# noeventidx: nor its index of event names).
schema() {
  ch "DROP DATABASE IF EXISTS $db SYNC"
  ch "CREATE DATABASE $db"
  local t v
  for t in $(ch "SELECT name FROM system.tables WHERE database = '$src' AND engine LIKE '%MergeTree%' ORDER BY name"); do
    ch "CREATE TABLE $db.$t AS $src.$t"
  done
  for v in $views; do
    [[ " $* " == *" $v "* || " $* " == *" all "* ]] && continue
    ch "$(ch "SELECT create_table_query FROM system.tables WHERE database = '$src' AND name = '$v' FORMAT TSVRaw" | sed "s/\b$src\./$db./g")"
  done
  if [[ " $* " == *" nobloom "* ]]; then
    ch "ALTER TABLE $db.events DROP INDEX idx_decision_id"
  fi
  if [[ " $* " == *" noeventidx "* ]]; then
    ch "ALTER TABLE $db.events DROP INDEX idx_event"
  fi
}

# measured NAME COMMAND...: ClickHouse's CPU-seconds while COMMAND runs
# (with the merges that run meanwhile), during the merges after it until
# they run out, and the rows merged, as a line of the results.
measured() {
  local name="$1" c0 c1 c2 m0 m1
  shift
  quiet 300 >/dev/null
  m0="$(ch "SELECT value FROM system.events WHERE event = 'MergedRows'")"
  c0="$(cpu "$chpid")"
  "$@"
  c1="$(cpu "$chpid")"
  quiet 600 >/dev/null
  # a merge may start right after the last one ended
  sleep 3
  quiet 600 >/dev/null
  c2="$(cpu "$chpid")"
  m1="$(ch "SELECT value FROM system.events WHERE event = 'MergedRows'")"
  printf '%s %s %s %s\n' "$name" "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.1f", b - a }')" \
    "$(awk -v a="$c1" -v b="$c2" 'BEGIN { printf "%.1f", b - a }')" "$((m1 - m0))"
}

read_seed() { ch "SELECT * FROM growth_seed.events ORDER BY time, event_id FORMAT Null SETTINGS $settings"; }
insert_seed() { ch "INSERT INTO $db.events SELECT * FROM growth_seed.events ORDER BY time, event_id SETTINGS $settings"; }

# insert_apart SPAN_ROWS: the seed's logs and spans inserted at once by two
# statements, as the exporter's two queues insert them, the logs in
# 10,000-row blocks (the batches' min_size, which a busy signal fills
# before flush_timeout) and the spans in SPAN_ROWS-row blocks: what
# flush_timeout makes of a signal too slow to fill a batch (2,700 spans a
# second under the side-by-side load, 10,000 in 5 s). Each statement
# reads the whole seed to pick its signal (twice "read").
insert_apart() {
  ch "INSERT INTO $db.events SELECT * FROM growth_seed.events WHERE signal = 'log' ORDER BY time, event_id SETTINGS ${settings//20000/10000}" &
  ch "INSERT INTO $db.events SELECT * FROM growth_seed.events WHERE signal = 'span' ORDER BY time, event_id SETTINGS ${settings//20000/$1}" &
  wait
}

# measure NAME SKIP...: one insert of the seed under a variant.
measure() {
  local name="$1"
  shift
  if [ "$name" = read ]; then
    measured read read_seed
    return
  fi
  schema "$@"
  measured "$name" insert_seed
}

# measure_signals NAME SPAN_ROWS: every view, the logs and spans apart.
measure_signals() {
  schema
  measured "$1" insert_apart "$2"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo), $(sed -n 's/^model name[^:]*: *//p' /proc/cpuinfo | head -1 | awk '{print $1, $2}'); ClickHouse $(ch "SELECT version()")"
echo "seed: $(ch "SELECT count() FROM growth_seed.events") events, 20,000-row blocks, one thread"
results="$(mktemp)"
for round in $(seq 1 "$rounds"); do
  measure read >>"$results"
  if [ "$variants" = signals ]; then
    measure_signals "logs and spans apart, spans every 1 s" 2700 >>"$results"
    measure_signals "logs and spans apart, spans every 5 s" 10000 >>"$results"
    continue
  fi
  measure "every view" >>"$results"
  measure "every view, no event index" noeventidx >>"$results"
  for v in $views; do measure "without $v" "$v" >>"$results"; done
  measure "events alone" all >>"$results"
  measure "events alone, no bloom filter" all nobloom >>"$results"
  measure_signals "logs and spans apart, spans every 1 s" 2700 >>"$results"
  measure_signals "logs and spans apart, spans every 5 s" 10000 >>"$results"
done
ch "DROP DATABASE IF EXISTS $db SYNC"
awk '
  { name = $1; for (i = 2; i <= NF - 3; i++) name = name " " $i
    if (!(name in n)) order[++k] = name
    n[name]++; line[name] = line[name] sprintf("%s%s + %s (%s rows merged)", n[name] > 1 ? ", " : "", $(NF - 2), $(NF - 1), $NF) }
  END {
    print "variant: ClickHouse CPU-s during the insert + during the merges after it, per round"
    for (i = 1; i <= k; i++) printf "%-44s %s\n", order[i], line[order[i]]
  }' "$results"
rm -f "$results"
