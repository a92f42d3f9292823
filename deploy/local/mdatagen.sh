#!/usr/bin/env bash
# Runs the collector's mdatagen on a component's metadata.yaml, writing its
# generated status and lifecycle tests:
#   deploy/local/mdatagen.sh connectors/decisionqueueconnector
# mdatagen is not installable with `go install` from the module proxy here
# (its version list is not served, and its go.mod points at sibling
# directories), so this builds v0.140.0, the newest version the proxy
# serves, from its module zip with those replacements dropped, into
# bin/mdatagen. Older components' generated files were written by hand in
# the same layout.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { echo "usage: $0 COMPONENT_DIR..." >&2; exit 2; }
version=v0.140.0
if [ ! -x bin/mdatagen ]; then
  dir="$(go mod download -json "go.opentelemetry.io/collector/cmd/mdatagen@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  cp -r "$dir/." "$tmp/"
  chmod -R u+w "$tmp"
  sed -i '/^replace/d; /=> \.\./d' "$tmp/go.mod"
  mkdir -p bin
  out="$PWD/bin/mdatagen"
  (cd "$tmp" && GOFLAGS=-mod=mod go build -o "$out" .)
fi
root="$PWD"
for c in "$@"; do
  (cd "$c" && "$root/bin/mdatagen" metadata.yaml)
  # A package whose tests use the embedded ClickHouse keeps testenv.Main
  # as its TestMain (it serves the engine and stops it after the tests);
  # mdatagen's goleak TestMain would be a second one. Their goroutine
  # checks are goleak.VerifyNone in the lifecycle tests instead.
  if grep -l --include='*_test.go' -r 'func TestMain' "$c" | grep -qv generated_package_test.go; then
    rm -f "$c/generated_package_test.go"
  fi
done
