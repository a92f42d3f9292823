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
# (500), PIPELINES ("stock decisiontrace"; "baseline" is decisiontrace
# built from the commit BASELINE names, to measure a change against the
# code before it in one invocation), DECISIONTRACE_CONFIG (the
# collector configuration, deploy/local/collector.yaml), DECISIONTRACE_GOMEMLIMIT (the
# collector's GOMEMLIMIT, 300MiB as demo.sh sets), DECISIONTRACE_HOME (the local
# stack's, default ~/.decisiontrace); the collector's own variables
# (DECISIONTRACE_CONTRACTS, DECISIONTRACE_RULES, ...) reach it. PROFILE=DIR
# writes a CPU profile of each decisiontrace run's collector (its pprof
# extension, the first PROFILE_SECONDS (20) of the load) to
# DIR/NAME-ROUND.pprof: `go tool pprof -top bin/decisiontrace FILE`.
# SELECTS=1 samples ClickHouse's running SELECTs twice a second during
# each run and prints, on stderr, what they were (a rule's queries carry
# its name in log_comment): where ClickHouse's select time goes.
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
if [[ " ${PIPELINES:-} " == *" baseline "* ]]; then
  : "${BASELINE:?PIPELINES has baseline: set BASELINE to the commit to build it from}"
  tree="$(mktemp -d)"
  git worktree add -q --detach "$tree" "$BASELINE"
  built=0
  (cd "$tree" && go build -o "$OLDPWD/bin/decisiontrace-baseline" ./cmd/decisiontrace) || built=$?
  git worktree remove --force "$tree"
  [ "$built" = 0 ] || { echo "building the baseline $BASELINE failed" >&2; exit 1; }
fi
bin/dtlocal up

. deploy/local/bench-lib.sh
chpid="$(cat "$home/run/clickhouse.pid")"
# chwork: ClickHouse's cumulative insert, select and merge time (ms) and
# rows merged, from system.events (the embedded server keeps no query_log).
chwork() {
  ch "SELECT sumIf(value, event = 'InsertQueryTimeMicroseconds') / 1000, sumIf(value, event = 'SelectQueryTimeMicroseconds') / 1000,
      sumIf(value, event = 'MergeTotalMilliseconds'), sumIf(value, event = 'MergedRows') FROM system.events FORMAT TSV"
}

