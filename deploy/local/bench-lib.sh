# Shared by the bench scripts (sourced, from the repository root).

# ch SQL [name=value ...]: one statement to the local stack's ClickHouse
# over HTTP (POST: GET is read-only), with query parameters (numbers here,
# so not URL-encoded).
ch() {
  local sql="$1" url="http://127.0.0.1:18123/?"
  shift
  for p in "$@"; do url+="param_$p&"; done
  curl -fsS "$url" --data-binary "$sql"
}

# field NAME FILE: the value of a top-level field of a JSON report
# (dtloadgen's, dtrules bench's), with plain sed: the local stack does not
# install jq.
field() { sed -n "s/.*\"$1\": *\([^,}]*\).*/\1/p" "$2"; }

# quiet SECONDS: waits until ClickHouse runs no merge (at most SECONDS), so
# that what is measured next does not pay for the merges of what came
# before; prints how long it waited.
quiet() {
  local waited=0
  while [ "$waited" -lt "$1" ] && [ "$(ch "SELECT count() FROM system.merges")" != 0 ]; do
    sleep 1
    waited=$((waited + 1))
  done
  echo "$waited"
}

# cpu PID: user+system CPU seconds so far of the process and its children
# (dtlocal's pid file names the supervisor; ClickHouse is its child).
cpu() {
  local p stats=()
  for p in "$1" $(pgrep -P "$1"); do stats+=("/proc/$p/stat"); done
  awk -v hz="$(getconf CLK_TCK)" '{ t += $14 + $15 } END { printf "%.1f", t / hz }' "${stats[@]}"
}

# collector_up DB QUEUE LOG: starts the shipped collector (its queue in
# QUEUE, its output in LOG) and waits until it accepts OTLP and has
# written the contracts into DB (its schema migrated); sets collector_pid.
# A collector that exits, or is not ready in 5 minutes, ends the script.
collector_up() {
  local db="$1" queue="$2" log="$3"
  env GOMEMLIMIT=300MiB DECISIONTRACE_QUEUE_DIR="$queue" bin/decisiontrace --config deploy/local/collector.yaml >"$log" 2>&1 &
  collector_pid=$!
  for _ in $(seq 1 300); do
    kill -0 "$collector_pid" 2>/dev/null || { echo "the collector exited; see $log" >&2; exit 1; }
    if (exec 3<>/dev/tcp/127.0.0.1/4317) 2>/dev/null &&
      [ "$(ch "SELECT count() FROM system.tables WHERE database = '$db' AND name = 'contracts'")" = 1 ] &&
      [ "$(ch "SELECT count() FROM $db.contracts")" != 0 ]; then
      return 0
    fi
    sleep 1
  done
  echo "the collector was not ready within 5 minutes; see $log" >&2
  exit 1
}
