#!/usr/bin/env bash
# decisiontrace's shipped pipeline side by side with the stock one a
# platform team would run instead (OTLP receiver → batch → contrib's
# clickhouseexporter, deploy/bench/stock, built from the module proxy at
# the collector release decisiontrace uses), against the same local
# ClickHouse, under the same flat-out OTLP gRPC load from dtloadgen,
# alternating, ROUNDS times each. Each run starts its collector on an
# empty database and measures from the first event sent until every event
# is queryable, and the collector's peak RSS. The machine is shared and
# noisy: the ratio within one run is the figure that counts.
#
#   deploy/local/bench-side-by-side.sh
#
# Environment: EVENTS (default 1000000), ROUNDS (2), WORKERS (4), BATCH
# (500), PIPELINES ("stock decisiontrace"), DECISIONTRACE_GOMEMLIMIT (the
# collector's GOMEMLIMIT, 200MiB as demo.sh sets), DECISIONTRACE_HOME (the local
# stack's, default ~/.decisiontrace); the collector's own variables
# (DECISIONTRACE_CONTRACTS, DECISIONTRACE_RULES, ...) reach it.
# Stop the demo's collector and generator first: this starts and stops its
# own collectors on 127.0.0.1:4317. The local stack (ClickHouse,
# Alertmanager) stays up afterwards; deploy/local/demo.sh down stops it.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"
home="${DECISIONTRACE_HOME:-$HOME/.decisiontrace}"
export DECISIONTRACE_HOME="$home"
events="${EVENTS:-1000000}"
rounds="${ROUNDS:-2}"
mkdir -p "$home/logs" "$home/run" bin

if pgrep -f 'decisiontrace --config|stockcollector --config' >/dev/null; then
  echo "a collector is running (the demo's?); stop it first: deploy/local/demo.sh down" >&2
  exit 1
fi

. deploy/local/install-deps.sh
go build -o bin/ ./cmd/decisiontrace ./cmd/dtloadgen ./cmd/dtlocal
(cd deploy/bench/stock && go build -o ../../../bin/stockcollector .)
bin/dtlocal up

ch() { curl -fsS http://127.0.0.1:18123/ --data-binary "$1"; }
field() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" "$2"; }

# run NAME: one collector on an empty database, the load, its numbers.
run() {
  local name="$1" report="$home/logs/side-by-side-$1-$2.json" pid queue
  local -a cmd verify
  case "$name" in
  stock)
    ch "DROP DATABASE IF EXISTS stock SYNC" >/dev/null
    cmd=(bin/stockcollector --config deploy/bench/stock/config.yaml)
    verify=(--verify-schema otel --database stock) ;;
  decisiontrace)
    ch "DROP DATABASE IF EXISTS decisiontrace SYNC" >/dev/null
    queue="$home/bench-queue"
    rm -rf "$queue"
    cmd=(env GOMEMLIMIT="${DECISIONTRACE_GOMEMLIMIT:-200MiB}" DECISIONTRACE_QUEUE_DIR="$queue" bin/decisiontrace --config deploy/local/collector.yaml)
    verify=(--verify-schema decisiontrace --database decisiontrace) ;;
  esac
  "${cmd[@]}" >"$home/logs/side-by-side-$name.log" 2>&1 &
  pid=$!
  # Ready when it accepts OTLP: a zero-event probe would not tell, so wait
  # for the port.
  for _ in $(seq 1 300); do
    (exec 3<>/dev/tcp/127.0.0.1/4317) 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { echo "$name exited; see $home/logs/side-by-side-$name.log" >&2; exit 1; }
    sleep 0.1
  done
  bin/dtloadgen --protocol grpc --endpoint 127.0.0.1:4317 --rate 0 --events "$events" \
    --workers "${WORKERS:-4}" --batch "${BATCH:-500}" --max-retries 8 \
    --verify-clickhouse 127.0.0.1:19000 --verify-timeout 5m "${verify[@]}" \
    --collector-pid "$pid" >"$report" || true
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "$name $(field end_to_end_events_per_s "$report") $(field collector_peak_rss_mb "$report") $(field stored_events "$report")"
}

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
for r in $(seq 1 "$rounds"); do
  for name in ${PIPELINES:-stock decisiontrace}; do
    run "$name" "$r" | tee -a "$results"
  done
done

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
echo "load: $events OTLP gRPC events per run, ${WORKERS:-4} workers × ${BATCH:-500}, flat out; ClickHouse $(ch 'SELECT version()')"
awk -v rounds="$rounds" '
  { n[$1]++; rate[$1, n[$1]] = $2; rss[$1, n[$1]] = $3; if ($3 > peak[$1]) peak[$1] = $3; sum[$1] += $2 }
  END {
    printf "%-14s %s\n", "pipeline", "events/s from first sent to queryable (peak RSS MB), per run"
    for (p in n) {
      line = sprintf("%-14s", p)
      for (i = 1; i <= n[p]; i++) line = line sprintf(" %s (%s)", rate[p, i], rss[p, i])
      print line
    }
    if (sum["stock"] > 0) printf "ratio decisiontrace ÷ stock (mean events/s): %.2f×; peak RSS %s MB vs %s MB\n", sum["decisiontrace"] / sum["stock"], peak["decisiontrace"], peak["stock"]
  }' "$results"