# run NAME: one collector on an empty database, the load, its numbers.
run() {
  local name="$1" report="$home/logs/side-by-side-$1-$2.json" pid queue db="$1"
  local -a cmd verify
  case "$name" in
  stock)
    cmd=(bin/stockcollector --config deploy/bench/stock/config.yaml)
    verify=(--verify-schema otel --database stock) ;;
  decisiontrace | baseline)
    queue="$home/bench-queue"
    rm -rf "$queue"
    db=decisiontrace
    cmd=(env GOMEMLIMIT="${DECISIONTRACE_GOMEMLIMIT:-300MiB}" DECISIONTRACE_QUEUE_DIR="$queue" "bin/${name/baseline/decisiontrace-baseline}" --config "${DECISIONTRACE_CONFIG:-deploy/local/collector.yaml}")
    verify=(--verify-schema decisiontrace --database decisiontrace) ;;
  esac
  ch "DROP DATABASE IF EXISTS $db SYNC" >/dev/null
  "${cmd[@]}" >"$home/logs/side-by-side-$name.log" 2>&1 &
  pid=$!
  local ch0 ch1 col
  ch0="$(cpu "$chpid")"
  local w0 w1
  w0="$(chwork)"
  # Ready when it accepts OTLP: a zero-event probe would not tell, so wait
  # for the port.
  for _ in $(seq 1 300); do
    (exec 3<>/dev/tcp/127.0.0.1/4317) 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { echo "$name exited; see $home/logs/side-by-side-$name.log" >&2; exit 1; }
    sleep 0.1
  done
  local prof=""
  if [ -n "${PROFILE:-}" ] && [ "$name" != stock ]; then
    mkdir -p "$PROFILE"
    curl -sf -o "$PROFILE/$name-$2.pprof" "http://127.0.0.1:1777/debug/pprof/profile?seconds=${PROFILE_SECONDS:-20}" &
    prof=$!
  fi
  local sampler="" samples="$home/logs/selects-$name-$2.tsv"
  if [ -n "${SELECTS:-}" ]; then
    : >"$samples"
    # The engine's own query on its standard input runs all along: left out.
    while :; do
      ch "SELECT if(Settings['log_comment'] != '', Settings['log_comment'], replaceRegexpAll(substring(query, 1, 60), '[[:space:]]+', ' '))
          FROM system.processes WHERE query_kind = 'Select' AND query NOT LIKE '%system.processes%' AND query NOT LIKE '%file(stdin%' FORMAT TSV" >>"$samples" 2>/dev/null || true
      sleep 0.5
    done &
    sampler=$!
  fi
  bin/dtloadgen --protocol grpc --endpoint 127.0.0.1:4317 --rate 0 --events "$events" \
    --workers "${WORKERS:-4}" --batch "${BATCH:-500}" --max-retries 8 \
    --verify-clickhouse 127.0.0.1:19000 --verify-timeout 5m "${verify[@]}" \
    --collector-pid "$pid" >"$report" || true
  col="$(cpu "$pid")"
  ch1="$(cpu "$chpid")"
  [ -z "$prof" ] || wait "$prof" || echo "$name: no CPU profile (does its configuration have the pprof extension on 127.0.0.1:1777?)" >&2
  if [ -n "$sampler" ]; then
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    { echo "$name: running SELECTs, $(wc -l <"$samples") sampled (one a half second running):"; sort "$samples" | uniq -c | sort -rn | head -15; } >&2
  fi
  w1="$(chwork)"
  # ClickHouse's side of the run, on stderr: where its CPU went.
  paste <(tr '\t' '\n' <<<"$w0") <(tr '\t' '\n' <<<"$w1") | awk -v name="$name" '
    { d[NR] = $2 - $1 }
    END { printf "%s: ClickHouse insert %.1f s (views included), select %.1f s (rules, verdicts, the check), merges %.1f s over %d rows\n", name, d[1] / 1000, d[2] / 1000, d[3] / 1000, d[4] }' >&2
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # The next run must not pay for this one's merges: drop what it wrote
  # (its report has the numbers) and let ClickHouse go quiet.
  ch "DROP DATABASE IF EXISTS $db SYNC" >/dev/null
  quiet 60 >/dev/null
  echo "$name $(field end_to_end_events_per_s "$report") $(field collector_peak_rss_mb "$report") $col $(awk -v a="$ch0" -v b="$ch1" 'BEGIN { printf "%.1f", b - a }') $(field stored_events "$report")"
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
  { n[$1]++; rate[$1, n[$1]] = $2; rss[$1, n[$1]] = $3; cpu[$1, n[$1]] = $4 "+" $5; if ($3 > peak[$1]) peak[$1] = $3; sum[$1] += $2 }
  END {
    printf "%-14s %s\n", "pipeline", "events/s from first sent to queryable (peak RSS MB; CPU s collector+ClickHouse), per run"
    for (p in n) {
      line = sprintf("%-14s", p)
      for (i = 1; i <= n[p]; i++) line = line sprintf(" %s (%s MB; %s s)", rate[p, i], rss[p, i], cpu[p, i])
      print line
    }
    if (sum["stock"] > 0) printf "ratio decisiontrace ÷ stock (mean events/s): %.2f×; peak RSS %s MB vs %s MB\n", sum["decisiontrace"] / sum["stock"], peak["decisiontrace"], peak["stock"]
    if (sum["baseline"] > 0) printf "ratio decisiontrace ÷ baseline (mean events/s): %.2f×\n", sum["decisiontrace"] / sum["baseline"]
  }' "$results"
