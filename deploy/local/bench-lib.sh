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
