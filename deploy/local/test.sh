#!/usr/bin/env bash
# The whole test suite, on a fresh Debian/Ubuntu machine: installs what is
# missing, then runs every unit and integration test. Integration tests start
# their own embedded ClickHouse (and Alertmanager where they need one); set
# DECISIONTRACE_TEST_CLICKHOUSE_ADDR=host:9000 to run them against an
# existing server instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/install-deps.sh

echo "== go vet" >&2
go vet ./...
echo "== go test" >&2
go test -count=1 -timeout 40m ./... 2>&1 | tee /tmp/decisiontrace-test.log
