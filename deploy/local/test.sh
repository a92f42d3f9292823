#!/usr/bin/env bash
# The whole test suite, on a fresh Debian/Ubuntu machine: installs what is
# missing, then runs every unit and integration test. Integration tests start
# their own embedded ClickHouse (and Alertmanager where they need one); set
# DECISIONTRACE_TEST_CLICKHOUSE_ADDR=host:9000 to run them against an
# existing server instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/install-deps.sh

echo "== gofmt, go vet" >&2
unformatted="$(gofmt -l .)"
if [ -n "$unformatted" ]; then
  echo "not gofmt-clean (run gofmt -w on them):" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
echo "== go test" >&2
go test -count=1 -timeout 40m ./... 2>&1 | tee /tmp/decisiontrace-test.log

# The schema (every migration and the store's tests) and every rule
# kind's query once more on the oldest ClickHouse engine obtainable here:
# npm's @chdb/lib-linux-x64-gnu 26.5.0, ClickHouse 26.5.1.1 (served
# through chlocal's bridge, as its clickhouse-local cannot listen).
# Skipped when the tests use an external server. The README states the
# versions the schema has run on.
OLDEST_ENGINE=26.5.0
if [ -z "${DECISIONTRACE_TEST_CLICKHOUSE_ADDR:-}" ]; then
  echo "== go test ./internal/store/... ./internal/rules/ on engine $OLDEST_ENGINE" >&2
  oldest="$(bin/dtlocal fetch --engine "$OLDEST_ENGINE")"
  DECISIONTRACE_LIBCHDB="$oldest" go test -count=1 -timeout 20m ./internal/store/... ./internal/rules/ 2>&1 | tee -a /tmp/decisiontrace-test.log
fi
