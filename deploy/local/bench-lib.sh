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
